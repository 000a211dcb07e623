"""LongVideoBench referring-reasoning video QA (Wu et al., NeurIPS 2024 D&B;
github.com/longvideobench/LongVideoBench).

- Source: the Hugging Face release ``longvideobench/LongVideoBench``: ``lvb_val.json`` (1,337
  questions) and ``lvb_test_wo_gt.json``, lists of ``{id, video_id, video_path, subtitle_path,
  duration, duration_group, question, candidates, correct_choice, question_category,
  topic_category, level, position, starting_timestamp_for_subtitles, ...}`` (the test file
  without ``correct_choice``). The parquet files (``validation-00000-of-00001.parquet``) are
  read too when pyarrow is installed: they give ``option0..option4`` ("N/A" past the last one)
  instead of ``candidates``, read as lmms-eval reads them (up to the first "N/A").
- Split: validation is scored here; test (no ``correct_choice``) is scored by the leaderboard
  (``has_ground_truth`` false). Videos are ``videos/<video_path>``, so a sample's video id is
  ``video_path`` without its extension; its key is ``id``. Subtitles: ``subtitle_path`` (in
  ``subtitles/``) is kept in ``target``, not rendered.
- Answer format: one of 2-5 candidates, letters A-E. The submission is ``{id: letter}`` (what
  lmms-eval's ``longvideobench_test_for_submission.json`` holds, there with the raw response),
  which ``eval score`` reads too.
- Metric: lmms-eval's ``longvideobench_aggregate_results`` (EvolvingLMMs-Lab/lmms-eval @75571cf),
  the paper's numbers: the response's letter by ``parse_multi_choice_response`` (its prefixes,
  then the first of A-E), accuracy per ``duration_group`` (15, 60, 600, 3600 s) and per
  ``question_category`` (17 codes), and ``Overall`` pooled. Percent with two decimals.
- Caveats: upstream picks a *random* letter when a response has none; here such a response is
  wrong (``unparsed``), so scores are deterministic. A question with no prediction counts as
  wrong (``missing``). CC-BY-NC-SA-4.0 data, not redistributed. No bank examples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from vidagent.evals.common import EvalError, Sample, SampleResult
from vidagent.evals.long_video import (
    Tally,
    extract_letter,
    field_of,
    letter,
    read_letter_map,
    read_records,
    solve_letter,
    text_field,
    unique_keys,
)

if TYPE_CHECKING:
    from vidagent.core.records import Timeline

Responses = dict[str, str]

PREFIXES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option is",
    "The correct option is",
    "Best answer:",
    "Best option:",
)
MAX_OPTIONS = 5


def _candidates(path: Path, row: Mapping[str, Any], where: str) -> list[str]:
    if "candidates" in row:
        candidates = row["candidates"]
    else:  # the parquet layout
        candidates = []
        for i in range(MAX_OPTIONS):
            option = field_of(path, row, f"option{i}", where)
            if option == "N/A":
                break
            candidates.append(option)
    if (
        not isinstance(candidates, list)
        or not 2 <= len(candidates) <= MAX_OPTIONS
        or not all(isinstance(c, str) for c in candidates)
    ):
        raise EvalError(path, f"{where}: candidates {candidates!r} is not a list of 2-5 texts")
    return candidates


def _sample(path: Path, pos: int, row: Mapping[str, Any]) -> Sample:
    qid = text_field(path, row, "id", f"record {pos}")
    where = f"record {pos} ({qid})"
    candidates = _candidates(path, row, where)
    choice = row.get("correct_choice")
    if choice is not None and (
        isinstance(choice, bool) or not isinstance(choice, int) or not 0 <= choice < len(candidates)
    ):
        raise EvalError(path, f"{where}: correct_choice {choice!r} is not an index of its "
                              f"{len(candidates)} candidates")  # fmt: skip
    group = field_of(path, row, "duration_group", where)
    duration = row.get("duration")
    return Sample(
        key=qid,
        video_id=Path(text_field(path, row, "video_path", where)).stem,
        kind="qa",
        question=text_field(path, row, "question", where),
        options=candidates,
        answer=choice,
        type=text_field(path, row, "question_category", where),
        duration=float(duration) if isinstance(duration, int | float) else None,
        target={"duration_group": str(group), "subtitle_path": row.get("subtitle_path"),
                "topic_category": row.get("topic_category"), "level": row.get("level")},
    )  # fmt: skip


def _seconds(group: str) -> tuple[float, str]:
    """Duration groups in time order (15 < 60 < 600 < 3600), any other name after them."""
    try:
        return float(group), group
    except ValueError:
        return float("inf"), group


def read_responses(path: Path | str) -> Responses:
    """``{id: response}``: an answer letter, or a model's raw text (parsed when scored)."""
    return read_letter_map(path, "response")


class LongVideoBench(Benchmark[Responses]):
    name = "longvideobench"
    description = (
        "LongVideoBench referring-reasoning QA: accuracy per duration group and question category"
    )
    kind = "qa"
    submission_file = "longvideobench_submission.json"

    def load_samples(self, path: Path | str, params: Params = DEFAULT_PARAMS) -> list[Sample]:
        path = Path(path)
        rows = read_records(path)
        return unique_keys(path, [_sample(path, pos, row) for pos, row in enumerate(rows)])

    def has_ground_truth(self, samples: Sequence[Sample]) -> bool:
        return bool(samples) and all(s.answer is not None for s in samples)

    def read_predictions(self, path: Path | str) -> Responses:
        return read_responses(path)

    def solve(self, sample: Sample, timeline: Timeline, context: SolveContext) -> Solution:
        return solve_letter(sample, timeline, context)

    def submission(
        self, samples: Sequence[Sample], results: Mapping[str, SampleResult]
    ) -> Responses:
        return {s.key: letter(r.prediction) for s, r in succeeded(samples, results)}

    def score(
        self, samples: Sequence[Sample], predictions: Responses, params: Params = DEFAULT_PARAMS
    ) -> dict[str, Any]:
        if not self.has_ground_truth(samples):
            raise EvalError(
                "longvideobench",
                "these questions have no correct_choice (the test split): submit the "
                "submission file to the LongVideoBench leaderboard",
            )
        names = sorted({s.target["duration_group"] for s in samples}, key=_seconds)
        overall, groups, categories = Tally(), Tally.of(names), Tally()
        unparsed = 0
        for sample in samples:
            response = predictions.get(sample.key)
            parsed = "" if response is None else extract_letter(response, "ABCDE", PREFIXES)
            unparsed += response is not None and not parsed
            correct = bool(parsed) and parsed == letter(sample.answer or 0)
            overall.add("all", correct)
            groups.add(sample.target["duration_group"], correct)
            categories.add(sample.type, correct)
        return {
            "Overall": overall.pooled(),
            "n": len(samples),
            "missing": sum(s.key not in predictions for s in samples),
            "unparsed": unparsed,
            "duration_group": groups.accuracy(),
            "question_category": dict(sorted(categories.accuracy().items())),
        }


BENCHMARK = LongVideoBench()
