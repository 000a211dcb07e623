"""CPU fallback backend: a transformers causal LM with in-process ``generate``.

Used when no vLLM server is given and vllm is not installed. The model loads on first use (lazy
``setup``). Requests run one at a time in a worker thread (``generate`` holds the GIL-heavy model
and the global torch RNG, so there is nothing to gain from running two at once on a CPU).

Sampling: temperature 0 is greedy (``n`` copies of the one greedy answer); otherwise multinomial
sampling with ``temperature``/``top_p`` and no top-k, seeded with ``torch.manual_seed(seed)`` when a
seed is given. ``stop`` strings end generation and are cut from the text (OpenAI semantics).

Structured output is truly constrained by :mod:`vidagent.llm.constrain`: choice lists through a
token trie, regexes through partial matching of every candidate token, JSON schemas by converting
the (supported subset of the) schema to a regex (:mod:`vidagent.llm.json_regex`); unsupported schema
keywords raise :class:`StructuredOutputUnsupportedError` instead of producing unchecked output. A
constrained output can still be cut by ``max_tokens`` (``finish_reason == "length"``).

With ``adapter`` (a PEFT LoRA folder, e.g. from ``vidagent train llm``) the base is wrapped in a
``PeftModel`` after :func:`~vidagent.llm.adapter.check_adapter` has checked that the adapter was
trained on it; the adapter's weights are merged into the base for generation (same outputs, no
per-token LoRA overhead).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, NamedTuple

from vidagent.core.errors import MissingDependencyError
from vidagent.llm.constrain import (
    ConstraintLogitsProcessor,
    PieceTrie,
    build_constraint,
    token_pieces,
)
from vidagent.llm.errors import LLMRequestError
from vidagent.llm.types import LLMRequest, LLMResponse, Usage


class _Candidate(NamedTuple):
    text: str
    finish_reason: str
    tokens: int


class HFBackend:
    """:class:`~vidagent.llm.backend.LLMBackend` running a transformers model in this process."""

    name = "hf"

    def __init__(
        self,
        model: str | Path,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        adapter: str | Path | None = None,
    ) -> None:
        self.model_path = str(model)
        self.device = device
        self.dtype = dtype
        self.adapter = Path(adapter) if adapter is not None else None
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._pieces: list[str | None] = []
        self._trie: PieceTrie | None = None

    async def model_name(self) -> str:
        return self.name_served

    @property
    def name_served(self) -> str:
        """The base's path, or with an adapter the adapter's folder name."""
        return self.adapter.name if self.adapter is not None else self.model_path

    def setup(self) -> None:
        """Load the tokenizer and model (once)."""
        if self._model is not None:
            return
        if self.adapter is not None:
            from vidagent.llm.adapter import check_adapter

            check_adapter(self.adapter, self.model_path)
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as err:
            raise MissingDependencyError(
                "transformers", "the hf LLM backend", "perception"
            ) from err
        from vidagent.tools.models import load_pretrained

        tokenizer = load_pretrained(AutoTokenizer.from_pretrained, self.model_path)
        model: Any = load_pretrained(
            AutoModelForCausalLM.from_pretrained, self.model_path, dtype=getattr(torch, self.dtype)
        )
        if self.adapter is not None:
            try:
                from peft import PeftModel
            except ImportError as err:
                raise MissingDependencyError("peft", "LoRA adapters", "perception") from err
            model = PeftModel.from_pretrained(model, str(self.adapter)).merge_and_unload()
        model.to(self.device).eval()
        if tokenizer.eos_token_id is None:
            raise LLMRequestError(f"tokenizer of {self.model_path} has no end-of-sequence token")
        self._tokenizer, self._model = tokenizer, model
        self._pieces = token_pieces(tokenizer)
        self._trie = PieceTrie(self._pieces)

    async def generate(self, request: LLMRequest) -> LLMResponse:
        return await asyncio.to_thread(self.generate_blocking, request)

    def generate_blocking(self, request: LLMRequest) -> LLMResponse:
        """:meth:`generate` on the calling thread."""
        import torch

        with self._lock:
            self.setup()
            tok, model = self._tokenizer, self._model
            eos = int(tok.eos_token_id)
            prompt = tok.apply_chat_template(
                [m.model_dump() for m in request.messages],
                add_generation_prompt=True,
                tokenize=False,
            )
            input_ids = tok(prompt, add_special_tokens=False, return_tensors="pt").input_ids
            input_ids = input_ids.to(self.device)
            prompt_len = int(input_ids.shape[1])
            s = request.sampling
            greedy = s.temperature == 0.0
            kwargs: dict[str, Any] = {
                "max_new_tokens": s.max_tokens,
                "eos_token_id": eos,
                "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else eos,
                "attention_mask": torch.ones_like(input_ids),
            }
            if greedy:
                kwargs.update(do_sample=False, num_return_sequences=1)
            else:
                kwargs.update(
                    do_sample=True,
                    temperature=s.temperature,
                    top_p=s.top_p,
                    top_k=0,
                    num_return_sequences=s.n,
                )
                if s.seed is not None:
                    torch.manual_seed(s.seed)
            if s.stop:
                kwargs.update(stop_strings=s.stop, tokenizer=tok)
            if request.structured is not None:
                constraint = build_constraint(
                    request.structured, tok, self._pieces, eos, self._trie
                )
                kwargs["logits_processor"] = [
                    ConstraintLogitsProcessor(constraint, prompt_len, eos)
                ]
            with torch.no_grad():
                output = model.generate(input_ids, **kwargs)
        rows = [self._finish(ids, eos, s.stop) for ids in output[:, prompt_len:].tolist()]
        if greedy:
            rows = rows * s.n
        return LLMResponse(
            texts=[row.text for row in rows],
            finish_reasons=[row.finish_reason for row in rows],
            usage=Usage(prompt_tokens=prompt_len, completion_tokens=sum(r.tokens for r in rows)),
            model=self.name_served,
        )

    def _finish(self, ids: list[int], eos: int, stop: list[str] | None) -> _Candidate:
        """Text, finish reason and tokens used of one generated row."""
        reason = "length"
        if eos in ids:
            ids = ids[: ids.index(eos) + 1]
            reason = "stop"
        text = self._tokenizer.decode(
            [i for i in ids if i != eos],
            skip_special_tokens=True,
            clean_up_tokenization_spaces=False,
        )
        for word in stop or []:
            cut = text.find(word)
            if cut >= 0:
                text, reason = text[:cut], "stop"
        return _Candidate(text, reason, len(ids))

    async def close(self) -> None:
        self._model = self._tokenizer = None
