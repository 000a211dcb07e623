"""Ego4D long-term action anticipation: the next Z (verb, noun) actions, K candidate sequences.

The input is what was observed: the top action label of each of the first ``observed`` segments
(``take knife, cut onion, ...``, the format of the LTA example bank) plus their captions as scene
context. The output is constrained by a JSON schema: ``{"actions": [{"verb": V, "noun": N}, ...]}``
with exactly Z items (``minItems = maxItems = Z``) whose verb and noun are ``enum``s of the
taxonomy's own entries, so under guided decoding every candidate parses and no label is outside the
taxonomy. ``max_tokens`` is the byte length of the longest possible output, so a candidate is never
cut (unless ``max_tokens`` is capped explicitly).

K candidates, two schedules:

- ``sample``: one request with ``n = K`` samples (temperature > 0, seeded).
- ``examples`` (PALM): K requests, candidate i prompted with its own subset of the retrieved
  examples (examples ``i, i+K, i+2K, ...`` of a pool of ``K * k`` picked by MMR). A request that
  fails leaves its candidate with the error; the other candidates stand.

Without guided decoding (``guided=False``, for backends that cannot constrain), outputs are mapped
to the taxonomy by :func:`map_to_taxonomy` (closest label by ``difflib``, padded or truncated to
Z). Every candidate records whether it was valid as produced; ``valid_rate`` reports the share.

The task is :class:`AnticipateSpec`, run by :mod:`vidagent.tasks.pipeline` (no timeline text nor
relevance: the prompt shows the observed part itself); :func:`anticipate_actions` is the
plain-function entry point.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from vidagent.core.records import Record, Timeline
from vidagent.llm.backend import LLMClient
from vidagent.llm.types import SamplingParams, StructuredOutput
from vidagent.prompts.loader import PromptTemplate
from vidagent.tasks.pipeline import Focus, PromptCall, TaskContext, TaskDeps, run_task
from vidagent.tasks.run import RunRecord, TaskName
from vidagent.tasks.steps import CallOutcome, TaskError, TaskOptions

if TYPE_CHECKING:
    from vidagent.retrieval.bank import ExampleBank

Schedule = Literal["sample", "examples"]


class ActionPair(Record):
    verb: str
    noun: str


class Candidate(Record):
    """One predicted sequence of Z actions; ``valid``: taken as produced, without mapping."""

    actions: list[ActionPair] = Field(default_factory=list)
    valid: bool = False
    error: str | None = None


class AnticipationResult(Record):
    z: int
    k: int
    schedule: Schedule
    guided: bool
    observed_segments: list[int]
    observed: str
    candidates: list[Candidate]
    valid_rate: float
    run: RunRecord


def lta_schema(verbs: Sequence[str], nouns: Sequence[str], z: int) -> dict[str, Any]:
    """Exactly ``z`` (verb, noun) items, each an enum member of the taxonomy."""
    item = {
        "type": "object",
        "properties": {
            "verb": {"type": "string", "enum": list(verbs)},
            "noun": {"type": "string", "enum": list(nouns)},
        },
        "required": ["verb", "noun"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"actions": {"type": "array", "items": item, "minItems": z, "maxItems": z}},
        "required": ["actions"],
        "additionalProperties": False,
    }


def output_bound(verbs: Sequence[str], nouns: Sequence[str], z: int) -> int:
    """Bytes of the longest output the schema allows (a token is at least one byte)."""
    longest = max(len(json.dumps(v).encode()) for v in verbs) + max(
        len(json.dumps(n).encode()) for n in nouns
    )
    return z * (longest + len('{"verb":,"noun":},')) + len('{"actions":[]}') + 8


def parse_actions(
    text: str, verbs: Sequence[str], nouns: Sequence[str], z: int
) -> list[ActionPair] | None:
    """The Z actions of a schema-valid output, else None."""
    try:
        data = json.loads(text)
        items = data["actions"]
        pairs = [ActionPair(verb=i["verb"], noun=i["noun"]) for i in items]
    except (ValueError, KeyError, TypeError):
        return None
    verb_set, noun_set = set(verbs), set(nouns)
    if len(pairs) != z or any(p.verb not in verb_set or p.noun not in noun_set for p in pairs):
        return None
    return pairs


def _closest(word: str, labels: Sequence[str]) -> str:
    readable = {_readable(label): label for label in reversed(labels)}
    match = difflib.get_close_matches(_readable(word), list(readable), n=1, cutoff=0.0)
    return readable[match[0]] if match else labels[0]


def _readable(label: str) -> str:
    return re.sub(r"_?\(.*\)$", "", label.strip().lower()).replace("_", " ").strip()


def map_to_taxonomy(
    text: str, verbs: Sequence[str], nouns: Sequence[str], z: int
) -> list[ActionPair]:
    """Best-effort Z actions from free text (unguided backends): JSON pairs if present, else
    ``verb noun`` chunks split on commas/newlines/semicolons; each word mapped to its closest
    taxonomy label (difflib); padded with the last action (or the first labels) or truncated."""
    pairs: list[tuple[str, str]] = []
    try:
        data = json.loads(text)
        items = data.get("actions", []) if isinstance(data, dict) else data
        pairs = [(str(i.get("verb", "")), str(i.get("noun", ""))) for i in items]
    except (ValueError, AttributeError, TypeError):
        for chunk in re.split(r"[,;\n]+", text):
            words = re.findall(r"[A-Za-z_()]+", chunk)
            if words:
                pairs.append((words[0], " ".join(words[1:]) or words[0]))
    mapped = [ActionPair(verb=_closest(v, verbs), noun=_closest(n, nouns)) for v, n in pairs]
    mapped = mapped[:z]
    filler = mapped[-1] if mapped else ActionPair(verb=verbs[0], noun=nouns[0])
    return mapped + [filler] * (z - len(mapped))


def observed_text(timeline: Timeline, observed: int | None) -> tuple[list[int], str, str]:
    """``(segment indexes, 'verb noun, ...', captions)`` of the observed part of the video."""
    segs = timeline.segments[: observed or len(timeline.segments)]
    if not segs:
        raise TaskError(f"{timeline.video.path}: no observed segments")
    actions = [f"{s.actions[0].verb} {s.actions[0].noun}" for s in segs if s.actions]
    captions = [s.captions[0].text.strip() for s in segs if s.captions]
    if not actions and not captions:
        raise TaskError(
            f"{timeline.video.path}: the observed segments have no actions or captions "
            "(run perception with actions)"
        )
    return [s.index for s in segs], ", ".join(actions), "; ".join(c for c in captions if c)


@dataclass(frozen=True)
class AnticipateSpec:
    """Anticipate the next ``z`` actions, ``k`` candidates (module docstring for the schedules)."""

    verbs: tuple[str, ...]
    nouns: tuple[str, ...]
    observed: int | None = None
    z: int = 20
    k: int = 5
    schedule: Schedule = "sample"
    guided: bool = True
    temperature: float = 0.7
    seed: int = 0
    max_context_chars: int = 300
    max_tokens: int | None = None

    task: ClassVar[TaskName] = "anticipate"
    prompt_name: ClassVar[str] = "lta"
    examples_task: ClassVar[str] = "lta"

    def __post_init__(self) -> None:
        if self.z < 1 or self.k < 1:
            raise TaskError(f"z and k must be >= 1, got z={self.z}, k={self.k}")
        if not self.verbs or not self.nouns:
            raise TaskError("the taxonomy needs verbs and nouns")

    @property
    def example_sets(self) -> int:
        """PALM gives each of the ``k`` candidates its own set of examples."""
        return 1 if self.schedule == "sample" else self.k

    def focus(self, timeline: Timeline) -> Focus:
        shown, actions, captions = observed_text(timeline, self.observed)
        return Focus(
            query=actions or captions,
            search=actions or captions,
            show_timeline=False,
            shown=shown,
            facts={"actions": actions, "captions": captions},
        )

    def requests(self, ctx: TaskContext) -> list[PromptCall]:
        pool = ctx.run.examples
        k, sample = self.k, self.schedule == "sample"
        subsets = [pool] if sample else [pool[i::k] for i in range(k)]
        verbs, nouns = self.verbs, self.nouns
        structured = (
            StructuredOutput.from_schema(lta_schema(verbs, nouns, self.z)) if self.guided else None
        )
        bound = output_bound(verbs, nouns, self.z)
        limit = min(bound, self.max_tokens) if self.max_tokens else bound
        variables = {
            "observed": ctx.focus.facts["actions"] or "(no action labels)",
            "context": ctx.focus.facts["captions"][: self.max_context_chars],
            "z": self.z,
        }
        return [
            PromptCall(
                {**variables, "examples": subset},
                structured,
                SamplingParams(
                    temperature=self.temperature,
                    n=k if sample else 1,
                    seed=self.seed + i,
                    max_tokens=limit,
                ),
            )
            for i, subset in enumerate(subsets)
        ]

    def result(self, ctx: TaskContext, outcomes: list[CallOutcome]) -> AnticipationResult:
        verbs, nouns, z = self.verbs, self.nouns, self.z
        candidates: list[Candidate] = []
        for call, response in outcomes:
            if response is None:
                candidates.append(Candidate(error=call.error))
                continue
            for text in response.texts:
                pairs = parse_actions(text, verbs, nouns, z)
                if pairs is not None:
                    candidates.append(Candidate(actions=pairs, valid=True))
                else:
                    mapped = map_to_taxonomy(text, verbs, nouns, z)
                    candidates.append(Candidate(actions=mapped, valid=False))
        if all(c.error for c in candidates):
            ctx.run.error = candidates[0].error
            raise TaskError(f"anticipate: every LLM call failed: {candidates[0].error}")
        return AnticipationResult(
            z=z,
            k=self.k,
            schedule=self.schedule,
            guided=self.guided,
            observed_segments=ctx.run.segments_shown,
            observed=ctx.focus.facts["actions"],
            candidates=candidates,
            valid_rate=sum(c.valid for c in candidates) / len(candidates),
            run=ctx.run,
        )


def anticipate_actions(
    timeline: Timeline,
    *,
    verbs: Sequence[str],
    nouns: Sequence[str],
    llm: LLMClient,
    bank: ExampleBank | None = None,
    prompt: PromptTemplate | None = None,
    context: TaskOptions | None = None,
    observed: int | None = None,
    z: int = 20,
    k: int = 5,
    schedule: Schedule = "sample",
    guided: bool = True,
    temperature: float = 0.7,
    seed: int = 0,
    max_context_chars: int = 300,
    max_tokens: int | None = None,
) -> AnticipationResult:
    """Predict ``k`` sequences of the next ``z`` actions after the first ``observed`` segments."""
    spec = AnticipateSpec(
        tuple(verbs),
        tuple(nouns),
        observed=observed,
        z=z,
        k=k,
        schedule=schedule,
        guided=guided,
        temperature=temperature,
        seed=seed,
        max_context_chars=max_context_chars,
        max_tokens=max_tokens,
    )
    deps = TaskDeps(llm=llm, bank=bank, prompt=prompt, options=context or TaskOptions())
    return run_task(spec, timeline, deps)
