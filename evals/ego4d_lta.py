"""Ego4D long-term action anticipation (Grauman et al., CVPR 2022; github.com/EGO4D/forecasting).

- Source: ``fho_lta_{train,val,test_unannotated}.json`` (``{"clips": [...]}``, each
  element one annotated action: clip_uid, video_uid, action_idx, verb(_label), noun(_label),
  action_clip_{start,end}_sec...) and ``fho_lta_taxonomy.json``
  (``{"verbs": [...], "nouns": [...]}``).
- Split: ``val`` scored locally; ``test_unannotated`` only through the challenge server.
- Samples: every window of N=8 consecutive observed actions of a clip followed by Z=20 more (the
  rule of :func:`agent.retrieval.builders.lta_examples`, reused), keyed ``{clip_uid}_{action_idx}``
  of the last observed action. Unannotated files have no labels; their windows follow the same rule.
- Answer format: the challenge's ``outputs.json``: ``{key: {"verb": K x Z, "noun": K x Z}}`` (ints).
- Metric: ED@Z=20 as the official ``edit_distance``: Levenshtein distance between a candidate and
  the truth divided by Z, minimum over the K=5 candidates, mean over windows; verb and noun each
  take their own best candidate; action compares (verb, noun) pairs (the official code encodes a
  pair as ``verb * n_nouns + noun``; the distance only tests equality, so any one-to-one encoding
  gives the same number). Reported as fractions rounded to 4 decimals (lower is better).
- Caveats: data under the Ego4D licence; tests build files in this format. A window with no
  prediction scores the worst distance 1.0 and is counted under ``missing``. Candidates longer
  than Z are cut to Z; shorter ones are compared as they are.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evals.common import EvalError, Sample, load_json

NAME = "ego4d_lta"
N_OBSERVED = 8
Z = 20
K = 5


def levenshtein(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Edit distance (insert, delete, substitute: cost 1 each), as ``editdistance.eval``."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i]
        for j, y in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def min_edit_distance(
    candidates: Sequence[Sequence[Hashable]], truth: Sequence[Hashable], z: int
) -> float:
    """Best (lowest) ``levenshtein(candidate[:z], truth) / z`` over the candidates."""
    if not candidates:
        return 1.0
    return min(levenshtein(list(c)[:z], list(truth)) / z for c in candidates)


def load_samples(path: Path | str, n_observed: int = N_OBSERVED, z: int = Z) -> list[Sample]:
    """The windows of an LTA file, with their future labels when the file has them."""
    from agent.retrieval.builders import lta_examples

    path = Path(path)
    data = load_json(path)
    clips = data.get("clips") if isinstance(data, dict) else None
    if not isinstance(clips, list):
        raise EvalError(path, "expected an Ego4D LTA file: an object with a 'clips' list")
    if clips and isinstance(clips[0], dict) and "verb_label" in clips[0]:
        samples = []
        for ex in lta_examples(path, n_observed=n_observed, n_future=z):
            meta: dict[str, Any] = dict(ex.metadata)
            samples.append(
                Sample(
                    key=ex.key or "",
                    video_id=ex.clip_id or ex.video_id,
                    kind="lta",
                    question=ex.input,
                    observed_end=float(meta["observed_end_sec"]),
                    target={
                        "verb": list(meta["future_verb_labels"]),
                        "noun": list(meta["future_noun_labels"]),
                    },
                )
            )
        return samples
    return _unannotated(path, clips, n_observed, z)


def _unannotated(path: Path, clips: list[Any], n_observed: int, z: int) -> list[Sample]:
    by_clip: dict[str, list[dict[str, Any]]] = {}
    for pos, item in enumerate(clips):
        if not isinstance(item, dict) or "clip_uid" not in item or "action_idx" not in item:
            raise EvalError(path, f"clips[{pos}] lacks clip_uid/action_idx")
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


def read_taxonomy(path: Path | str) -> tuple[list[str], list[str]]:
    data = load_json(path)
    if not isinstance(data, dict) or not {"verbs", "nouns"} <= set(data):
        raise EvalError(path, 'expected {"verbs": [...], "nouns": [...]}')
    return [str(v) for v in data["verbs"]], [str(n) for n in data["nouns"]]


def read_predictions(path: Path | str) -> dict[str, dict[str, list[list[int]]]]:
    data = load_json(path)
    if not isinstance(data, dict):
        raise EvalError(path, 'expected {key: {"verb": K x Z, "noun": K x Z}}')
    for key, value in data.items():
        if not isinstance(value, dict) or not {"verb", "noun"} <= set(value):
            raise EvalError(path, f"{key!r}: expected verb and noun candidate lists")
        if len(value["verb"]) != len(value["noun"]):
            raise EvalError(path, f"{key!r}: verb and noun have different numbers of candidates")
    return data


def score(
    samples: Sequence[Sample], predictions: Mapping[str, Mapping[str, Any]], z: int = Z
) -> dict[str, Any]:
    """ED@Z for verb, noun and action (see module doc)."""
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
        totals["action"] += min_edit_distance(pairs, list(zip(truth_v, truth_n, strict=True)), z)
    n = len(scored)
    metrics: dict[str, Any] = {f"ED_{k}": round(v / n, 4) for k, v in totals.items()}
    metrics.update({"Z": z, "n": n, "missing": missing})
    return metrics


def score_files(annotations: Path, predictions: Path, z: int = Z) -> dict[str, Any]:
    """ED@``z`` of an ``outputs.json`` against an annotated LTA file (official: z = 20)."""
    return score(load_samples(annotations, z=z), read_predictions(predictions), z=z)
