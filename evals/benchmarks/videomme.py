"""Video-MME multiple-choice video QA (Fu et al., CVPR 2025; github.com/BradyFU/Video-MME).

- Source: the Hugging Face release ``lmms-lab/Video-MME``, ``videomme/test-00000-of-00001.parquet``
  (2,700 questions on 900 videos): read as is when pyarrow is installed, else its JSON list or
  JSON Lines export (``datasets``' ``to_json``, or lmms-eval's docs), same fields: video_id
  (``"001"``), duration (short/medium/long), domain, sub_category, url, videoID (the YouTube id),
  question_id (``"001-1"``), task_type, question, options (``["A. ...", ...]``), answer (a letter).
- Split: ``test`` (the only one). Videos are ``<videoID>.mp4`` (``data/`` of the release; ``.MP4``
  / ``.mkv`` also occur, which ``--videos`` finds too), so a sample's video id is ``videoID``; its
  key is ``question_id``. Subtitles: "with subtitles" is a run setting not rendered yet; the loader
  keeps ``subtitle/<videoID>.srt`` in ``target["subtitle"]`` when the release folder (next to the
  annotation file or one level up) has it, else None.
- Answer format: one of four options; options lose their ``"A. "`` prefix (the prompt letters
  them again) and keep it in ``target["choices"]``. The submission is the official results file
  ``evaluation/output_test_template.json``: a list of videos ``{video_id, duration_category,
  video_category, video_subcategory, questions: [{question_id, task_type, question, choices,
  answer, response}]}``, which ``eval score`` reads too.
- Metric: the official ``evaluation/eval_your_results.py`` (BradyFU/Video-MME @4e7566d): the
  response's answer letter by its ``extract_characters_regex`` (its prefix list, two commas
  missing upstream included; the first of A-D anywhere), accuracy pooled over questions overall,
  per duration, and per domain / sub_category / task_type over all durations and within each; a
  response with no letter is left out of every denominator (``unanswered``), as upstream.
  Percent with two decimals (upstream prints one).
- Caveats: like upstream, the ``answer`` stored in the results file is the one compared (the
  annotation's when the file has none); upstream asserts 300 videos per duration instead of
  scoring a partial file: here a question with no response counts as wrong (``missing``), and a
  video marked ``"missing": true`` answers none. An empty group gives ``null`` (upstream 0).
  lmms-eval's ``videomme`` counts an unparsed response as wrong instead. Data: research-only
  licence, not redistributed; tests build files in this schema. No bank examples (a test set).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidagent.evals.benchmark import (
    DEFAULT_PARAMS,
    Benchmark,
    MetricTable,
    Params,
    Solution,
    SolveContext,
    succeeded,
)
from vidagent.evals.common import EvalError, Sample, SampleResult, load_json
from vidagent.evals.long_video import (
    Tally,
    extract_letter,
    field_of,
    letter,
    letter_index,
    read_records,
    solve_letter,
    text_field,
    unique_keys,
)

if TYPE_CHECKING:
    from vidagent.core.records import Timeline

VideoMMEResults = list[dict[str, Any]]

DURATIONS = ("short", "medium", "long")
DOMAINS = ("Knowledge", "Film & Television", "Sports Competition", "Artistic Performance",
           "Life Record", "Multilingual")  # fmt: skip
SUB_CATEGORIES = (
    "Humanity & History", "Literature & Art", "Biology & Medicine", "Finance & Commerce",
    "Astronomy", "Geography", "Law", "Life Tip", "Technology", "Animation", "Movie & TV Show",
    "Documentary", "News Report", "Esports", "Basketball", "Football", "Athletics",
    "Other Sports", "Stage Play", "Magic Show", "Variety Show", "Acrobatics", "Handicraft",
    "Food", "Fashion", "Daily Life", "Travel", "Pet & Animal", "Exercise", "Multilingual",
)  # fmt: skip
TASK_TYPES = (
    "Temporal Perception", "Spatial Perception", "Attribute Perception", "Action Recognition",
    "Object Recognition", "OCR Problems", "Counting Problem", "Temporal Reasoning",
    "Spatial Reasoning", "Action Reasoning", "Object Reasoning", "Information Synopsis",
)  # fmt: skip
# Upstream's list, where two missing commas join four prefixes into two.
PREFIXES = ("The best answer is", "The correct answer is", "The answer is", "The answer",
            "The best option isThe correct option is", "Best answer:Best option:")  # fmt: skip
BREAKDOWNS: dict[str, tuple[str, ...]] = {
    "domain": DOMAINS,
    "sub_category": SUB_CATEGORIES,
    "task_type": TASK_TYPES,
}
OPTION_PREFIX = re.compile(r"^\s*([A-Z])\.\s*")


def _named(path: Path, row: Mapping[str, Any], name: str, where: str, known: Sequence[str]) -> str:
    value = text_field(path, row, name, where)
    if value not in known:
        raise EvalError(path, f"{where}: unknown {name} {value!r} (Video-MME has {list(known)})")
    return value


def _subtitle(path: Path, video: str) -> str | None:
    for folder in (path.parent / "subtitle", path.parent.parent / "subtitle"):
        srt = folder / f"{video}.srt"
        if srt.is_file():
            return str(srt)
    return None


def _sample(path: Path, pos: int, row: Mapping[str, Any]) -> Sample:
    where = f"record {pos}"
    qid = text_field(path, row, "question_id", where)
    where = f"record {pos} ({qid})"
    video = text_field(path, row, "videoID", where)
    choices = field_of(path, row, "options", where)
    if (
        not isinstance(choices, list)
        or len(choices) < 2
        or not all(isinstance(c, str) for c in choices)
    ):
        raise EvalError(path, f"{where}: options {choices!r} is not a list of option texts")
    if len(choices) > 4:
        raise EvalError(path, f"{where}: {len(choices)} options (Video-MME has A-D)")
    options = []
    for i, choice in enumerate(choices):
        found = OPTION_PREFIX.match(choice)
        options.append(choice[found.end() :] if found and found[1] == letter(i) else choice)
    answer = letter_index(row.get("answer"), len(options))
    if answer is None:
        raise EvalError(path, f"{where}: answer {row.get('answer')!r} is not one of the option "
                              f"letters {letter(0)}-{letter(len(options) - 1)}")  # fmt: skip
    return Sample(
        key=qid,
        video_id=video,
        kind="qa",
        question=text_field(path, row, "question", where),
        options=options,
        answer=answer,
        type=_named(path, row, "task_type", where, TASK_TYPES),
        target={
            "video_number": text_field(path, row, "video_id", where),
            "duration": _named(path, row, "duration", where, DURATIONS),
            "domain": _named(path, row, "domain", where, DOMAINS),
            "sub_category": _named(path, row, "sub_category", where, SUB_CATEGORIES),
            "choices": list(choices),
            "url": row.get("url"),
            "subtitle": _subtitle(path, video),
        },
    )


def read_results(path: Path | str) -> VideoMMEResults:
    """An official results file (``output_test_template.json``'s shape)."""
    data = load_json(path)
    shape = 'a list of {"video_id", ..., "questions": [{"question_id", "response", ...}]}'
    if not isinstance(data, list):
        raise EvalError(path, f"expected {shape}")
    first: dict[str, int] = {}
    for pos, item in enumerate(data):
        questions = item.get("questions") if isinstance(item, dict) else None
        if not isinstance(questions, list):
            raise EvalError(path, f"video {pos}: no 'questions' list (expected {shape})")
        for question in questions:
            if not isinstance(question, dict) or "question_id" not in question:
                raise EvalError(path, f"video {pos}: a question without 'question_id'")
            qid = str(question["question_id"])
            if not isinstance(question.get("response"), str):
                raise EvalError(path, f"{qid!r}: response {question.get('response')!r} is not "
                                      "a string")  # fmt: skip
            if qid in first:
                raise EvalError(path, f"video {pos}: question {qid!r} again (first in video "
                                      f"{first[qid]})")  # fmt: skip
            first[qid] = pos
    return data


def _responses(results: VideoMMEResults) -> dict[str, tuple[str, Any]]:
    """``question_id -> (extracted letter, the file's answer or None)`` of the answered videos."""
    out: dict[str, tuple[str, Any]] = {}
    for item in results:
        if item.get("missing") is True:
            continue
        for q in item["questions"]:
            out[str(q["question_id"])] = (extract_letter(q["response"], "ABCD", PREFIXES),
                                          q.get("answer"))  # fmt: skip
    return out


class VideoMME(Benchmark[VideoMMEResults]):
    name = "videomme"
    description = (
        "Video-MME multiple-choice QA: accuracy per duration, domain, sub-category and task type"
    )
    kind = "qa"
    submission_file = "videomme_results.json"

    def load_samples(self, path: Path | str, params: Params = DEFAULT_PARAMS) -> list[Sample]:
        path = Path(path)
        rows = read_records(path)
        return unique_keys(path, [_sample(path, pos, row) for pos, row in enumerate(rows)])

    def read_predictions(self, path: Path | str) -> VideoMMEResults:
        return read_results(path)

    def prediction_keys(self, predictions: VideoMMEResults) -> set[str]:
        return set(_responses(predictions))

    def solve(self, sample: Sample, timeline: Timeline, context: SolveContext) -> Solution:
        return solve_letter(sample, timeline, context)

    def submission(
        self, samples: Sequence[Sample], results: Mapping[str, SampleResult]
    ) -> VideoMMEResults:
        videos: dict[str, dict[str, Any]] = {}
        for sample, result in succeeded(samples, results):
            t = sample.target
            item = videos.setdefault(t["video_number"], {
                "video_id": t["video_number"], "videoID": sample.video_id,
                "duration_category": t["duration"], "video_category": t["domain"],
                "video_subcategory": t["sub_category"], "questions": [],
            })  # fmt: skip
            item["questions"].append({
                "question_id": sample.key, "task_type": sample.type, "question": sample.question,
                "choices": t["choices"], "answer": letter(sample.answer or 0),
                "response": letter(result.prediction),
            })  # fmt: skip
        return list(videos.values())

    def submission_text(self, predictions: VideoMMEResults) -> str:
        return json.dumps(predictions, indent=2, ensure_ascii=False) + "\n"

    def score(
        self,
        samples: Sequence[Sample],
        predictions: VideoMMEResults,
        params: Params = DEFAULT_PARAMS,
    ) -> dict[str, Any]:
        responses = _responses(predictions)
        overall = Tally.of(DURATIONS)
        groups = {(b, scope): Tally.of(names) for b, names in BREAKDOWNS.items()
                  for scope in ("all", *DURATIONS)}  # fmt: skip
        missing = unanswered = 0
        for sample in samples:
            t = sample.target
            got = responses.get(sample.key)
            if got is None:
                missing += 1
                correct = False
            elif not got[0]:
                unanswered += 1
                continue
            else:
                truth = got[1] if got[1] is not None else letter(sample.answer or 0)
                correct = got[0] == truth
            overall.add(t["duration"], correct)
            for breakdown in BREAKDOWNS:
                value = sample.type if breakdown == "task_type" else t[breakdown]
                for scope in ("all", t["duration"]):
                    groups[breakdown, scope].add(value, correct)
        metrics: dict[str, Any] = {"Overall": overall.pooled(), **overall.accuracy()}
        metrics |= {"n": len(samples), "missing": missing, "unanswered": unanswered}
        for breakdown in BREAKDOWNS:
            metrics[breakdown] = groups[breakdown, "all"].accuracy()
        metrics["per_duration"] = {
            d: {b: groups[b, d].accuracy() for b in BREAKDOWNS} for d in DURATIONS
        }
        return metrics

    def report(self, metrics: Mapping[str, Any]) -> list[MetricTable]:
        headline = ["Overall", *DURATIONS, "n", "missing", "unanswered"]
        tables = [MetricTable(rows=[(k, metrics.get(k)) for k in headline])]
        per = metrics.get("per_duration", {})
        for breakdown, names in BREAKDOWNS.items():
            rows = [
                (name, metrics[breakdown].get(name), *(per[d][breakdown].get(name)
                                                       for d in DURATIONS))
                for name in names
            ]  # fmt: skip
            tables.append(MetricTable(
                title=f"by {breakdown}", header=(breakdown, "all", *DURATIONS),
                rows=[r for r in rows if any(v is not None for v in r[1:])],
            ))  # fmt: skip
        return tables


BENCHMARK = VideoMME()
