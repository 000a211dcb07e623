"""The ask / anticipate / localize / demo commands through typer's CliRunner (hf backend, tiny
models), and the one-line error for an LLM model that cannot be reached."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
from llm_support import tiny_model_dir
from test_tasks_support import Perceived, perceived
from typer.testing import CliRunner

from vidagent.api.config import LLMSettings
from vidagent.api.deps import build_llm
from vidagent.cli.demo import demo
from vidagent.cli.tasks import anticipate, ask, localize
from vidagent.core.errors import VidagentError
from vidagent.testing.synth import SyntheticVideo

__all__ = ["perceived", "tiny_model_dir"]

app = typer.Typer()
app.command("ask")(ask)
app.command("anticipate")(anticipate)
app.command("localize")(localize)
app.command("demo")(demo)


def common(p: Perceived, llm: Path) -> list[str]:
    clip = p.models["clip"]
    return ["--llm-model", str(llm), "--captioner", p.models["blip"], "--embedder", clip]


def test_ask_prints_the_answer_and_cited_segments(
    perceived: Perceived, tiny_model_dir: Path, h264_video: SyntheticVideo
) -> None:
    args = ["ask", str(h264_video.path), "What is cut?", "--option", "onion", "--option", "door"]
    result = CliRunner().invoke(app, [*args, *common(perceived, tiny_model_dir)])
    assert result.exit_code == 0, result.output
    assert "answer: " in result.output and "<seg_" in result.output


def test_localize_and_anticipate_json(
    perceived: Perceived, tiny_model_dir: Path, h264_video: SyntheticVideo, tmp_path: Path
) -> None:
    video = str(h264_video.path)
    result = CliRunner().invoke(
        app, ["localize", video, "a door", "--json", *common(perceived, tiny_model_dir)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert 0 <= data["start"] < data["end"] <= 8.0 and data["run"]["task"] == "localize"
    taxonomy = tmp_path / "tax.json"
    taxonomy.write_text(json.dumps({"verbs": ["take", "cut"], "nouns": ["knife", "onion"]}))
    result = CliRunner().invoke(
        app,
        [
            "anticipate",
            video,
            "--taxonomy",
            str(taxonomy),
            "--z",
            "3",
            "-K",
            "2",
            "--json",
            *common(perceived, tiny_model_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["candidates"]) == 2
    for cand in data["candidates"]:
        assert [
            a["verb"] in ("take", "cut") and a["noun"] in ("knife", "onion")
            for a in cand["actions"]
        ] == [True] * 3


def test_unreachable_llm_model_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(VidagentError, match=r"no-such-org/no-such-llm.*local") as info:
        build_llm(LLMSettings(model="no-such-org/no-such-llm"))
    assert "\n" not in str(info.value)


def test_demo_runs_offline_and_reuses_its_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo")])
    assert first.exit_code == 0, first.output
    assert "RANDOM-WEIGHT" in first.output and "answer: " in first.output
    assert "candidate 2:" in first.output and "span: " in first.output
    for name in ("ask", "anticipate", "localize"):
        assert json.loads((tmp_path / "demo" / f"{name}.json").read_text())["run"]
    models = sorted(p.name for p in (Path(os.environ["VIDAGENT_HOME"]) / "models/demo").iterdir())
    # without --out: under $VIDAGENT_HOME/demo, never in the current folder
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    second = runner.invoke(app, ["demo"])
    assert second.exit_code == 0, second.output
    home = Path(os.environ["VIDAGENT_HOME"])
    assert list(cwd.iterdir()) == []
    assert {p.name for p in (home / "demo").iterdir()} >= {"demo.mp4", "ask.json", "localize.json"}
    assert f"run records in {home / 'demo'}/" in " ".join(second.output.split())
    assert sorted(p.name for p in (home / "models/demo").iterdir()) == models  # reused


def test_the_cli_calls_the_python_api_with_the_same_defaults(
    perceived: Perceived, tiny_model_dir: Path, h264_video: SyntheticVideo
) -> None:
    from vidagent.api import LocalizationResult, PerceptionConfig, localize

    video = str(h264_video.path)
    cli = CliRunner().invoke(
        app, ["localize", video, "a door", "--json", *common(perceived, tiny_model_dir)]
    )
    assert cli.exit_code == 0, cli.output
    events: list[str] = []
    config = PerceptionConfig(captioner=perceived.models["blip"], embedder=perceived.models["clip"])
    result = localize(
        video,
        "a door",
        llm=LLMSettings(model=str(tiny_model_dir)),
        perception=config,
        on_progress=lambda event: events.append(event.kind),
    )
    assert isinstance(result, LocalizationResult)
    shown = LocalizationResult.model_validate_json(cli.stdout)
    assert (result.start, result.end, result.start_token) == (
        shown.start,
        shown.end,
        shown.start_token,
    )
    assert [c.messages for c in result.run.calls] == [c.messages for c in shown.run.calls]
    assert result.run.relevance == shown.run.relevance and events[-1] == "video"


def test_the_api_refuses_examples_without_a_bank_before_loading_anything(tmp_path: Path) -> None:
    from vidagent.api import ask

    with pytest.raises(VidagentError, match=r"examples=2 needs an example bank"):
        ask(tmp_path / "missing.mp4", "what?", examples=2)
