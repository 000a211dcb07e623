"""NExT-GQA grounded video QA (Xiao et al., CVPR 2024; github.com/doc-doc/NExT-GQA): answer a
NExT-QA question and give the span of the video that shows the evidence.

- Source: ``datasets/nextgqa/`` of the official repo: ``{val,test}.csv`` (the questions: columns
  video_id, frame_count, width, height, question, answer, qid, type, a0..a4, where ``answer`` is
  the answer *text*, matched against a0..a4 as the official loader does: the first equal option)
  and ``gsub_{val,test}.json`` (``{video_id: {"duration", "fps", "location": {qid: [[start, end],
  ...]}}}``, one or more evidence spans in seconds).
- Annotations: ``--annotations`` is either file; the other one must lie next to it under its
  official name (``gsub_val.json`` <-> ``val.csv``): the spans come from the JSON, the questions
  and options from the CSV. Samples are the questions with spans, in the JSON's order (video,
  then qid), keyed ``<video_id>_<qid>``.
- Split: ``val`` (3,358 questions, 570 videos) and ``test`` (both with spans); the training split
  is NExT-QA's (no spans): build a QA bank from it with ``--format nextqa``.
- Answer format: two official files. Grounding ``{"<video>_<qid>": [start, end]}`` in seconds
  (``predictions_ground.json``, the submission file) and QA results ``{"<video>_<qid>":
  {"prediction": int, "answer": int}}`` (``predictions-res.json`` next to it: the official
  ``eval_ground.py`` reads ``<split>-res.json`` beside ``<split>_ground*.json``).
  ``eval score`` takes the second with ``--qa-predictions``; it is required.
- Solving: the answer letter as for NExT-QA (guided choice, :func:`solve_choice`) and the span
  by localizing the question (guided segment-token span refined by similarity,
  :func:`solve_moment`), two calls per question; the recorded prediction is
  ``{"answer": option index, "span": [start, end]}``.
- Metric: as ``code/TempGQA/eval_ground.py`` (``eval_ground`` with ``gs=False``) and
  ``eval_next.py`` (Acc@QA). Per question the IoU and IoP (intersection over the *predicted*
  span) are the maxima over its GT spans; a zero-length prediction has IoU 0 and IoP 1 when it
  lies inside a GT span (0 otherwise); a reversed span scores 0. Acc&GQA counts questions with
  IoP >= 0.5 whose QA result is right; mIoP, IoP@0.3/0.5, mIoU, IoU@0.3/0.5 as named. All of
  these are over the questions the grounding file answers (``n``) and printed with one decimal.
  Acc@QA is the pooled accuracy over all questions (two decimals), with the per-type figures of
  ``eval_next.py`` (Why, How, Bef&Aft with TP as TN, When, Acc_C, Acc_T).
- Caveats: like the official code, a question the grounding file does not answer is left out of
  the grounding metrics (and Acc&GQA), not scored as wrong (``missing`` counts them); the
  ``answer`` stored in the QA file is the one compared (the CSV's when absent). The official code
  crashes on a missing QA result; here it is wrong (``missing_qa``). A run writes a failed
  question as span ``[-1, -1]`` (scores 0) and prediction ``-1`` (wrong), so failures stay in
  every denominator. Spans normalized to [0, 1] (the official ``gs=True`` path) are not
  converted: give seconds.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
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
from vidagent.evals.benchmarks.nextqa import GROUP_NAMES, TYPE_ALIASES, TYPE_NAMES
from vidagent.evals.common import EvalError, Sample, SampleResult, load_json
from vidagent.evals.grounding import solve_moment
from vidagent.evals.multiple_choice import score_qa, solve_choice

if TYPE_CHECKING:
    from vidagent.core.records import Timeline
    from vidagent.tasks import RunRecord

CSV_COLUMNS = ("video_id", "question", "answer", "qid", "type", "a0", "a1", "a2", "a3", "a4")
FAILED_SPAN = [-1.0, -1.0]  # a zero-length span before the video: IoU 0 and IoP 0
FAILED_ANSWER = -1
QA_FILE = "predictions-res.json"  # the official eval_ground.py reads <prefix>-res.json


@dataclass(frozen=True)
class GQAPredictions:
    """Both official files: grounding spans and QA results (None: not read)."""

    ground: dict[str, list[float]]
    qa: dict[str, dict[str, int]] | None = None


def companion_paths(path: Path) -> tuple[Path, Path]:
    """``(gsub JSON, questions CSV)`` for either one: ``gsub_<split>.json`` <-> ``<split>.csv``."""
    if path.suffix.lower() == ".json":
        if not path.name.startswith("gsub_"):
            raise EvalError(path, "expected the spans file gsub_<split>.json (or <split>.csv)")
        return path, path.with_name(path.name[len("gsub_") : -len(".json")] + ".csv")
    return path.with_name(f"gsub_{path.stem}.json"), path


def read_spans(path: Path) -> dict[str, dict[str, Any]]:
    """``gsub_<split>.json``, checked: each video has a duration and ``{qid: [[s, e], ...]}``."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise EvalError(path, 'expected {video_id: {"duration", "location": {qid: [[s, e]]}}}')
    for vid, anno in data.items():
        locations = anno.get("location") if isinstance(anno, dict) else None
        if not isinstance(locations, dict) or not _number(anno.get("duration")):
            raise EvalError(path, f"video {vid!r}: needs a duration and a location mapping")
        for qid, spans in locations.items():
            if not isinstance(spans, list) or not spans or not all(_span(s) for s in spans):
                raise EvalError(path, f"{vid}_{qid}: spans must be [[start, end], ...] numbers")
    return data


def read_questions(path: Path) -> dict[str, Sample]:
    """The questions of ``<split>.csv`` by key (``answer``: the index of the first option equal
    to the answer text, as the official loader's ``choices.index``; options are shown stripped)."""
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, strict=True)
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise EvalError(path, f"missing CSV column(s) {', '.join(missing)}")
            rows = [(reader.line_num, row) for row in reader]
    except FileNotFoundError as exc:
        raise EvalError(path, "no such file (the questions CSV of the spans file)") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EvalError(path, f"not a readable CSV ({exc}; cut short?)") from exc
    out: dict[str, Sample] = {}
    for line, row in rows:
        if None in row or None in row.values():
            raise EvalError(path, f"line {line}: the row does not have the header's fields")
        vid, qid = row["video_id"].strip(), row["qid"].strip()
        raw = [row[f"a{i}"] for i in range(5)]  # compared unstripped, as the official loader
        if not vid or not qid or not row["question"].strip():
            raise EvalError(path, f"line {line}: video_id, qid and question must not be blank")
        if not all(o.strip() for o in raw):
            raise EvalError(path, f"line {line}: an option of a0..a4 is blank ({raw})")
        if row["answer"] not in raw:
            raise EvalError(path, f"line {line}: answer {row['answer']!r} is none of a0..a4 {raw}")
        key = f"{vid}_{qid}"
        if key in out:
            raise EvalError(path, f"line {line}: question {key!r} again")
        out[key] = Sample(
            key=key, video_id=vid, kind="qa", question=row["question"],
            options=[o.strip() for o in raw], answer=raw.index(row["answer"]),
            type=row["type"].strip(),
        )  # fmt: skip
    return out


def read_ground(path: Path | str) -> dict[str, list[float]]:
    """A grounding file ``{key: [start, end]}`` (seconds; the official code reads the first and
    last number, so a longer list or ``[t]`` is read the same way)."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise EvalError(path, 'expected {"<video>_<qid>": [start, end]}')
    for key, span in data.items():
        if not isinstance(span, list) or not span or not all(_number(v) for v in span):
            raise EvalError(path, f"{key!r}: span {str(span)[:40]} is not [start, end] numbers")
    return {str(k): [float(v) for v in span] for k, span in data.items()}


def read_qa(path: Path | str) -> dict[str, dict[str, int]]:
    """A QA results file ``{key: {"prediction": int, "answer": int}}`` (``answer`` optional)."""
    data = load_json(path)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise EvalError(path, 'expected {"<video>_<qid>": {"prediction": int, "answer": int}}')
    for key, value in data.items():
        for name in ("prediction", "answer"):
            if (name == "prediction" or name in value) and not _integer(value.get(name)):
                raise EvalError(path, f"{key!r}: {name} {value.get(name)!r} is not an integer")
    return {str(k): {n: int(x) for n, x in v.items() if n in ("prediction", "answer")}
            for k, v in data.items()}  # fmt: skip


def overlap(gt: Sequence[float], span: Sequence[float]) -> tuple[float, float]:
    """``(IoU, IoP)`` of a predicted ``span`` with one GT span: the official ``get_tIoU``."""
    if span[0] == span[-1]:
        return (0.0, 1.0) if gt[0] <= span[0] <= gt[1] else (0.0, 0.0)
    union = (min(gt[0], span[0]), max(gt[-1], span[-1]))
    inter = (max(gt[0], span[0]), min(gt[-1], span[-1]))
    dis = inter[1] - inter[0]
    iou = dis / (union[1] - union[0]) if union[1] > union[0] else 0.0
    iop = dis / (span[-1] - span[0]) if span[-1] > span[0] else 0.0
    return iou, iop


def qa_right(sample: Sample, qa: Mapping[str, Mapping[str, int]]) -> bool:
    entry = qa.get(sample.key)
    return entry is not None and entry.get("prediction") == entry.get("answer", sample.answer)


def score_gqa(
    samples: Sequence[Sample],
    ground: Mapping[str, Sequence[float]],
    qa: Mapping[str, Mapping[str, int]],
) -> dict[str, Any]:
    """The official ``eval_ground`` figures and ``eval_next``'s Acc@QA (module doc)."""
    cnt = both = iop3 = iop5 = iou3 = iou5 = 0
    sum_iou = sum_iop = 0.0
    for sample in samples:
        span = ground.get(sample.key)
        if span is None:  # official: `continue`, out of every denominator
            continue
        best_iou = best_iop = 0.0
        for gt in sample.windows:
            iou, iop = overlap(gt, span)
            best_iou, best_iop = max(best_iou, iou), max(best_iop, iop)
        if best_iop >= 0.3:
            iop3 += 1
            if best_iop >= 0.5:
                iop5 += 1
                both += qa_right(sample, qa)
        if best_iou >= 0.3:
            iou3 += 1
            if best_iou >= 0.5:
                iou5 += 1
        cnt += 1
        sum_iou += best_iou
        sum_iop += best_iop
    acc = score_qa(samples, qa, TYPE_NAMES, GROUP_NAMES, TYPE_ALIASES)

    def share(total: float) -> float | None:  # as the official `x * 1.0 / cnt * 100`, '{:.1f}'
        return float(f"{total * 1.0 / cnt * 100:.1f}") if cnt else None

    by_type = {k: v for k, v in acc.items() if k not in ("Acc", "n", "missing") and v is not None}
    return {
        "Acc@QA": acc["Acc"],
        "Acc&GQA": share(both),
        "mIoP": share(sum_iop),
        "IoP@0.3": share(iop3),
        "IoP@0.5": share(iop5),
        "mIoU": share(sum_iou),
        "IoU@0.3": share(iou3),
        "IoU@0.5": share(iou5),
        "n": cnt,
        "missing": len(samples) - cnt,
        "questions": acc["n"],
        "missing_qa": acc["missing"],
        "Acc@QA by type": by_type,
    }


def combined_run(first: RunRecord, second: RunRecord) -> RunRecord:
    """``first`` with ``second``'s LLM calls and usage added (what the runner counts)."""
    from vidagent.llm.types import Usage

    usage = Usage(
        prompt_tokens=first.usage.prompt_tokens + second.usage.prompt_tokens,
        completion_tokens=first.usage.completion_tokens + second.usage.completion_tokens,
    )
    return first.model_copy(update={"calls": [*first.calls, *second.calls], "usage": usage})


class NextGQA(Benchmark[GQAPredictions]):
    name = "nextgqa"
    description = (
        "NExT-GQA grounded QA: Acc@QA, Acc&GQA, IoP/IoU of the evidence span (official "
        "eval_ground.py)"
    )
    kind = "qa"
    submission_file = "predictions_ground.json"
    companion_file = QA_FILE
    companion_required = True
    missing_rule = "left out of the grounding metrics, as eval_ground.py does; wrong in Acc@QA"

    def load_samples(self, path: Path | str, params: Params = DEFAULT_PARAMS) -> list[Sample]:
        """The questions with spans (module doc): either file, the other next to it."""
        spans_path, csv_path = companion_paths(Path(path))
        spans = read_spans(spans_path)
        questions = read_questions(csv_path)
        samples: list[Sample] = []
        for vid, anno in spans.items():
            for qid, windows in anno["location"].items():
                key = f"{vid}_{qid}"
                if key not in questions:
                    raise EvalError(
                        spans_path, f"question {key} has spans but no row in {csv_path}"
                    )
                update = {"windows": [[float(s), float(e)] for s, e in windows],
                          "duration": float(anno["duration"])}  # fmt: skip
                samples.append(questions[key].model_copy(update=update))
        return samples

    def read_predictions(self, path: Path | str) -> GQAPredictions:
        """The grounding file alone (scoring also needs the QA results: see
        :meth:`read_prediction_files`)."""
        return GQAPredictions(read_ground(path))

    def read_prediction_files(
        self, path: Path | str, companion: Path | str | None = None
    ) -> GQAPredictions:
        if companion is None:
            raise EvalError(
                path,
                f"{self.name} is scored with its QA results file too ({QA_FILE}, for Acc@QA "
                "and Acc&GQA)",
            )
        return GQAPredictions(read_ground(path), read_qa(companion))

    def prediction_keys(self, predictions: GQAPredictions) -> set[str]:
        return set(predictions.ground)

    def solve(self, sample: Sample, timeline: Timeline, context: SolveContext) -> Solution:
        answered = solve_choice(sample, timeline, context)
        grounded = solve_moment(sample, timeline, context)
        start, end = grounded.prediction[0][:2]
        return Solution(
            {"answer": answered.prediction, "span": [start, end]},
            answered.valid and grounded.valid,
            combined_run(answered.run, grounded.run),
        )

    def submission(
        self, samples: Sequence[Sample], results: Mapping[str, SampleResult]
    ) -> GQAPredictions:
        ground: dict[str, list[float]] = {}
        qa: dict[str, dict[str, int]] = {}
        done = {s.key for s, _ in succeeded(samples, results)}
        for sample in samples:
            if sample.key not in results:
                continue
            pred = results[sample.key].prediction if sample.key in done else None
            ground[sample.key] = list(pred["span"]) if pred else list(FAILED_SPAN)
            answer = pred["answer"] if pred else FAILED_ANSWER
            truth = sample.answer if sample.answer is not None else FAILED_ANSWER
            qa[sample.key] = {"prediction": answer, "answer": truth}
        return GQAPredictions(ground, qa)

    def submission_text(self, predictions: GQAPredictions) -> str:
        return json.dumps(predictions.ground)

    def extra_files(self, predictions: GQAPredictions) -> dict[str, str]:
        return {QA_FILE: json.dumps(predictions.qa or {})}

    def score(
        self,
        samples: Sequence[Sample],
        predictions: GQAPredictions,
        params: Params = DEFAULT_PARAMS,
    ) -> dict[str, Any]:
        if predictions.qa is None:
            raise EvalError(self.name, f"scoring needs the QA results ({QA_FILE})")
        return score_gqa(samples, predictions.ground, predictions.qa)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _span(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(_number(v) for v in value)


BENCHMARK = NextGQA()
