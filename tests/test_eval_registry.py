"""A benchmark is one module: a toy benchmark written into a package on the registry's search path
is listed, run, scored, reported and turned into bank examples by the unchanged harness and CLI;
the harness modules never name a benchmark; the settings a benchmark does not read are refused."""

from __future__ import annotations

import ast
import contextlib
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import vidagent
from vidagent.cli import eval as eval_cli
from vidagent.cli import progress
from vidagent.cli.eval import app
from vidagent.cli.index import app as index_app
from vidagent.core.errors import ConfigError
from vidagent.evals import EvalError, Params, benchmark, benchmark_names, discover, registry
from vidagent.evals.benchmark import Benchmark
from vidagent.retrieval.text_embedder import default_model_path

AGENT = Path(vidagent.__file__).resolve().parent
EVALS = AGENT.parent / "evals"

TOY = '''"""Toy: how many segments has the video? (a test benchmark: this file and nothing else)."""

from __future__ import annotations

from pathlib import Path

from vidagent.evals.benchmark import (
    DEFAULT_PARAMS, Benchmark, MetricTable, Params, Solution, succeeded,
)
from vidagent.evals.common import Sample, load_jsonl
from vidagent.tasks import RunRecord


class SegmentCount(Benchmark[dict[str, int]]):
    name = "toy_segments"
    description = "How many segments has the video? (a toy)"
    kind = "qa"
    submission_file = "counts.txt"
    uses = frozenset({"z"})
    taxonomy_file = "toy_taxonomy.json"
    bank_task = "count"

    def load_samples(self, path, params=DEFAULT_PARAMS):
        return [
            Sample(key=str(d["id"]), video_id=d["video"], kind="qa", question="how many?",
                   answer=d["count"])
            for d in load_jsonl(path)
        ]

    def read_predictions(self, path):
        rows = (line.split() for line in Path(path).read_text().splitlines())
        return {key: int(value) for key, value in rows}

    def solve(self, sample, timeline, context):
        run = RunRecord(task="answer", video=sample.video_id, query=sample.question, prompt="none")
        run.usage = run.usage.model_copy(update={"prompt_tokens": 7})
        valid = context.taxonomy is not None and context.taxonomy.verbs == ["count"]
        return Solution(len(timeline.segments), valid, run)

    def submission(self, samples, results):
        return {s.key: r.prediction for s, r in succeeded(samples, results)}

    def submission_text(self, predictions):
        return "".join(f"{key} {value}\\n" for key, value in predictions.items())

    def score(self, samples, predictions, params=DEFAULT_PARAMS):
        right = sum(predictions.get(s.key) == s.answer for s in samples)
        return {"exact": 100.0 * right / len(samples), "z": params.z, "n": len(samples)}

    def report(self, metrics):
        return [MetricTable(title="toy table", rows=[("exact", metrics["exact"])])]

    def bank_examples(self, path, *, task=None, params=DEFAULT_PARAMS):
        from vidagent.retrieval.bank import Example

        return [
            Example(task=task or "count", input=f"{s.question} {s.video_id}",
                    target=str(s.answer), video_id=s.video_id)
            for s in self.load_samples(path)
        ]


BENCHMARK = SegmentCount()
'''


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Benchmark[Any]]:
    """A package holding one toy benchmark module, put on the registry's search path."""
    package = f"toybench_{uuid.uuid4().hex[:8]}"
    (tmp_path / "pkgs" / package).mkdir(parents=True)
    (tmp_path / "pkgs" / package / "__init__.py").write_text("")
    (tmp_path / "pkgs" / package / "toy.py").write_text(TOY)
    (tmp_path / "pkgs" / package / "_helpers.py").write_text("X = 1\n")  # private: skipped
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    monkeypatch.setattr(registry, "PACKAGES", [*registry.PACKAGES, package])
    yield benchmark("toy_segments")
    for name in [m for m in sys.modules if m.startswith(package)]:
        del sys.modules[name]


def toy_files(root: Path) -> tuple[Path, Path, Path]:
    ann = root / "toy.jsonl"
    rows = [{"id": 1, "video": "v1", "count": 2}, {"id": 2, "video": "v2", "count": 1}]
    ann.write_text("".join(json.dumps(r) + "\n" for r in rows))
    caption = {"start": 0, "end": 2, "caption": "a dog runs"}
    cap = root / "captions.json"
    later = [caption, {"start": 2, "end": 4, "caption": "a cat sits"}]
    cap.write_text(json.dumps({"v1": later, "v2": [*later, {**caption, "start": 4, "end": 6}]}))
    tax = root / "toy_taxonomy.json"
    tax.write_text(json.dumps({"verbs": ["count"], "nouns": ["segment"]}))
    return ann, cap, tax


class NoLLM:
    """The toy calls no LLM: the run's client only has to be probed and closed."""

    backend = None

    def __init__(self) -> None:
        self.probes = 0

    def probe_sync(self) -> None:
        self.probes += 1

    def close(self) -> None:
        pass


def invoke(cli: Any, args: list[str]) -> Any:
    return CliRunner().invoke(cli, args, env={"COLUMNS": "250"})


def test_a_new_module_is_a_new_benchmark_for_run_score_report_and_bank(
    toy: Benchmark[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "toy_segments" in benchmark_names() and discover()["toy_segments"] is toy
    shipped = {"charades_sta", "ego4d_lta", "egoschema", "egoschema_full", "intentqa",
               "longvideobench", "lvbench", "mlvu", "nextgqa", "nextqa", "qvhighlights",
               "videomme"}  # fmt: skip
    assert set(benchmark_names()) == shipped | {"toy_segments"}  # "_helpers" is not one
    ann, cap, tax = toy_files(tmp_path)
    llm = NoLLM()
    monkeypatch.setattr(eval_cli, "_llm", lambda *_args: llm)
    drawn: list[tuple[str, int, int]] = []

    @contextlib.contextmanager
    def bar(description: str) -> Iterator[Any]:
        def draw(done: int, total: int, status: str | None = None) -> None:
            if not status or not status.startswith("waiting"):  # not the idle heartbeat
                drawn.append((description, done, total))

        yield draw

    monkeypatch.setattr(progress, "steps_progress", bar)
    out = tmp_path / "run"
    args = ["run", "toy_segments", "--annotations", str(ann), "--captions", str(cap),
            "--out", str(out)]  # fmt: skip
    # what the toy declares is read generically: it needs a taxonomy, and reads --z
    missing = invoke(app, [*args, "--no-progress"])
    assert isinstance(missing.exception, ConfigError)
    assert str(missing.exception) == "toy_segments needs --taxonomy toy_taxonomy.json"
    result = invoke(app, [*args, "--taxonomy", str(tax), "--z", "4"])
    assert result.exit_code == 0, (result.output, result.exception)
    metrics, _ = json.JSONDecoder().raw_decode(result.stdout)  # the JSON, then a summary line
    assert metrics == {"exact": 50.0, "z": 4, "n": 2}
    assert drawn == [("samples", 0, 2), ("samples", 1, 2), ("samples", 2, 2)]  # the CLI's bar
    assert llm.probes == 1  # the server is probed before the samples are sent
    assert (out / "counts.txt").read_text() == "1 2\n2 3\n"  # its own submission file and writer
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed"] == 0, summary["failures"]
    assert summary["submission"] == "counts.txt" and summary["valid_output_rate"] == 100.0
    assert summary["usage"]["prompt_tokens"] == 14
    assert "### toy table" in (out / "report.md").read_text()
    scored = invoke(app, ["score", "toy_segments", "--annotations", str(ann), "--predictions",
                          str(out / "counts.txt"), "--z", "4"])  # fmt: skip
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout) == summary["metrics"]
    # --help and the errors list it, as found now
    assert "toy_segments" in invoke(app, ["score", "--help"]).stdout
    assert "toy_segments" in invoke(app, ["run", "--help"]).stdout
    assert "toy_segments" in invoke(index_app, ["build", "--help"]).stdout
    unknown = invoke(app, ["score", "nope", "--annotations", "a", "--predictions", "p"])
    assert isinstance(unknown.exception, EvalError) and "toy_segments" in str(unknown.exception)
    wrong = invoke(app, ["score", "nextqa", "--annotations", "a", "--predictions", "p", "--z", "4"])
    assert str(wrong.exception) == "--z does not apply to nextqa (only to ego4d_lta, toy_segments)"


@pytest.mark.skipif(default_model_path() is None, reason="the bundled MiniLM is not installed")
def test_index_build_takes_the_examples_from_the_benchmark(
    toy: Benchmark[Any], tmp_path: Path
) -> None:
    from vidagent.retrieval import ExampleBank

    ann, _, _ = toy_files(tmp_path)
    bank = tmp_path / "bank"
    result = invoke(index_app, ["build", "--source", str(ann), "--format", "toy_segments",
                                "--out", str(bank)])  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    loaded = ExampleBank.load(bank)
    assert loaded.manifest.tasks == {"count": 2}
    assert [e.input for e in loaded.examples] == ["how many? v1", "how many? v2"]


def test_index_build_formats_and_settings_come_from_the_benchmarks(tmp_path: Path) -> None:
    out = ["--out", str(tmp_path / "b")]
    wrong = invoke(index_app, ["build", "--source", "x", "--format", "lta", *out])
    assert isinstance(wrong.exception, ConfigError)
    assert "choose one of ego4d_lta, intentqa, nextqa, jsonl" in str(wrong.exception)
    no_bank = invoke(index_app, ["build", "--source", "x", "--format", "charades_sta", *out])
    assert isinstance(no_bank.exception, ConfigError)  # a benchmark without bank examples
    z_qa = invoke(index_app, ["build", "--source", "x", "--format", "nextqa", "--z", "3", *out])
    assert str(z_qa.exception) == "--z does not apply to nextqa (only to ego4d_lta)"
    z_jsonl = invoke(index_app, ["build", "--source", "x", "--format", "jsonl", "--z", "3", *out])
    assert str(z_jsonl.exception) == "--z does not apply to jsonl"


def test_run_refuses_settings_the_benchmark_does_not_use(tmp_path: Path) -> None:
    ann, cap = tmp_path / "val.csv", tmp_path / "cap.json"
    base = ["run", "nextqa", "--annotations", str(ann), "--captions", str(cap),
            "--out", str(tmp_path / "run")]  # fmt: skip
    examples = invoke(app, [*base, "--examples", "2"])
    assert isinstance(examples.exception, ConfigError)
    assert str(examples.exception) == (
        "--examples needs --bank (an example bank folder from vidagent index build); "
        "got --examples 2 and no --bank"
    )
    candidates = invoke(app, [*base, "-K", "3"])
    assert str(candidates.exception) == "--candidates does not apply to nextqa (only to ego4d_lta)"
    lta = ["run", "ego4d_lta", "--annotations", "a.json", "--captions", str(cap), "--out", "o"]
    assert str(invoke(app, lta).exception) == "ego4d_lta needs --taxonomy fho_lta_taxonomy.json"
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_help_lists_the_benchmarks_and_readable_option_types() -> None:
    for cli, args in ((app, ["run"]), (app, ["score"]), (index_app, ["build"]),
                      (index_app, ["search"])):  # fmt: skip
        text = invoke(cli, [*args, "--help"]).stdout
        rows = [line for line in text.splitlines() if "--" in line and "--help" not in line]
        assert rows and not [r for r in rows if "<bool>" in r or "<list[" in r], text
    run_help = invoke(app, ["run", "--help"]).stdout
    assert all(name in run_help for name in benchmark_names())
    assert "--candidates" in run_help and "-K" in run_help and "--k " not in run_help
    assert "--examples" in invoke(index_app, ["search", "--help"]).stdout


def _source(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_the_harness_never_names_a_benchmark() -> None:
    """Only the benchmark modules know benchmark names: the registry, runner, report, CLI and
    shared helpers read what a benchmark object declares."""
    harness = [EVALS / f for f in ("registry.py", "runner.py", "report.py", "benchmark.py",
                                   "common.py", "sources.py", "results.py",
                                   "run_folder.py")]  # fmt: skip
    harness += [AGENT / "cli" / f for f in ("eval.py", "eval_run.py", "eval_sources.py",
                                            "run_display.py", "index.py")]  # fmt: skip
    names = benchmark_names()
    assert len(names) >= 6
    for path in harness:
        text = _source(path).lower()
        found = [n for n in names if n in text]
        assert not found, f"{path.name} names {found}"


def test_retrieval_does_not_import_evals() -> None:
    for path in sorted((AGENT / "retrieval").glob("*.py")):
        tree = ast.parse(_source(path))
        imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [m for m in imported if m.startswith("vidagent.evals")], path.name


def test_params_name_only_what_is_set() -> None:
    assert Params().given() == [] and Params(candidates=2, z=3).given() == ["z", "candidates"]
    with pytest.raises(ValueError):
        Params(z=0)
    with pytest.raises(ValueError):
        Params(k=3)  # type: ignore[call-arg]


def test_the_package_api_survives_the_benchmarks_subpackage_import() -> None:
    """Importing ``vidagent.evals.benchmarks`` sets that attribute on ``vidagent.evals``: no
    function of the package may have that name."""
    import vidagent.evals
    import vidagent.evals.benchmarks

    assert all(callable(getattr(vidagent.evals, name)) for name in
               ("benchmark", "benchmark_names", "discover", "bank_formats"))  # fmt: skip
    assert "benchmarks" not in vidagent.evals.__all__
