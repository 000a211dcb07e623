"""In-process vLLM engine backend (``vllm.LLM``) for batch jobs on a GPU box.

``vllm`` is imported lazily, on first use, with an install hint if it is missing. ``LLM.chat`` is
synchronous and batched, so concurrent ``generate`` calls are micro-batched: calls queue up while a
batch runs in a worker thread, and the next batch takes everything queued (up to ``max_batch``).
This gives the engine the whole batch to schedule, as ``vllm serve`` would.

Requests become ``vllm.SamplingParams(..., structured_outputs=StructuredOutputsParams(...))``
(vLLM 0.32's API; the removed ``guided_decoding`` parameter is never used). If a batch fails as a
whole, its requests are re-run one by one so only the bad request gets the error.

With ``adapter`` (a PEFT LoRA folder, e.g. from ``vidagent train llm``) the engine starts with
``enable_lora`` and every request runs through that adapter (a ``LoRARequest``); the adapter is
checked against the base model first (:func:`~vidagent.llm.adapter.check_adapter`). A request
for the adapter (``adapter_name``, the folder's name by default) or for no model in particular
runs through it; a request that names the base model runs without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidagent.core.errors import MissingDependencyError
from vidagent.llm.errors import LLMError, LLMRequestError
from vidagent.llm.types import LLMRequest, LLMResponse, Usage


def sampling_kwargs(request: LLMRequest) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for ``request`` (structured output as dict)."""
    s = request.sampling
    kwargs: dict[str, Any] = {
        "n": s.n,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "max_tokens": s.max_tokens,
        "seed": s.seed,
        "stop": s.stop,
    }
    if request.structured is not None:
        kwargs["structured_outputs"] = request.structured.as_vllm()
    return kwargs


class VLLMBackend:
    """:class:`~vidagent.llm.backend.LLMBackend` over an in-process ``vllm.LLM``."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        engine_args: dict[str, Any] | None = None,
        max_batch: int = 256,
        adapter: str | Path | None = None,
        adapter_name: str | None = None,
    ) -> None:
        self.model = model
        self.engine_args = dict(engine_args or {})
        self.max_batch = max_batch
        self.adapter = Path(adapter) if adapter is not None else None
        self.adapter_name = adapter_name or (self.adapter.name if self.adapter else None)
        self._llm: Any = None
        self._vllm: Any = None
        self._lora: Any = None
        self._queue: list[tuple[LLMRequest, asyncio.Future[LLMResponse]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def model_name(self) -> str:
        return self.adapter_name or self.model

    def setup(self) -> None:
        """Import vllm and start the engine (once; takes a while)."""
        if self._llm is not None:
            return
        engine_args = dict(self.engine_args)
        if self.adapter is not None:
            from vidagent.llm.adapter import check_adapter, lora_rank, vllm_max_lora_rank

            check_adapter(self.adapter, self.model)
            engine_args.setdefault("enable_lora", True)
            engine_args.setdefault("max_lora_rank", vllm_max_lora_rank(lora_rank(self.adapter)))
        try:
            import vllm
        except ImportError as err:
            raise MissingDependencyError("vllm", "the in-process vLLM backend", "gpu") from err
        self._vllm = vllm
        if self.adapter is not None:
            from vllm.lora.request import LoRARequest

            self._lora = LoRARequest(str(self.adapter_name), 1, str(self.adapter))
        self._llm = vllm.LLM(model=self.model, **engine_args)

    async def generate(self, request: LLMRequest) -> LLMResponse:
        if request.model not in (None, self.model, self.adapter_name):
            raise LLMRequestError(
                f"the in-process vLLM engine serves {self.adapter_name or self.model}, "
                f"not {request.model}"
            )
        future: asyncio.Future[LLMResponse] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            try:
                results = await asyncio.to_thread(self.run_batch, [r for r, _ in batch])
            except Exception as err:  # e.g. the engine failed to start: every waiter hears it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            except BaseException:  # cancelled: so are the waiters of this batch
                for _, future in batch:
                    future.cancel()
                raise
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, LLMError):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def run_batch(self, requests: Sequence[LLMRequest]) -> list[LLMResponse | LLMError]:
        """Answer ``requests`` with one ``LLM.chat`` call (blocking); errors per request."""
        self.setup()
        try:
            return list(self._chat(requests))
        except Exception as err:
            if len(requests) == 1:
                return [LLMRequestError(f"vLLM engine ({self.model}) failed: {err}")]
        results: list[LLMResponse | LLMError] = []
        for request in requests:
            results.extend(self.run_batch([request]))
        return results

    def _chat(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        vllm = self._vllm
        params = []
        for request in requests:
            kwargs = sampling_kwargs(request)
            if "structured_outputs" in kwargs:
                kwargs["structured_outputs"] = vllm.sampling_params.StructuredOutputsParams(
                    **kwargs["structured_outputs"]
                )
            params.append(vllm.SamplingParams(**kwargs))
        conversations = [[m.model_dump() for m in r.messages] for r in requests]
        lora = None
        if self._lora is not None:  # the adapter, unless a request names the base itself
            lora = [None if r.model == self.model else self._lora for r in requests]
        outputs = self._llm.chat(conversations, params, use_tqdm=False, lora_request=lora)
        return [self._response(out) for out in outputs]

    def _response(self, output: Any) -> LLMResponse:
        candidates = sorted(output.outputs, key=lambda c: c.index)
        return LLMResponse(
            texts=[c.text for c in candidates],
            finish_reasons=[c.finish_reason for c in candidates],
            usage=Usage(
                prompt_tokens=len(output.prompt_token_ids or []),
                completion_tokens=sum(len(c.token_ids) for c in candidates),
            ),
            model=self.adapter_name or self.model,
        )

    async def close(self) -> None:
        """Shut the engine down and drop it."""
        llm, self._llm = self._llm, None
        if llm is not None:
            engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
            if engine_core is not None:
                engine_core.shutdown()
