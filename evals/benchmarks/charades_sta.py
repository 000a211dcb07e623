"""Charades-STA temporal sentence grounding (Gao et al., ICCV 2017; github.com/jiyanggao/TALL).

- Source: ``charades_sta_{train,test}.txt``, one query per line ``vid start end##sentence``;
  also the re-annotated test queries of Otani et al. 2020 (mayu-ot/hidden-challenges-MR,
  ``data/raw/charades/re-annotated/test_*.csv``: HITId, video_id (``YAFX0.mp4``), description,
  start, end; one row per annotator, 5 per query).
- Split: ``test`` (3,720 queries).
- Sample keys: ``<line index>`` (0-based) for the txt file, the ``HITId`` for the CSV.
- Answer format: moment_detr-style JSONL, ``{"qid": key, "pred_relevant_windows": [[st, ed,
  score], ...]}`` (best first; ``score`` optional); a run writes ``predictions.jsonl``.
- Metric: R1@{0.3,0.5,0.7} (percent of queries whose top window reaches that IoU) and mIoU (mean
  top-1 IoU), percent with two decimals.
- Caveats: with several GT spans (the re-annotation's 5 annotators), the top window is scored
  against the GT span it overlaps most, the rule of QVHighlights' official R1. The official txt
  has one span per query, where the rule changes nothing. No bank examples (a localization
  example's target is a segment of its own video's timeline).
"""

from __future__ import annotations

import csv
from pathlib import Path

from vidagent.evals.benchmark import DEFAULT_PARAMS, Params
from vidagent.evals.common import EvalError, Sample
from vidagent.evals.grounding import MomentBenchmark


def _txt(path: Path) -> list[Sample]:
    samples = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            head, sentence = line.split("##", 1)
            vid, start, end = head.split()
            window = [float(start), float(end)]
        except ValueError as exc:
            raise EvalError(path, f"line {number + 1}: expected 'vid start end##sentence'") from exc
        samples.append(
            Sample(
                key=str(number),
                video_id=vid,
                kind="moment",
                question=sentence.strip(),
                windows=[window],
            )
        )
    return samples


def _csv(path: Path) -> list[Sample]:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, strict=True)
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EvalError(path, f"not a readable CSV ({exc}; cut short?)") from exc
    by_hit: dict[str, Sample] = {}
    for line, row in rows:
        if None in row or None in row.values():
            raise EvalError(path, f"line {line}: the row does not have the header's fields")
        try:
            key = row["HITId"].strip()
            window = [float(row["start"]), float(row["end"])]
            video = Path(row["video_id"].strip()).stem
            query = row["description"].strip()
            if not (key and video and query):
                raise ValueError("a blank field")
        except (KeyError, AttributeError, TypeError, ValueError) as exc:
            raise EvalError(
                path, f"line {line}: needs HITId, video_id, description, start, end"
            ) from exc
        sample = by_hit.setdefault(
            key, Sample(key=key, video_id=video, kind="moment", question=query)
        )
        sample.windows.append(window)
    return list(by_hit.values())


class CharadesSTA(MomentBenchmark):
    name = "charades_sta"
    description = "Charades-STA sentence grounding: R1@{0.3,0.5,0.7} and mIoU of the top window"
    submission_file = "predictions.jsonl"

    def load_samples(self, path: Path | str, params: Params = DEFAULT_PARAMS) -> list[Sample]:
        path = Path(path)
        if not path.is_file():
            raise EvalError(path, "no such file")
        return _csv(path) if path.suffix.lower() == ".csv" else _txt(path)


BENCHMARK = CharadesSTA()
