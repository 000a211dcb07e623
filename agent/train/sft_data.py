"""Supervised fine-tuning examples of the reasoner, rendered by the inference code itself.

A training prompt must be the prompt inference sends, byte for byte, or the adapter learns a task
it is never asked. So nothing here renders a prompt: each sample goes through its benchmark's own
:meth:`~vidagent.evals.benchmark.Benchmark.solve` (the task spec, :func:`prepare_task`, the
template, the examples, the timeline budget: everything an eval run does) against a
:class:`CaptureBackend` that records the requests and answers each with the sample's ground truth
written in the task's guided-output format:

- ``lta`` (ego4d_lta): the Z future actions as the schema's compact JSON
  ``{"actions":[{"verb":V,"noun":N},...]}``, labels spelled as the taxonomy;
- ``qa`` (nextqa, intentqa, egoschema): the option letter;
- ``moment`` (charades_sta, qvhighlights): ``{"start":TOKEN,"end":TOKEN}``, the first and last
  shown segment that overlaps the ground-truth window.

Because the target goes back through the task's own parse, a target the task would not accept
(a letter outside the choices, a token not shown) fails there, and that sample is skipped with
its reason. A prompt change therefore changes training and inference alike.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vidagent.core.errors import VidagentError
from vidagent.core.records import ChatMessage, Timeline
from vidagent.evals.benchmark import Benchmark, Params, SolveContext
from vidagent.evals.common import Sample, Taxonomy
from vidagent.llm.backend import LLMClient
from vidagent.llm.errors import LLMRequestError
from vidagent.llm.types import LLMRequest, LLMResponse, StructuredOutput
from vidagent.tasks.steps import TaskOptions

COMPACT = (",", ":")


class SFTExample(BaseModel):
    """One training pair: the chat messages inference sends and the completion to learn."""

    model_config = ConfigDict(extra="forbid")

    key: str
    messages: list[ChatMessage] = Field(min_length=1)
    completion: str = Field(min_length=1)
    prompt: str = Field(default="", description="The prompt template file the messages came from")


class SFTData(BaseModel):
    """The examples of one split, and the samples that gave none (with why)."""

    model_config = ConfigDict(extra="forbid")

    examples: list[SFTExample] = Field(default_factory=list)
    skipped: dict[str, str] = Field(default_factory=dict)


class _NoTarget(LLMRequestError):
    """The sample has no ground truth this request can be answered with."""


class CaptureBackend:
    """An LLM backend that records every request and answers it with :attr:`target` (a callable
    of the request, set per sample): the requests a solve sends, without any model."""

    name = "capture"

    def __init__(self) -> None:
        self.requests: list[LLMRequest] = []
        self.target: Callable[[LLMRequest], str] | None = None

    async def model_name(self) -> str:
        return "capture"

    async def generate(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        if self.target is None:
            raise _NoTarget("no target set")
        text = self.target(request)
        n = request.sampling.n
        return LLMResponse(texts=[text] * n, finish_reasons=["stop"] * n, model="capture")

    async def close(self) -> None:
        return None


def lta_target(sample: Sample, taxonomy: Taxonomy, z: int) -> str:
    """The Z future actions of an LTA sample as the schema's compact JSON."""
    verbs, nouns = sample.target.get("verb"), sample.target.get("noun")
    if not verbs or not nouns:
        raise _NoTarget(f"{sample.key}: no future actions (an unannotated file?)")
    pairs = list(zip(verbs, nouns, strict=True))[:z]
    actions = [{"verb": taxonomy.verbs[v], "noun": taxonomy.nouns[n]} for v, n in pairs]
    return json.dumps({"actions": actions}, separators=COMPACT, ensure_ascii=False)


def choice_target(sample: Sample, structured: StructuredOutput) -> str:
    """The option letter of a QA sample (checked against the request's choices)."""
    if sample.answer is None:
        raise _NoTarget(f"{sample.key}: no answer")
    letter = string.ascii_uppercase[sample.answer]
    if letter not in (structured.choices or []):
        raise _NoTarget(f"{sample.key}: answer {letter} is not among {structured.choices}")
    return letter


def span_target(sample: Sample, timeline: Timeline, structured: StructuredOutput) -> str:
    """``{"start":T,"end":T}``: the first and last shown segment overlapping the GT window."""
    if not sample.windows:
        raise _NoTarget(f"{sample.key}: no ground-truth window")
    start, end = sample.windows[0][0], sample.windows[0][1]
    schema: dict[str, Any] = structured.json_schema or {}
    shown = set(schema.get("properties", {}).get("start", {}).get("enum", []))
    hits = [
        s.token for s in timeline.segments if s.token in shown and s.start < end and s.end > start
    ]
    if not hits:
        raise _NoTarget(f"{sample.key}: no shown segment overlaps [{start:g}, {end:g}]")
    return json.dumps({"start": hits[0], "end": hits[-1]}, separators=COMPACT)


def _target(
    sample: Sample, timeline: Timeline, taxonomy: Taxonomy | None, z: int
) -> Callable[[LLMRequest], str]:
    def target(request: LLMRequest) -> str:
        structured = request.structured
        if structured is None:
            raise _NoTarget(f"{sample.key}: the task sent an unconstrained request")
        if sample.kind == "lta":
            if taxonomy is None:
                raise _NoTarget("an LTA target needs the taxonomy")
            return lta_target(sample, taxonomy, z)
        if sample.kind == "qa":
            return choice_target(sample, structured)
        return span_target(sample, timeline, structured)

    return target


def build_examples(
    benchmark: Benchmark[Any],
    samples: Iterable[Sample],
    timelines: Callable[[str], Timeline],
    *,
    options: TaskOptions,
    params: Params,
    taxonomy: Taxonomy | None = None,
    bank: Any = None,
) -> SFTData:
    """The SFT examples of ``samples``: each solved by ``benchmark`` against a capture backend
    with the ground truth as the answer (module docstring). A sample whose timeline is missing
    or whose target the task rejects is skipped, its reason kept in :attr:`SFTData.skipped`."""
    backend = CaptureBackend()
    client = LLMClient(backend, max_concurrency=1)
    context = SolveContext(client, options, params, bank=bank, taxonomy=taxonomy)
    z = params.z or 20
    data = SFTData()
    try:
        for sample in samples:
            try:
                timeline = timelines(sample.video_id)
                backend.requests.clear()
                backend.target = _target(sample, timeline, taxonomy, z)
                solution = benchmark.solve(sample, timeline, context)
            except VidagentError as err:  # a missing timeline, a task error, a bad target
                data.skipped[sample.key] = str(err)
                continue
            for i, request in enumerate(backend.requests):
                data.examples.append(
                    SFTExample(
                        key=f"{sample.key}#{i}" if len(backend.requests) > 1 else sample.key,
                        messages=request.messages,
                        completion=backend.target(request),
                        prompt=solution.run.prompt,
                    )
                )
    finally:
        client.close()
    return data


def data_hash(examples: Sequence[SFTExample]) -> str:
    """sha256 of the examples as JSON Lines (what changes the training data changes it)."""
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(ex.model_dump_json(exclude={"prompt"}).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def prompt_hash(examples: Sequence[SFTExample]) -> str:
    """sha256 of the prompt template files the examples were rendered with (their names when a
    template is not a file, e.g. an override given as text)."""
    digest = hashlib.sha256()
    for source in sorted({ex.prompt for ex in examples}):
        path = Path(source)
        digest.update(path.read_bytes() if source and path.is_file() else source.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def require_examples(data: SFTData, split: str) -> list[SFTExample]:
    """The examples of ``split``; an empty split is an :class:`EmptySplitError` naming why."""
    from vidagent.train.errors import EmptySplitError

    if data.examples:
        return data.examples
    why = next(iter(data.skipped.values()), "no samples")
    raise EmptySplitError(
        f"the {split} split gives no training example ({len(data.skipped)} samples skipped; "
        f"first: {why})"
    )


__all__ = [
    "CaptureBackend",
    "SFTData",
    "SFTExample",
    "build_examples",
    "choice_target",
    "data_hash",
    "lta_target",
    "prompt_hash",
    "require_examples",
    "span_target",
    "split_by_video",
]


def split_by_video(
    samples: Sequence[Sample], fraction: float, seed: int = 0
) -> tuple[list[Sample], list[Sample]]:
    """``(train, val)``: the samples of a ``fraction`` of the videos held out (by a seeded hash of
    the video id, so a video's samples stay on one side and the split is stable)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val fraction must be in (0, 1), got {fraction}")
    videos = sorted({s.video_id for s in samples})

    def rank(video: str) -> str:
        return hashlib.sha256(f"{seed}:{video}".encode()).hexdigest()

    held = set(sorted(videos, key=rank)[: max(1, round(fraction * len(videos)))])
    if len(held) == len(videos):
        held = set()
    return [s for s in samples if s.video_id not in held], [
        s for s in samples if s.video_id in held
    ]
