"""Segment captions from a vision-language model: in process (transformers) or served (vLLM).

:class:`Captioner` loads any checkpoint that ``AutoModelForImageTextToText`` and ``AutoProcessor``
know (BLIP, BLIP-2, GIT, VisionEncoderDecoder, LLaVA, LLaVA-OneVision, Qwen2/2.5-VL, SmolVLM...) and
picks the input style from the processor:

* **chat models** (the processor has a chat template: LLaVA, Qwen-VL...): one request per segment
  with its ``frames_per_segment`` frames as images, in time order, followed by the prompt; one
  caption per segment. Prompts are left-padded so segments batch together.
* **image captioners** (BLIP, BLIP-2, VisionEncoderDecoder): each frame is captioned on its own
  (``prompt``, when given, is the text the caption continues, e.g. BLIP's ``"a picture of"``), so a
  segment gets ``frames_per_segment`` captions (identical ones merged).

Batches span segments and videos (the pipeline hands over whatever it has collected) and halve on
a CUDA out-of-memory error. :class:`ServedCaptioner` sends the same requests to a VLM served by vLLM
through the OpenAI chat API, frames as base64 JPEG ``image_url`` parts, with a concurrency limit.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import re
import threading
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
from pydantic import Field

from vidagent.core.errors import ConfigError
from vidagent.core.records import Caption, Segment
from vidagent.tools.models import (
    AdaptiveBatch,
    LoadedModel,
    ModelParams,
    ModelRunError,
    ToolOutput,
    ToolParams,
    load_model,
    model_fingerprint,
    resolve_device,
    resolve_dtype,
)
from vidagent.tools.video import FrameBatch

DEFAULT_CAPTIONER = "Salesforce/blip-image-captioning-large"


@functools.cache
def default_caption_prompt() -> str:
    """The instruction for chat VLMs when none is given: ``prompts/caption.yaml``'s user text."""
    from vidagent.prompts.loader import load_prompt

    messages = load_prompt("caption").render({})
    return "\n".join(m.content for m in messages if m.role == "user").strip()


T = TypeVar("T")


class CaptionerParams(ModelParams):
    """In-process captioner settings."""

    model: str = Field(default=DEFAULT_CAPTIONER, min_length=1)
    frames_per_segment: int = Field(default=1, ge=1, le=64)
    batch_size: int = Field(default=8, ge=1)
    prompt: str | None = Field(
        default=None,
        description="Chat models: the instruction (None: prompts/caption.yaml). "
        "Image captioners: a caption prefix (None: unconditional).",
    )
    max_new_tokens: int = Field(default=40, ge=1, le=1024)
    num_beams: int = Field(default=1, ge=1, le=16)


def _clean(text: str, prompt: str | None) -> str:
    """Collapse whitespace and drop an echoed prompt prefix (BLIP repeats its text prompt)."""
    text = re.sub(r"\s+", " ", text).strip()
    if prompt:
        p = re.sub(r"\s+", " ", prompt).strip()
        if p and text.lower().startswith(p.lower()):
            text = text[len(p) :].strip()
    return text


class Captioner:
    """Perception tool: captions per segment from an image-text-to-text model."""

    name = "captioner"
    version = "1"

    def __init__(self, params: CaptionerParams | None = None) -> None:
        self.params = params or CaptionerParams()
        self.batch = AdaptiveBatch(self.params.batch_size, what=f"captioner {self.params.model}")
        self._loaded: LoadedModel | None = None
        self._fingerprint: str | None = None
        self.generate_calls = 0
        """Number of ``generate`` calls run (for tests and benchmarks)."""

    def cache_params(self, hasher: Callable[[Path], str] | None = None) -> dict[str, Any]:
        p = self.params
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(p.model, p.revision, hasher=hasher)
        fields = p.cache_fields()
        fields["prompt"] = p.prompt if p.prompt is not None else default_caption_prompt()
        fields["model"] = self._fingerprint
        fields["dtype"] = resolve_dtype(p.dtype, resolve_device(p.device))
        return fields

    @property
    def loaded(self) -> LoadedModel:
        if self._loaded is None:
            p = self.params
            lm = load_model(
                p.model, "image-text-to-text", device=p.device, dtype=p.dtype, revision=p.revision
            )
            if self._is_chat(lm):
                lm.processor.tokenizer.padding_side = "left"  # decoder-only generation
            elif lm.model.config.is_encoder_decoder and p.prompt:
                raise ConfigError(
                    f"captioner {p.model} is an encoder-decoder model without a text input: "
                    "it takes no prompt"
                )
            self._loaded = lm
        return self._loaded

    @staticmethod
    def _is_chat(lm: LoadedModel) -> bool:
        return bool(getattr(lm.processor, "chat_template", None))

    @property
    def is_chat(self) -> bool:
        """Whether the model takes a chat prompt with several images (else: one frame each)."""
        return self._is_chat(self.loaded)

    def setup(self) -> None:
        _ = self.loaded

    def caption_groups(self, groups: Sequence[Sequence[np.ndarray]]) -> list[str]:
        """One caption per group of images. Chat models see a group at once; image captioners
        take groups of exactly one image."""
        lm = self.loaded
        if not self._is_chat(lm) and any(len(g) != 1 for g in groups):
            raise ValueError(f"{self.params.model} captions one image at a time")
        return self.batch.map(lambda batch: self._generate(lm, batch), list(groups))

    def _inputs(
        self, lm: LoadedModel, groups: Sequence[Sequence[np.ndarray]]
    ) -> tuple[Any, str | None]:
        p = self.params
        if self._is_chat(lm):
            prompt = p.prompt or default_caption_prompt()
            texts = []
            for g in groups:
                content = [{"type": "image"} for _ in g] + [{"type": "text", "text": prompt}]
                messages = [{"role": "user", "content": content}]
                chat = lm.processor.apply_chat_template(messages, add_generation_prompt=True)
                texts.append(chat)
            nested = [list(g) for g in groups]
            inputs = lm.processor(text=texts, images=nested, padding=True, return_tensors="pt")
            return inputs, None
        images = [g[0] for g in groups]
        if p.prompt:
            inputs = lm.processor(images=images, text=[p.prompt] * len(images), return_tensors="pt")
        else:
            inputs = lm.processor(images=images, return_tensors="pt")
        return inputs, p.prompt

    def _generate(self, lm: LoadedModel, groups: Sequence[Sequence[np.ndarray]]) -> list[str]:
        import torch

        inputs, echoed = self._inputs(lm, groups)
        inputs = inputs.to(lm.device, dtype=getattr(torch, lm.dtype))
        with torch.inference_mode():
            out = lm.model.generate(
                **inputs,
                max_new_tokens=self.params.max_new_tokens,
                num_beams=self.params.num_beams,
                do_sample=False,
            )
        self.generate_calls += 1
        out = out.cpu()
        prompt_ids = inputs.get("input_ids")
        if prompt_ids is not None:
            n = prompt_ids.shape[1]
            if out.shape[1] >= n and torch.equal(out[:, :n], prompt_ids.cpu()):
                out = out[:, n:]  # decoder-only models return the prompt, then the caption
        texts = lm.processor.batch_decode(out, skip_special_tokens=True)
        return [_clean(t, echoed) for t in texts]

    def run(self, frames: Sequence[FrameBatch]) -> ToolOutput:
        if self.is_chat:
            captions = self.caption_groups([list(fb.frames) for fb in frames])
            return ToolOutput([[c] for c in captions])
        flat = self.caption_groups([[img] for fb in frames for img in fb.frames])
        items, start = [], 0
        for fb in frames:
            items.append(list(dict.fromkeys(flat[start : start + len(fb)])))
            start += len(fb)
        return ToolOutput(items)

    def summary(self, output: ToolOutput) -> dict[str, Any]:
        return {"model": self.params.model}

    def annotate(
        self, segments: Sequence[Segment], value: dict[str, Any], key: str
    ) -> list[Segment]:
        return _with_captions(segments, value, self.params.model)


def _with_captions(segments: Sequence[Segment], value: dict[str, Any], model: str) -> list[Segment]:
    model = value.get("model", model)
    return [
        seg.model_copy(update={"captions": [Caption(text=t, model=model) for t in texts]})
        for seg, texts in zip(segments, value["items"], strict=True)
    ]


# --- served (vLLM, OpenAI-compatible API) -------------------------------------------------------


class ServedCaptionerParams(ToolParams):
    """Captioning through a VLM served with an OpenAI-compatible API (``vllm serve MODEL``)."""

    RUNTIME_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"base_url", "api_key", "concurrency", "timeout_s"}
    )

    model: str = Field(min_length=1, description="The served model name")
    base_url: str = Field(min_length=1, description="e.g. http://localhost:8000/v1")
    api_key: str = "EMPTY"
    prompt: str | None = Field(default=None, description="None: prompts/caption.yaml")
    frames_per_segment: int = Field(default=1, ge=1, le=64)
    max_tokens: int = Field(default=60, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    seed: int | None = 0
    concurrency: int = Field(default=16, ge=1)
    jpeg_quality: int = Field(default=90, ge=10, le=100)
    max_side: int = Field(default=768, ge=32, description="Frames are shrunk to fit this side")
    timeout_s: float = Field(default=120.0, gt=0)


def jpeg_data_url(frame: np.ndarray, *, quality: int = 90, max_side: int = 768) -> str:
    """An RGB uint8 frame as a ``data:image/jpeg;base64,...`` URL, shrunk to ``max_side``."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(frame))
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code, also when called inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="served-captioner")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


async def complete_chats(
    requests: Sequence[dict[str, Any]],
    *,
    base_url: str,
    api_key: str,
    concurrency: int,
    timeout_s: float,
    http_client: Any = None,
) -> list[str]:
    """Send chat-completion requests (``create()`` kwargs) at most ``concurrency`` at a time.

    The one place that talks to the server: swap it for the LLM layer's ``generate_many`` once
    that accepts image content parts.
    """
    import openai

    semaphore = asyncio.Semaphore(concurrency)
    async with openai.AsyncOpenAI(
        base_url=base_url, api_key=api_key, timeout=timeout_s, http_client=http_client
    ) as client:

        async def one(request: dict[str, Any]) -> str:
            async with semaphore:
                response = await client.chat.completions.create(**request)
            return (response.choices[0].message.content or "").strip()

        try:
            return list(await asyncio.gather(*(one(r) for r in requests)))
        except openai.OpenAIError as exc:
            raise ModelRunError(f"captioning server {base_url}: {exc}") from exc


class ServedCaptioner:
    """Perception tool: captions from a served VLM (one chat request per segment).

    Serve the model with e.g. ``vllm serve Qwen/Qwen2.5-VL-7B-Instruct``; with more than one
    frame per segment, allow that many images per prompt (``--limit-mm-per-prompt
    '{"image": 4}'``).
    """

    name = "captioner.served"
    version = "1"

    def __init__(
        self,
        params: ServedCaptionerParams,
        *,
        http_client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.params = params
        self._http_client_factory = http_client_factory

    def cache_params(self, hasher: Callable[[Path], str] | None = None) -> dict[str, Any]:
        fields = self.params.cache_fields()
        fields["prompt"] = self.params.prompt or default_caption_prompt()
        return fields

    def setup(self) -> None:
        """Nothing to load: the server holds the model."""

    def build_request(self, frames: Sequence[np.ndarray]) -> dict[str, Any]:
        """The ``chat.completions.create`` kwargs for one segment's frames."""
        p = self.params
        parts: list[dict[str, Any]] = [
            {
                "type": "image_url",
                "image_url": {"url": jpeg_data_url(f, quality=p.jpeg_quality, max_side=p.max_side)},
            }
            for f in frames
        ]
        parts.append({"type": "text", "text": p.prompt or default_caption_prompt()})
        request: dict[str, Any] = {
            "model": p.model,
            "messages": [{"role": "user", "content": parts}],
            "max_tokens": p.max_tokens,
            "temperature": p.temperature,
        }
        if p.seed is not None:
            request["seed"] = p.seed
        return request

    def run(self, frames: Sequence[FrameBatch]) -> ToolOutput:
        p = self.params
        requests = [self.build_request(list(fb.frames)) for fb in frames]
        client = self._http_client_factory() if self._http_client_factory else None
        captions = _run_coroutine(
            complete_chats(
                requests,
                base_url=p.base_url,
                api_key=p.api_key,
                concurrency=p.concurrency,
                timeout_s=p.timeout_s,
                http_client=client,
            )
        )
        return ToolOutput([[c] for c in captions])

    def summary(self, output: ToolOutput) -> dict[str, Any]:
        return {"model": self.params.model}

    def annotate(
        self, segments: Sequence[Segment], value: dict[str, Any], key: str
    ) -> list[Segment]:
        return _with_captions(segments, value, self.params.model)
