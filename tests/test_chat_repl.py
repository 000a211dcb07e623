"""The terminal chat: its line history file, the user's own system prompt, a folder of videos."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import typer
from llm_support import tiny_model_dir, vllm_url
from test_tasks_support import Perceived, perceived
from typer.testing import CliRunner

from vidagent.chat import Toolbox, VideoContext, system_prompt
from vidagent.cli.chat_repl import enable_line_history, save_line_history
from vidagent.core.errors import VidagentError
from vidagent.tasks import TaskOptions
from vidagent.testing.synth import SyntheticVideo

__all__ = ["perceived", "tiny_model_dir", "vllm_url"]

readline = pytest.importorskip("readline")


def test_history_is_loaded_from_and_saved_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "home" / "chat_history"
    path.parent.mkdir()
    path.write_text("what happens at 2 s?\n/timeline\n")
    readline.clear_history()
    try:
        assert enable_line_history(path) == path
        items = [
            readline.get_history_item(i + 1) for i in range(readline.get_current_history_length())
        ]
        assert items == ["what happens at 2 s?", "/timeline"]
        readline.add_history("where is the door?")
        save_line_history(path)
        assert path.read_text().splitlines()[-1] == "where is the door?"
    finally:
        readline.clear_history()


def test_history_defaults_to_the_vidagent_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDAGENT_HOME", str(tmp_path / "vh"))
    readline.clear_history()
    try:
        path = enable_line_history()
        assert path == tmp_path / "vh" / "chat_history"
        readline.add_history("hello")
        save_line_history(path)  # creates the home if needed
        assert path.read_text().splitlines() == ["hello"]
    finally:
        readline.clear_history()


def _box(p: Perceived) -> Toolbox:
    context = TaskOptions(k=0, max_timeline_chars=160)
    return Toolbox(VideoContext(timeline=p.timeline, context=context, overview_chars=300))


def test_a_custom_system_prompt_file_is_rendered_with_the_video(
    perceived: Perceived, tmp_path: Path
) -> None:
    own = tmp_path / "pirate.yaml"
    own.write_text(
        "name: pirate\nsystem: |\n  Answer like a pirate. {{ num_segments }} segments, "
        "{{ duration }}.\n  {{ timeline }}\n"
    )
    text = system_prompt(_box(perceived), own)
    n = len(perceived.timeline.segments)
    assert text.startswith(f"Answer like a pirate. {n} segments, ")
    assert f"{perceived.timeline.video.duration:.1f}s." in text and "<seg_0>" in text
    assert "You are vidagent" not in text


def test_a_prompt_with_an_unknown_variable_names_it(perceived: Perceived, tmp_path: Path) -> None:
    own = tmp_path / "bad.yaml"
    own.write_text("name: bad\nsystem: 'Video of {{ speaker }}'\n")
    with pytest.raises(VidagentError, match="speaker"):
        system_prompt(_box(perceived), own)


@pytest.mark.vllm
def test_chat_over_a_folder_of_videos_on_the_server(
    perceived: Perceived,
    vllm_url: str,
    h264_video: SyntheticVideo,
    multi_cut_video: SyntheticVideo,
    tmp_path: Path,
) -> None:
    from vidagent.cli.chat import chat

    folder = tmp_path / "clips"
    (folder / "day2").mkdir(parents=True)
    shutil.copy(h264_video.path, folder / "kitchen.mp4")
    shutil.copy(multi_cut_video.path, folder / "day2" / "garage.mp4")
    app = typer.Typer()
    app.command("chat")(chat)
    app.command("other")(lambda: None)
    models = ["--captioner", perceived.models["blip"], "--embedder", perceived.models["clip"]]
    args = [
        "chat",
        str(folder),
        "--llm-url",
        vllm_url,
        "--max-rounds",
        "1",
        "--max-timeline-chars",
        "600",
        *("--tools", "timeline_overview", "--tool-choice", "required", "--max-tokens", "200"),
        *models,
    ]
    result = CliRunner().invoke(app, args, input="/timeline\nWhat happens?\n/quit\n")
    assert result.exit_code == 0, result.output
    assert "day2/garage.mp4:\n" in result.output and "kitchen.mp4:\n" in result.output
    assert "error:" not in result.output
    # required tool choice: the server's guided JSON picks one of the two videos by name
    call = re.search(r"> timeline_overview\((.*)\)", result.output)
    assert call and json.loads(call.group(1))["video"] in ("kitchen.mp4", "day2/garage.mp4")


def test_tool_options_are_checked_before_anything_loads() -> None:
    from vidagent.cli.chat import tool_options

    assert tool_options("auto", None) is None
    assert tool_options("required", " find_moments, localize ") == ["find_moments", "localize"]
    with pytest.raises(VidagentError, match="--tool-choice 'maybe'"):
        tool_options("maybe", None)
    with pytest.raises(
        VidagentError, match="unknown tool 'nope'; the tools are: timeline_overview"
    ):
        tool_options("auto", "find_moments,nope")
