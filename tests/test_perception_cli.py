"""``vidagent perceive`` registered on a Typer app exactly as vidagent.cli.main does it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from vidagent.cli.perceive import perceive
from vidagent.core.errors import ConfigError
from vidagent.core.records import Timeline
from vidagent.testing.synth import SyntheticVideo
from vidagent.testing.tiny_models import build_tiny
from vidagent.tools.models import ModelLoadError

app = typer.Typer()
app.command("perceive")(perceive)
app.command("noop")(lambda: None)  # a second command, so "perceive" is a sub-command as in vidagent


@pytest.fixture(scope="module")
def model_args(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.getbasetemp() / "tiny-models"
    clip, blip = build_tiny("clip", root), build_tiny("blip", root)
    return [
        *("--captioner", str(blip), "--caption-max-tokens", "5"),
        *("--action-model", str(clip), "--embedder", str(clip)),
    ]


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, ["perceive", *args])


def test_perceive_writes_timelines_skips_cached_and_fails_on_bad_videos(
    model_args: list[str], h264_video: SyntheticVideo, tmp_path: Path
) -> None:
    videos = tmp_path / "videos"
    (videos / "sub").mkdir(parents=True)
    (videos / "a.mp4").write_bytes(h264_video.path.read_bytes())
    (videos / "sub" / "b.mp4").write_bytes(h264_video.path.read_bytes()[:3000])  # truncated
    (videos / "notes.txt").write_text("not a video")
    out = tmp_path / "timelines"
    taxonomy = tmp_path / "tax.json"
    taxonomy.write_text(json.dumps({"verbs": ["take_(pick,_grab)", "cut"], "nouns": ["cup", "x"]}))
    args = ["--out", str(out), "--taxonomy", str(taxonomy), "--top-k", "2"]
    first = invoke(*model_args, "--videos-dir", str(videos), *args, "--batch-size", "4")
    assert first.exit_code == 1, first.output  # one video failed
    assert "perception summary" in first.output and "failed" in first.output
    assert "CorruptVideoError" in first.output
    assert "1 computed, 0 cached, 1 failed" in first.output
    timeline = Timeline.model_validate_json((out / "a.json").read_text())
    assert len(timeline.segments) == 4
    assert {a.verb for s in timeline.segments for a in s.actions} <= {"take", "cut"}
    assert all(s.captions and s.embedding for s in timeline.segments)

    again = invoke(*model_args, str(videos / "a.mp4"), *args)
    assert again.exit_code == 0, again.output
    assert "0 computed, 1 cached, 0 failed" in again.output


def test_tools_can_be_switched_off(
    model_args: list[str], h264_video: SyntheticVideo, tmp_path: Path
) -> None:
    result = invoke(
        *model_args,
        str(h264_video.path),
        "--out",
        str(tmp_path),
        "--no-captions",
        "--no-actions",
        "--seconds",
        "4",
        "--frames-per-segment",
        "2",
    )
    assert result.exit_code == 0, result.output
    timeline = Timeline.model_validate_json((tmp_path / "cut.json").read_text())
    assert len(timeline.segments) == 2
    assert all(not s.captions and not s.actions and s.embedding for s in timeline.segments)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no videos given"),
        (["--shots", "--seconds", "2", "x.mp4"], "--seconds and --shots are exclusive"),
        (["--no-captions", "--no-actions", "--no-embeddings", "x.mp4"], "leave nothing to run"),
        (["--videos-dir", "/nonexistent-dir"], "not a directory"),
        (["--taxonomy", "/nonexistent.json", "x.mp4"], "no such file"),
        (["--dtype", "float64", "x.mp4"], "invalid CaptionerParams: dtype='float64'"),
    ],
)
def test_user_mistakes_are_config_errors(
    model_args: list[str], args: list[str], message: str
) -> None:
    result = invoke(*model_args, *args)
    assert isinstance(result.exception, ConfigError), result.output
    assert message in str(result.exception)


def test_missing_model_offline_stops_with_one_line(
    h264_video: SyntheticVideo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = invoke(str(h264_video.path), "--out", str(tmp_path), "--no-actions", "--no-embeddings")
    assert isinstance(result.exception, ModelLoadError)
    assert "Salesforce/blip-image-captioning-large" in str(result.exception)
    assert "huggingface-cli download" in str(result.exception)


def test_shot_segmentation_from_the_cli(
    model_args: list[str], multi_cut_video: SyntheticVideo, tmp_path: Path
) -> None:
    args = [str(multi_cut_video.path), "--out", str(tmp_path), "--no-captions", "--no-actions"]
    result = invoke(*model_args, *args, "--shots", "--max-shot-seconds", "0")
    assert result.exit_code == 0, result.output
    timeline = Timeline.model_validate_json((tmp_path / "multi.json").read_text())
    assert [s.start_frame for s in timeline.segments] == [0, 50, 130, 210]
    assert timeline.segmentation.method == "shots"


def test_captioner_url_selects_the_served_captioner(tmp_path: Path) -> None:
    from vidagent.api import PerceptionConfig, build_tools
    from vidagent.tools.captioner import ServedCaptioner

    config = PerceptionConfig(
        actions=False,
        embeddings=False,
        captioner="Qwen/Qwen2.5-VL-7B-Instruct",
        captioner_url="http://gpu-box:8000/v1",
        caption_prompt="What happens?",
        caption_frames=4,
        caption_max_tokens=32,
    )
    tools = build_tools(config)
    assert len(tools) == 1 and isinstance(tools[0], ServedCaptioner)
    params = tools[0].params
    assert (params.model, params.base_url, params.prompt) == (
        "Qwen/Qwen2.5-VL-7B-Instruct",
        "http://gpu-box:8000/v1",
        "What happens?",
    )
    assert (params.frames_per_segment, params.max_tokens) == (4, 32)


def test_progress_bar_counts_videos_and_segments(
    h264_video: SyntheticVideo, tmp_path: Path
) -> None:
    """The bar `ask`/`chat` show while a video is perceived (rich draws only on a terminal)."""
    import io

    from rich.console import Console

    from vidagent.cli.progress import perception_progress
    from vidagent.store.perception import PerceptionStore
    from vidagent.tools.perceive import perceive

    clip = build_tiny("clip", tmp_path / "models")
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    from vidagent.tools.visual_embedder import EmbedderParams, SegmentEmbedder

    tools = [SegmentEmbedder(EmbedderParams(model=str(clip)))]
    store = PerceptionStore(tmp_path / "store")
    with perception_progress(1, console) as on_progress:
        perceive(h264_video.path, tools=tools, store=store, progress=on_progress)
    text = out.getvalue()
    assert "videos (cut.mp4)" in text and "1/1" in text and "4/4" in text  # 4 segments, 1 tool


def test_segments_shots_and_perceive_shots_share_one_detection(
    model_args: list[str],
    multi_cut_video: SyntheticVideo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One store entry for a shot segmentation: whichever command runs second detects nothing."""
    from vidagent.cli.main import main

    video = str(multi_cut_video.path)
    with pytest.raises(SystemExit) as exit_:
        main(["segments", video, "--shots", "--max-shot-seconds", "4", "--json"])
    assert exit_.value.code == 0
    segmented = Timeline.model_validate_json(capsys.readouterr().out)

    def no_second_detection(*args: object, **kwargs: object) -> None:
        raise AssertionError("shot detection ran again for a video and parameters already cut")

    with monkeypatch.context() as mp:
        mp.setattr("vidagent.tools.segmenter.detect_shots", no_second_detection)
        only_embeddings = ["--no-captions", "--no-actions", "--out", str(tmp_path)]
        result = invoke(*model_args, video, *only_embeddings, "--shots", "--max-shot-seconds", "4")
    assert result.exit_code == 0, result.output
    assert "1 computed, 0 cached, 0 failed" in result.output
    perceived = Timeline.model_validate_json((tmp_path / "multi.json").read_text())
    assert [s.start_frame for s in perceived.segments] == [
        s.start_frame for s in segmented.segments
    ]
    assert perceived.segmentation == segmented.segmentation

    # and the other way round: perceive first (other parameters), then segments
    args = [video, "--no-captions", "--no-actions", "--out", str(tmp_path / "b")]
    assert invoke(*model_args, *args, "--shots", "--max-shot-seconds", "0").exit_code == 0
    with monkeypatch.context() as mp:
        mp.setattr("vidagent.tools.segmenter.detect_shots", no_second_detection)
        with pytest.raises(SystemExit) as exit_:
            main(["segments", video, "--shots", "--max-shot-seconds", "0", "--json"])
    assert exit_.value.code == 0
    whole_shots = Timeline.model_validate_json(capsys.readouterr().out)
    assert [s.start_frame for s in whole_shots.segments] == [0, *multi_cut_video.cuts]
