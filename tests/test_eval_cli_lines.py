"""The eval and index commands speak in one line: a range error names the flag (``error: --z must
be >= 1 (got 0)``, not click's usage panel); Ctrl-C on ``index build`` says what was embedded
and how to run again (exit 130, not click's silent abort); the progress bar's rate and time left
come from the wall time since the run started, not from the time between two updates."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from rich.progress import Progress
from typer.testing import CliRunner

from vidagent.cli import progress
from vidagent.cli.eval import app as eval_app
from vidagent.cli.index import app as index_app
from vidagent.cli.main import main
from vidagent.core.errors import ConfigError

RUN = ["eval", "run", "nextqa", "--annotations", "a", "--out", "o", "--captions", "c"]
SCORE = ["eval", "score", "nextqa", "--annotations", "a", "--predictions", "p"]
BUILD = ["index", "build", "--source", "s", "--format", "jsonl", "--out", "o"]
SEARCH = ["index", "search", "bank", "q"]
RANGE_ERRORS = [
    ([*RUN, "--timeout", "0"], "--timeout must be > 0 (got 0)"),
    ([*RUN, "--timeout", "-5"], "--timeout must be > 0 (got -5)"),
    ([*RUN, "--limit", "0"], "--limit must be >= 1 (got 0)"),
    ([*RUN, "--examples", "-1"], "--examples must be >= 0 (got -1)"),
    ([*RUN, "--z", "0"], "--z must be >= 1 (got 0)"),
    ([*RUN, "-K", "0"], "--candidates must be >= 1 (got 0)"),
    ([*RUN, "--max-concurrency", "0"], "--max-concurrency must be >= 1 (got 0)"),
    ([*RUN, "--max-retries", "-1"], "--max-retries must be >= 0 (got -1)"),
    ([*RUN, "--seconds", "0"], "--seconds must be >= 0.1 (got 0)"),
    ([*SCORE, "--z", "0"], "--z must be >= 1 (got 0)"),
    ([*BUILD, "--z", "0"], "--z must be >= 1 (got 0)"),
    ([*BUILD, "--n-observed", "0"], "--n-observed must be >= 1 (got 0)"),
    ([*BUILD, "--batch-size", "0"], "--batch-size must be >= 1 (got 0)"),
    ([*BUILD, "--limit", "0"], "--limit must be >= 1 (got 0)"),
    ([*SEARCH, "--examples", "0"], "--examples must be >= 1 (got 0)"),
    ([*SEARCH, "--fetch-k", "0"], "--fetch-k must be >= 1 (got 0)"),
    ([*SEARCH, "--lambda", "2"], "--lambda must be between 0 and 1 (got 2)"),
]


@pytest.mark.parametrize(("argv", "line"), RANGE_ERRORS)
def test_range_errors_are_one_line_naming_the_flag(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"error: {line}\n"  # before: a multi-line usage box


def test_index_build_ctrl_c_says_what_was_embedded_and_how_to_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = [0]

    class Embedder:
        """Embeds two batches, then the user presses Ctrl-C."""

        model_id = "fake"
        name = "fake"
        dim = 8

        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def embed(self, texts: list[str]) -> np.ndarray:
            calls[0] += 1
            if calls[0] > 2:
                raise KeyboardInterrupt
            return np.ones((len(texts), 8), dtype=np.float32) / np.sqrt(8)

    monkeypatch.setattr("vidagent.retrieval.text_embedder.SentenceTransformerEmbedder", Embedder)
    source = tmp_path / "examples.jsonl"
    rows = [{"input": f"take cup {i}", "target": "wash cup", "video_id": f"v{i}"}
            for i in range(600)]  # fmt: skip
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "bank"
    args = [
        "build",
        "--source",
        str(source),
        "--format",
        "jsonl",
        "--task",
        "lta",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(index_app, args)
    assert result.exit_code == 130, (result.output, result.exception)  # before: click's abort, 1
    line = result.stderr.strip()
    assert line.startswith("interrupted: 512 of 600 examples embedded, none saved"), line
    assert line.endswith(
        f"run again: vidagent index build --source {source} --format jsonl --out {out} --task lta"
    )
    assert not out.exists()


def test_index_build_out_under_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    args = ["build", "--source", "s.jsonl", "--format", "jsonl", "--out", str(tmp_path / "f/b")]
    result = CliRunner().invoke(index_app, args)
    assert isinstance(result.exception, ConfigError)
    assert (
        str(result.exception)
        == f"--out {tmp_path / 'f/b'}: {tmp_path / 'f'} is a file, not a folder"
    )


def test_eval_score_range_error_is_a_config_error() -> None:
    result = CliRunner().invoke(eval_app, ["score", "nextqa", "--annotations", "a",
                                           "--predictions", "p", "--z", "0"])  # fmt: skip
    assert isinstance(result.exception, ConfigError)


def test_the_bar_rate_and_time_left_use_the_wall_time() -> None:
    """Two samples 2 s into a 4-sample run that finished 0.5 ms apart: 1.00/s and 2 s left
    (rich's own speed, per update, said thousands per second and no time left)."""
    now = [100.0]
    console = Console(file=io.StringIO(), get_time=lambda: now[0], width=200, color_system=None)
    bar = progress.progress_bar(console=console)
    task = bar.add_task("samples", total=4, completed=0, base=0)
    now[0] = 101.9995
    bar.update(task, completed=1)
    now[0] = 102.0
    bar.update(task, completed=2)
    console.print(bar.make_tasks_table(bar.tasks))
    row = console.file.getvalue()  # type: ignore[attr-defined]
    assert "2/4" in row and "1.00/s" in row and "0:00:02" in row, row


def test_steps_progress_counts_the_rate_from_the_first_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A resumed run starts at 98 of 100: its rate is of the samples run now (1 in 2 s), not 99
    over the run's time."""
    now = [100.0]
    console = Console(file=io.StringIO(), get_time=lambda: now[0])
    bars: list[Progress] = []
    real = progress.progress_bar

    def capture(transient: bool = True, console: Console | None = None) -> Progress:
        bars.append(real(transient=transient, console=console))
        return bars[-1]

    monkeypatch.setattr(progress, "progress_bar", capture)
    with progress.steps_progress("samples", console) as on_steps:
        on_steps(98, 100)
        now[0] = 102.0
        on_steps(99, 100, status="waiting for the LLM: 1 request, 3 s")
        [task] = bars[0].tasks
        assert task.completed == 99 and progress.wall_rate(task) == 0.5
        assert task.description == "samples: waiting for the LLM: 1 request, 3 s"
