"""What a benchmark is: one object that owns everything specific to it.

A benchmark module under :mod:`vidagent.evals.benchmarks` exports ``BENCHMARK``, an instance of a
:class:`Benchmark` subclass; :mod:`vidagent.evals.registry` finds it there. The object says:

- what it is: ``name``, ``description``, its sample ``kind``, the generic settings it ``uses``
  (:class:`Params`), the verb/noun ``taxonomy_file`` it needs (if any);
- how its annotation file is read (:meth:`~Benchmark.load_samples`), and how one sample is
  predicted (:meth:`~Benchmark.solve`: which task it calls, and the prediction it records);
- its official prediction format: :meth:`~Benchmark.read_predictions`, the ``submission_file``
  a run writes and :meth:`~Benchmark.submission` / :meth:`~Benchmark.submission_text`; a
  benchmark whose official predictions are two files (NExT-GQA: grounding spans and QA results)
  names the second in ``companion_file``, reads both in :meth:`~Benchmark.read_prediction_files`
  and writes the second through :meth:`~Benchmark.extra_files`;
- its official metric (:meth:`~Benchmark.score`) and how the report shows it
  (:meth:`~Benchmark.report`);
- its in-context examples for an example bank (:meth:`~Benchmark.bank_examples`, what
  ``vidagent index build --format <name>`` reads), when it has any (``bank_task``).

The runner, the report and the CLI only call these: they never test a benchmark's name.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from vidagent.evals.common import EvalError, Sample, SampleKind, SampleResult, Taxonomy

if TYPE_CHECKING:
    from vidagent.core.records import Timeline
    from vidagent.llm import LLMClient
    from vidagent.retrieval import TextEmbedder
    from vidagent.retrieval.bank import Example, ExampleBank
    from vidagent.tasks import RunRecord, TaskOptions

Param = Literal["z", "candidates", "observed"]
PARAMS: tuple[Param, ...] = ("z", "candidates", "observed")
Metrics = dict[str, Any]
P = TypeVar("P")  # a benchmark's prediction file, as read and as written


class Params(BaseModel):
    """Settings a run, a score or a bank build passes to every benchmark alike; a benchmark reads
    those it names in ``Benchmark.uses`` (None: the benchmark's official default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    z: int | None = Field(default=None, ge=1, description="Future actions per prediction (Z)")
    candidates: int | None = Field(default=None, ge=1, description="Predictions per sample (K)")
    observed: int | None = Field(default=None, ge=1, description="Observed actions (N)")

    def given(self) -> list[Param]:
        """The settings that are set, in :data:`PARAMS` order."""
        return [name for name in PARAMS if getattr(self, name) is not None]


DEFAULT_PARAMS = Params()


@dataclass(frozen=True)
class SolveContext:
    """What :meth:`Benchmark.solve` may use, built once per run by the runner."""

    llm: LLMClient
    options: TaskOptions
    params: Params = DEFAULT_PARAMS
    bank: ExampleBank | None = None
    taxonomy: Taxonomy | None = None
    text_embedder: TextEmbedder | None = None  # segment relevance (a benchmark that needs it)


@dataclass(frozen=True)
class Solution:
    """One sample's answer: the prediction recorded in ``results.jsonl`` (JSON-able, in the shape
    :meth:`Benchmark.submission` expects), whether the model's output was used as is, and the
    task's run record (usage, evidence)."""

    prediction: Any
    valid: bool
    run: RunRecord


@dataclass(frozen=True)
class Coverage:
    """How many of the annotation file's samples a prediction file answers."""

    matched: int
    total: int


@dataclass(frozen=True)
class FileScore:
    """A prediction file's metrics and its coverage of the annotations."""

    metrics: Metrics
    coverage: Coverage


class MetricTable(BaseModel):
    """One table of a run's ``report.md`` (the first has no title: the headline metrics)."""

    model_config = ConfigDict(extra="forbid")

    title: str = ""
    header: tuple[str, ...] = ("metric", "value")
    rows: list[tuple[Any, ...]] = Field(default_factory=list)


class Benchmark(ABC, Generic[P]):
    """One benchmark (see the module doc); subclasses set the class attributes below."""

    name: ClassVar[str]
    description: ClassVar[str]  # one line: what the benchmark asks and how it is scored
    kind: ClassVar[SampleKind]
    submission_file: ClassVar[str]  # the official prediction file a run writes
    uses: ClassVar[frozenset[Param]] = frozenset()
    taxonomy_file: ClassVar[str | None] = None  # a verb/noun taxonomy it needs (usual file name)
    bank_task: ClassVar[str | None] = None  # task of its bank examples; None: it gives none
    # A second official prediction file, written next to ``submission_file`` by a run and read
    # with it by :meth:`read_prediction_files` (``eval score --qa-predictions``); None: none.
    companion_file: ClassVar[str | None] = None
    companion_required: ClassVar[bool] = False  # whether scoring needs the second file
    # How the score counts a sample the prediction file does not answer (``eval score`` says so).
    missing_rule: ClassVar[str] = "scored as wrong"

    def __repr__(self) -> str:
        return f"<benchmark {self.name}>"

    # --- data ---------------------------------------------------------------------------------

    @abstractmethod
    def load_samples(self, path: Path | str, params: Params = DEFAULT_PARAMS) -> list[Sample]:
        """The samples of an annotation file, keyed as the official prediction file."""

    @abstractmethod
    def read_predictions(self, path: Path | str) -> P:
        """An official prediction/submission file (what :meth:`score` reads)."""

    # --- prediction ---------------------------------------------------------------------------

    @abstractmethod
    def solve(self, sample: Sample, timeline: Timeline, context: SolveContext) -> Solution:
        """Predict one sample from its video's timeline (with a task of :mod:`vidagent.tasks`)."""

    @abstractmethod
    def submission(self, samples: Sequence[Sample], results: Mapping[str, SampleResult]) -> P:
        """A run's results in the official format (as :meth:`score` and the server read it)."""

    def submission_text(self, predictions: P) -> str:
        """The submission file's text: JSON Lines for a list of rows, else one JSON value."""
        if isinstance(predictions, list):
            return "".join(json.dumps(p) + "\n" for p in predictions)
        return json.dumps(predictions)

    def extra_files(self, predictions: P) -> dict[str, str]:
        """Other official files a run writes next to the submission file, name -> text (the
        :attr:`companion_file`); default none."""
        return {}

    # --- scoring ------------------------------------------------------------------------------

    @abstractmethod
    def score(
        self, samples: Sequence[Sample], predictions: P, params: Params = DEFAULT_PARAMS
    ) -> Metrics:
        """The official metric of ``predictions`` against ``samples``."""

    def has_ground_truth(self, samples: Sequence[Sample]) -> bool:
        """Whether ``samples`` can be scored here (an unannotated split goes to the server)."""
        return bool(samples)

    def prediction_keys(self, predictions: P) -> set[str]:
        """The sample keys ``predictions`` answers (default: the keys of a mapping)."""
        if isinstance(predictions, Mapping):
            return {str(key) for key in predictions}
        raise NotImplementedError(f"{self.name}: prediction keys of {type(predictions).__name__}")

    def coverage(self, samples: Sequence[Sample], predictions: P) -> Coverage:
        """How many of ``samples`` have a prediction."""
        keys = self.prediction_keys(predictions)
        return Coverage(matched=sum(s.key in keys for s in samples), total=len(samples))

    def read_prediction_files(self, path: Path | str, companion: Path | str | None = None) -> P:
        """What :meth:`scored_files` scores: :meth:`read_predictions` of ``path``; a benchmark
        with a :attr:`companion_file` overrides this to read that file too. Here a companion
        file is an error (this benchmark has one prediction file)."""
        if companion is not None:
            raise EvalError(
                companion,
                f"{self.name} has one prediction file ({self.submission_file}), not a second one",
            )
        return self.read_predictions(path)

    def score_files(
        self,
        annotations: Path | str,
        predictions: Path | str,
        params: Params = DEFAULT_PARAMS,
        companion: Path | str | None = None,
    ) -> Metrics:
        """``vidagent eval score``: an official prediction file (and its :attr:`companion_file`
        where the benchmark has one) against an annotation file."""
        return self.scored_files(annotations, predictions, params, companion).metrics

    def scored_files(
        self,
        annotations: Path | str,
        predictions: Path | str,
        params: Params = DEFAULT_PARAMS,
        companion: Path | str | None = None,
    ) -> FileScore:
        """:meth:`score_files` with the coverage; a prediction file that answers none of the
        annotation file's samples (another split, another key format) is an error, not a score
        of zero."""
        samples = self.load_samples(annotations, params)
        if not samples:
            raise EvalError(annotations, "has no samples to score")
        loaded = self.read_prediction_files(predictions, companion)
        coverage = self.coverage(samples, loaded)
        if not coverage.matched:
            theirs = sorted(self.prediction_keys(loaded))[:3]
            ours = [s.key for s in samples[:3]]
            raise EvalError(
                predictions,
                f"no prediction matches a sample of {annotations} (0 of {coverage.total}; "
                f"prediction keys look like {theirs}, sample keys like {ours}): another split "
                "or another benchmark's file?",
            )
        return FileScore(self.score(samples, loaded, params), coverage)

    def report(self, metrics: Mapping[str, Any]) -> list[MetricTable]:
        """The report's tables: by default the flat metrics, then one table per nested block."""
        tables = [MetricTable(rows=[(k, v) for k, v in metrics.items() if not _nested(v)])]
        for name, block in metrics.items():
            if isinstance(block, Mapping):
                rows = [(k, json.dumps(v) if _nested(v) else v) for k, v in block.items()]
                tables.append(MetricTable(title=str(name), rows=rows))
        return tables

    # --- example bank -------------------------------------------------------------------------

    def bank_examples(
        self, path: Path | str, *, task: str | None = None, params: Params = DEFAULT_PARAMS
    ) -> list[Example]:
        """Solved instances of an annotation file (a train split) for an example bank; ``task``
        overrides :attr:`bank_task`."""
        raise EvalError(path, f"{self.name} gives no in-context examples for an example bank")


def _nested(value: object) -> bool:
    return isinstance(value, Mapping | list)


def succeeded(
    samples: Sequence[Sample], results: Mapping[str, SampleResult]
) -> list[tuple[Sample, SampleResult]]:
    """The samples whose latest result is a success, with that result (in sample order)."""
    return [(s, results[s.key]) for s in samples if s.key in results and results[s.key].ok]
