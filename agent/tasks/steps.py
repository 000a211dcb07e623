"""The steps every task shares: relevance, timeline text, examples, the record of the calls.

- :func:`segment_relevance`: how relevant each segment is to a query, by FAISS inner-product search
  of the query's embedding over two indexes: the segments' visual embeddings (query embedded with
  the perception embedder's text tower, same space) and their caption+action text (MiniLM).
  Each source is min-max scaled to [0, 1] and the available ones averaged, so the two cosine
  scales never compete.
- :func:`timeline_text`: :func:`vidagent.tasks.render.render_timeline` within the character
  budget; when the video does not fit, the most relevant segments are kept (evenly spread ones
  without relevance).
- :func:`pick_examples`: in-context examples from an :class:`~vidagent.retrieval.ExampleBank` (MMR),
  never from the query's own video; no bank, no examples.
- :func:`record_calls`: each request sent and its result into the run; a request's
  :class:`LLMCall` carries its response or its error (a failed request does not lose the others).

Every function takes its dependencies as arguments; nothing here loads a model by itself. The
order these steps run in lives in :mod:`vidagent.tasks.pipeline`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np
from pydantic import Field

from vidagent.core.errors import VidagentError
from vidagent.core.records import Record, Segment, Timeline
from vidagent.llm.errors import LLMError
from vidagent.llm.types import LLMRequest, LLMResponse
from vidagent.tasks.render import RenderedTimeline, RenderOptions, render_timeline
from vidagent.tasks.run import ExampleUsed, LLMCall, RunRecord, TaskName

if TYPE_CHECKING:
    from vidagent.prompts.loader import PromptTemplate
    from vidagent.retrieval.bank import ExampleBank
    from vidagent.store.perception import PerceptionStore

DEFAULT_LLM_MODEL = "Qwen/Qwen2.5-7B-Instruct"
"""The LLM a GPU user gets without ``--llm-model`` (served by vLLM, or in-process)."""


class TaskError(VidagentError):
    """A task cannot produce its result (its LLM call failed, the video has no segments...)."""


class QueryEmbedder(Protocol):
    """Embeds text into the segments' visual space
    (:class:`vidagent.tools.visual_embedder.SegmentEmbedder`)."""

    def embed_text(self, texts: Sequence[str]) -> np.ndarray: ...


class TextEmbedderLike(Protocol):
    """A sentence embedder (:class:`vidagent.retrieval.SentenceTransformerEmbedder`)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class TaskOptions(Record):
    """How much of the video and how many examples go into a prompt."""

    max_timeline_chars: int = Field(default=4000, ge=40)
    k: int = Field(default=4, ge=0, description="In-context examples (0: none)")
    strategy: str = "mmr"
    lambda_: float = Field(default=0.5, ge=0.0, le=1.0)
    fetch_k: int = Field(default=20, ge=1)
    max_actions: int = Field(default=2, ge=0, description="Action labels per timeline line")


class Relevance(Record):
    """Per-segment relevance to a query: raw cosine per source, and the combined [0, 1] score."""

    visual: list[float] | None = None
    text: list[float] | None = None
    combined: list[float] | None = None


def segment_text(segment: Segment) -> str:
    """What a segment says in words (captions and action labels), for text embedding."""
    parts = [c.text.strip() for c in segment.captions[:1]]
    parts += [a.text for a in segment.actions[:3]]
    return "; ".join(p for p in parts if p) or segment.token


def segment_vectors(timeline: Timeline, store: PerceptionStore | None) -> np.ndarray | None:
    """``(segments, D)`` visual embeddings from the perception store; None if any is missing."""
    if store is None or not timeline.segments:
        return None
    rows: list[np.ndarray] = []
    arrays: dict[str, np.ndarray] = {}
    for seg in timeline.segments:
        ref = seg.embedding
        if ref is None:
            return None
        if ref.key not in arrays:
            stored = store.get(ref.key)
            if stored is None:
                return None
            arrays[ref.key] = stored.array("embeddings")
        rows.append(np.asarray(arrays[ref.key][ref.row], dtype=np.float32))
    return np.stack(rows)


def faiss_scores(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine similarity of ``query`` to every row of ``vectors`` by an exact FAISS IP search."""
    import faiss

    base = np.ascontiguousarray(_unit(vectors), dtype=np.float32)
    q = np.ascontiguousarray(_unit(query.reshape(1, -1)), dtype=np.float32)
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    sims, ids = index.search(q, base.shape[0])
    scores = np.zeros(base.shape[0], dtype=np.float32)
    scores[ids[0]] = sims[0]
    return scores


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def _scaled(scores: np.ndarray) -> np.ndarray:
    low, high = float(scores.min()), float(scores.max())
    return np.ones_like(scores) if high - low < 1e-9 else (scores - low) / (high - low)


def segment_relevance(
    timeline: Timeline,
    query: str,
    *,
    store: PerceptionStore | None = None,
    query_embedder: QueryEmbedder | None = None,
    text_embedder: TextEmbedderLike | None = None,
) -> Relevance:
    """Relevance of each segment to ``query`` from whichever sources are available."""
    visual = text = None
    if query_embedder is not None:
        vectors = segment_vectors(timeline, store)
        if vectors is not None:
            visual = faiss_scores(vectors, np.asarray(query_embedder.embed_text([query]))[0])
    if text_embedder is not None and timeline.segments:
        texts = [segment_text(s) for s in timeline.segments]
        vecs = np.asarray(text_embedder.embed([query, *texts]))
        text = faiss_scores(vecs[1:], vecs[0])
    present = [s for s in (visual, text) if s is not None]
    combined = np.mean([_scaled(s) for s in present], axis=0) if present else None
    return Relevance(
        visual=None if visual is None else [round(float(v), 6) for v in visual],
        text=None if text is None else [round(float(v), 6) for v in text],
        combined=None if combined is None else [round(float(v), 6) for v in combined],
    )


def timeline_text(
    timeline: Timeline, options: TaskOptions, relevance: Relevance | None = None
) -> RenderedTimeline:
    """The timeline as prompt text within ``options.max_timeline_chars``."""
    if not timeline.segments:
        raise TaskError(f"{timeline.video.path}: the timeline has no segments")
    render = RenderOptions(max_chars=options.max_timeline_chars, max_actions=options.max_actions)
    priority = relevance.combined if relevance is not None else None
    rendered = render_timeline(timeline, render, priority=priority)
    if not rendered.shown:
        raise TaskError(
            f"max_timeline_chars={options.max_timeline_chars} is too small for one segment line"
        )
    return rendered


def pick_examples(
    bank: ExampleBank | None,
    query: str,
    options: TaskOptions,
    *,
    task: str | None,
    exclude_sources: Sequence[str] = (),
    k: int | None = None,
) -> list[ExampleUsed]:
    """Up to ``k`` (default ``options.k``) examples of ``task`` for ``query``; [] without a bank."""
    want = options.k if k is None else k
    if bank is None or want < 1:
        return []
    from vidagent.retrieval.select import select_examples

    selected = select_examples(
        bank,
        query,
        want,
        strategy=options.strategy,  # type: ignore[arg-type]
        lambda_=options.lambda_,
        fetch_k=options.fetch_k,
        exclude_sources=[s for s in exclude_sources if s],
        task=task,
    )
    return [
        ExampleUsed(
            id=s.id,
            similarity=round(s.similarity, 6),
            video_id=s.example.video_id,
            input=s.example.input,
            target=s.example.target,
        )
        for s in selected
    ]


def video_sources(timeline: Timeline) -> list[str]:
    """Ids of the query video an example must not come from (no leakage)."""
    from pathlib import Path

    info = timeline.video
    return [s for s in (info.content_hash, Path(info.path).stem, info.path) if s]


class CallOutcome(NamedTuple):
    """One request as recorded in the run, and its response (None: it failed, ``call.error``)."""

    call: LLMCall
    response: LLMResponse | None


def record_calls(
    run: RunRecord,
    requests: Sequence[LLMRequest],
    results: Sequence[LLMResponse | LLMError],
) -> list[CallOutcome]:
    """Record each request and its result (response or error) in ``run``, in order."""
    if len(requests) != len(results):
        raise TaskError(f"{run.task}: {len(results)} LLM results for {len(requests)} requests")
    out: list[CallOutcome] = []
    for request, result in zip(requests, results, strict=True):
        call = LLMCall(
            messages=request.messages,
            structured=request.structured,
            n=request.sampling.n,
            temperature=request.sampling.temperature,
        )
        if isinstance(result, LLMError):
            call.error = f"{type(result).__name__}: {result}"
            out.append(CallOutcome(call, None))
        else:
            call.texts = list(result.texts)
            call.finish_reasons = list(result.finish_reasons)
            call.usage = result.usage
            call.model = result.model
            call.cached = result.cached
            call.latency_s = round(result.latency_s, 6)
            out.append(CallOutcome(call, result))
        run.add_call(call)
    return out


def new_run(task: TaskName, timeline: Timeline, query: str, prompt: PromptTemplate) -> RunRecord:
    """An empty run record of ``task`` on ``timeline`` with ``prompt``."""
    return RunRecord(
        task=task,
        video=timeline.video.path,
        video_hash=timeline.video.content_hash,
        query=query,
        prompt=prompt.source or prompt.name,
        segments_total=len(timeline.segments),
    )
