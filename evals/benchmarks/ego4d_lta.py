"""Ego4D long-term action anticipation (Grauman et al., CVPR 2022; github.com/EGO4D/forecasting).

- Source: ``fho_lta_{train,val,test_unannotated}.json`` (``{"clips": [...]}``, each
  element one annotated action: clip_uid, video_uid, action_idx, verb(_label), noun(_label),
  action_clip_{start,end}_sec...) and ``fho_lta_taxonomy.json``
  (``{"verbs": [...], "nouns": [...]}``, needed to run: ``--taxonomy``).
- Split: ``val`` scored locally; ``test_unannotated`` only through the challenge server;
  ``train`` gives the bank examples (task ``lta``).
- Samples: actions are grouped by clip and ordered by action_idx; every window of N=8
  consecutive observed actions followed by Z=20 more is one sample, keyed
  ``{clip_uid}_{action_idx}`` of the last observed action (clips with fewer than N + Z actions
  give none). Unannotated files have no labels; their windows follow the same rule. A bank
  example is the same window: input = the observed actions as the anticipation prompt shows them
  (``take knife, cut onion, ...``, taxonomy names cleaned), target = the future ones.
- Answer format: the challenge's ``outputs.json``: ``{key: {"verb": K x Z, "noun": K x Z}}`` (ints).
- Metric: ED@Z=20 as the official ``edit_distance``: Levenshtein distance between a candidate and
  the truth divided by Z, minimum over the K=5 candidates, mean over windows; verb and noun each
  take their own best candidate; action compares (verb, noun) pairs (the official code encodes a
  pair as ``verb * n_nouns + noun``; the distance only tests equality, so any one-to-one encoding
  gives the same number). Reported as fractions rounded to 4 decimals (lower is better).
- Caveats: data under the Ego4D licence; tests build files in this format. A window with no
  prediction scores the worst distance 1.0 and is counted under ``missing``. Candidates longer
  than Z are cut to Z; shorter ones are compared as they are. Z (``--z``), K (``--candidates``)
  and, for bank examples, N (``--n-observed``) can be changed; the official figures use 8/20/5.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidagent.evals.benchmark import (
    DEFAULT_PARAMS,
    Benchmark,
    Params,
    Solution,
    SolveContext,
    succeeded,
)
from vidagent.evals.common import EvalError, Sample, SampleResult, load_json
from vidagent.evals.edit_distance import min_edit_distance

if TYPE_CHECKING:
    from vidagent.core.records import Timeline
    from vidagent.retrieval.bank import Example
    from vidagent.tasks import Candidate

N_OBSERVED = 8
Z = 20
K = 5
Outputs = dict[str, dict[str, list[list[int]]]]


@dataclass(frozen=True)
class LTAAction:
    """One annotated action of an Ego4D LTA clip (the fields the windows use)."""

    clip_uid: str
    video_uid: str
    action_idx: int
    verb: str
    noun: str
    verb_label: int
    noun_label: int
    start_sec: float
    end_sec: float


@dataclass(frozen=True)
class Window:
    """``observed`` actions of one clip followed by ``future`` ones."""

    observed: list[LTAAction]
    future: list[LTAAction]

    @property
    def key(self) -> str:
        return f"{self.observed[-1].clip_uid}_{self.observed[-1].action_idx}"


def clean_ego4d_label(name: str) -> str:
    """Readable Ego4D taxonomy name: ``take_(pick,_grab,_get)`` -> ``take``,
    ``tape_measure`` -> ``tape measure``. Synonym lists in parentheses are dropped."""
    return re.sub(r"_?\(.*\)$", "", name.strip()).replace("_", " ").strip()


def lta_actions_text(actions: Sequence[LTAAction]) -> str:
    """``take knife, cut onion, ...``: the action sequence as the anticipation prompt shows it."""
    return ", ".join(f"{clean_ego4d_label(a.verb)} {clean_ego4d_label(a.noun)}" for a in actions)


def _clips(path: Path) -> list[Any]:
    data = load_json(path)
    clips = data.get("clips") if isinstance(data, dict) else None
    if not isinstance(clips, list):
        raise EvalError(path, "expected an Ego4D LTA file: an object with a 'clips' list")
    return clips


def _lta_action(path: Path, pos: int, item: Any) -> LTAAction:
    if not isinstance(item, dict):
        raise EvalError(path, f"clips[{pos}] is not an object")
    try:
        return LTAAction(
            clip_uid=str(item["clip_uid"]),
            video_uid=str(item["video_uid"]),
            action_idx=int(item["action_idx"]),
            verb=str(item["verb"]),
            noun=str(item["noun"]),
            verb_label=int(item["verb_label"]),
            noun_label=int(item["noun_label"]),
            start_sec=float(item["action_clip_start_sec"]),
            end_sec=float(item["action_clip_end_sec"]),
        )
    except KeyError as exc:
        raise EvalError(
            path, f"clips[{pos}] has no {exc.args[0]!r} (an unannotated test file?)"
        ) from exc
    except (TypeError, ValueError) as exc:
        raise EvalError(path, f"clips[{pos}] has an invalid value ({exc})") from exc


def lta_windows(
    path: Path | str, *, n_observed: int = N_OBSERVED, n_future: int = Z, stride: int = 1
) -> list[Window]:
    """Every window of an annotated LTA file (see module doc), clip by clip."""
    path = Path(path)
    return _windows(path, _clips(path), n_observed, n_future, stride)


def _windows(
    path: Path, clips: list[Any], n_observed: int, n_future: int, stride: int = 1
) -> list[Window]:
    if n_observed < 1 or n_future < 1 or stride < 1:
        raise EvalError(path, "n_observed, n_future and stride must be at least 1")
    by_clip: dict[str, list[LTAAction]] = {}
    first: dict[tuple[str, int], int] = {}
    for pos, item in enumerate(clips):
        action = _lta_action(path, pos, item)
        _once(path, first, (action.clip_uid, action.action_idx), pos)
        by_clip.setdefault(action.clip_uid, []).append(action)
    windows = []
    for actions in by_clip.values():
        actions.sort(key=lambda a: a.action_idx)
        for end in range(n_observed, len(actions) - n_future + 1, stride):
            windows.append(Window(actions[end - n_observed : end], actions[end : end + n_future]))
    return windows


def _once(path: Path, first: dict[tuple[str, int], int], key: tuple[str, int], pos: int) -> None:
    """A clip's action index must be unique: a repeated one would key two windows alike."""
    if key in first:
        raise EvalError(
            path,
            f"clips[{pos}]: action {key[1]} of clip {key[0]} again (first: clips[{first[key]}])",
        )
    first[key] = pos


def lta_examples(
    path: Path | str,
    *,
    n_observed: int = N_OBSERVED,
    n_future: int = Z,
    stride: int = 1,
    task: str = "lta",
    input_text: Callable[[Sequence[LTAAction]], str] = lta_actions_text,
    target_text: Callable[[Sequence[LTAAction]], str] = lta_actions_text,
) -> list[Example]:
    """Bank examples from an ``fho_lta_{train,val}.json`` file, one per window."""
    from vidagent.retrieval.bank import Example

    examples = []
    for w in lta_windows(path, n_observed=n_observed, n_future=n_future, stride=stride):
        last = w.observed[-1]
        examples.append(
            Example(
                task=task,
                input=input_text(w.observed),
                target=target_text(w.future),
                video_id=last.video_uid,
                clip_id=last.clip_uid,
                key=w.key,
                metadata={
                    "last_action_idx": last.action_idx,
                    "observed_end_sec": last.end_sec,
                    "observed_verb_labels": [a.verb_label for a in w.observed],
                    "observed_noun_labels": [a.noun_label for a in w.observed],
                    "future_verb_labels": [a.verb_label for a in w.future],
                    "future_noun_labels": [a.noun_label for a in w.future],
                },
            )
        )
    return examples


def _unannotated(path: Path, clips: list[Any], n_observed: int, z: int) -> list[Sample]:
    by_clip: dict[str, list[dict[str, Any]]] = {}
    first: dict[tuple[str, int], int] = {}
    for pos, item in enumerate(clips):
        if not isinstance(item, dict) or "clip_uid" not in item or "action_idx" not in item:
            raise EvalError(path, f"clips[{pos}] lacks clip_uid/action_idx")
        try:
            index = int(item["action_idx"])
        except (TypeError, ValueError) as exc:
            raise EvalError(path, f"clips[{pos}] has an invalid action_idx ({exc})") from exc
        _once(path, first, (str(item["clip_uid"]), index), pos)
        by_clip.setdefault(str(item["clip_uid"]), []).append(item)
    samples = []
    for clip_uid, actions in by_clip.items():
        actions.sort(key=lambda a: int(a["action_idx"]))
        for end in range(n_observed, len(actions) - z + 1):
            last = actions[end - 1]
            samples.append(
                Sample(
                    key=f"{clip_uid}_{int(last['action_idx'])}",
                    video_id=clip_uid,
                    kind="lta",
                    observed_end=float(last.get("action_clip_end_sec", 0.0)),
                )
            )
    return samples


def lta_prediction(
    candidates: Sequence[Candidate], verbs: Sequence[str], nouns: Sequence[str], z: int, k: int
) -> dict[str, list[list[int]]]:
    """The challenge's ``{"verb": K x Z, "noun": K x Z}`` taxonomy indices from the candidates.

    The official evaluation stacks the candidates into K x Z arrays, so the shape is kept exact: a
    candidate that failed (an LLM error, no actions) is replaced by the next usable one in turn, a
    short one is padded with its own last action, a long one is cut, and with fewer than K
    candidates the usable ones repeat. The run's ``valid`` flag reports whether any of this was
    needed beyond taking the LLM's output as is.
    """
    vi, ni = {v: i for i, v in enumerate(verbs)}, {n: i for i, n in enumerate(nouns)}
    usable = [[(vi[a.verb], ni[a.noun]) for a in c.actions][:z] for c in candidates if c.actions]
    if not usable:
        raise EvalError("anticipation", "no candidate has any action")
    rows = [usable[i % len(usable)] for i in range(k)]
    rows = [row + [row[-1]] * (z - len(row)) for row in rows]
    return {"verb": [[v for v, _ in r] for r in rows], "noun": [[n for _, n in r] for r in rows]}


def _label_rows(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(row, list)
        and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in row)
        for row in value
    )


class Ego4DLTA(Benchmark[Outputs]):
    name = "ego4d_lta"
    description = "Ego4D long-term action anticipation: edit distance ED@Z of K candidates"
    kind = "lta"
    submission_file = "outputs.json"
    uses = frozenset({"z", "candidates", "observed"})
    taxonomy_file = "fho_lta_taxonomy.json"
    bank_task = "lta"

    def load_samples(self, path: Path | str, params: Params = DEFAULT_PARAMS) -> list[Sample]:
        """The windows of an LTA file, with their future labels when the file has them."""
        path = Path(path)
        n_observed, z = params.observed or N_OBSERVED, params.z or Z
        clips = _clips(path)
        if not (clips and isinstance(clips[0], dict) and "verb_label" in clips[0]):
            return _unannotated(path, clips, n_observed, z)
        return [
            Sample(
                key=w.key,
                video_id=w.observed[-1].clip_uid,
                kind="lta",
                question=lta_actions_text(w.observed),
                observed_end=w.observed[-1].end_sec,
                target={
                    "verb": [a.verb_label for a in w.future],
                    "noun": [a.noun_label for a in w.future],
                },
            )
            for w in _windows(path, clips, n_observed, z)
        ]

    def read_predictions(self, path: Path | str) -> Outputs:
        data = load_json(path)
        if not isinstance(data, dict):
            raise EvalError(path, 'expected {key: {"verb": K x Z, "noun": K x Z}}')
        for key, value in data.items():
            if not isinstance(value, dict) or not {"verb", "noun"} <= set(value):
                raise EvalError(path, f"{key!r}: expected verb and noun candidate lists")
            if not all(_label_rows(value[name]) for name in ("verb", "noun")):
                raise EvalError(
                    path, f"{key!r}: verb and noun must be K lists of Z taxonomy indices (ints)"
                )
            if len(value["verb"]) != len(value["noun"]):
                raise EvalError(
                    path, f"{key!r}: verb and noun have different numbers of candidates"
                )
        return data

    def solve(self, sample: Sample, timeline: Timeline, context: SolveContext) -> Solution:
        """K candidate futures of Z actions from ``anticipate_actions``, as taxonomy indices."""
        from vidagent.evals.sources import observed_part
        from vidagent.tasks import anticipate_actions

        if context.taxonomy is None:
            raise EvalError("--taxonomy", "anticipation needs the verb/noun taxonomy")
        verbs, nouns = context.taxonomy.verbs, context.taxonomy.nouns
        z, k = context.params.z or Z, context.params.candidates or K
        ant = anticipate_actions(
            timeline, verbs=verbs, nouns=nouns, llm=context.llm, bank=context.bank,
            context=context.options, z=z, k=k,
            observed=observed_part(timeline, sample.observed_end or timeline.video.duration),
        )  # fmt: skip
        pred = lta_prediction(ant.candidates, verbs, nouns, z, k)
        return Solution(pred, ant.valid_rate == 1.0, ant.run)

    def submission(self, samples: Sequence[Sample], results: Mapping[str, SampleResult]) -> Outputs:
        return {s.key: r.prediction for s, r in succeeded(samples, results)}

    def has_ground_truth(self, samples: Sequence[Sample]) -> bool:
        return any(s.target for s in samples)

    def score(
        self, samples: Sequence[Sample], predictions: Outputs, params: Params = DEFAULT_PARAMS
    ) -> dict[str, Any]:
        """ED@Z for verb, noun and action (see module doc)."""
        z = params.z or Z
        scored = [s for s in samples if s.target]
        if not scored:
            raise EvalError("annotations", "no labelled windows to score (an unannotated file?)")
        totals = {"verb": 0.0, "noun": 0.0, "action": 0.0}
        missing = 0
        for sample in scored:
            pred = predictions.get(sample.key)
            if pred is None:
                missing += 1
                for name in totals:
                    totals[name] += 1.0
                continue
            verbs, nouns = pred["verb"], pred["noun"]
            truth_v, truth_n = sample.target["verb"], sample.target["noun"]
            totals["verb"] += min_edit_distance(verbs, truth_v, z)
            totals["noun"] += min_edit_distance(nouns, truth_n, z)
            pairs = [list(zip(v, n, strict=False)) for v, n in zip(verbs, nouns, strict=True)]
            truth = list(zip(truth_v, truth_n, strict=True))
            totals["action"] += min_edit_distance(pairs, truth, z)
        n = len(scored)
        metrics: dict[str, Any] = {f"ED_{k}": round(v / n, 4) for k, v in totals.items()}
        metrics.update({"Z": z, "n": n, "missing": missing})
        return metrics

    def bank_examples(
        self, path: Path | str, *, task: str | None = None, params: Params = DEFAULT_PARAMS
    ) -> list[Example]:
        return lta_examples(
            path, n_observed=params.observed or N_OBSERVED, n_future=params.z or Z,
            task=task or "lta",
        )  # fmt: skip


BENCHMARK = Ego4DLTA()
