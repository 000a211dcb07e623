"""``perceive --engine ray`` (tools/perceive_ray.py) on a local Ray instance with tiny models: the
local engine's timelines (up to float rounding within the batch-composition bound of
tests/perception_support.py: Ray sends one video per task, the local reference batches all three),
cached videos never reach Ray, a failed video is retried once, a killed actor loses no video, and
the CLI wiring and its error lines."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from perception_support import assert_timelines_close
from typer.testing import CliRunner

from vidagent.api import PerceptionConfig, build_tools
from vidagent.cli.perceive import perceive
from vidagent.core.errors import ConfigError, MissingDependencyError
from vidagent.store.perception import PerceptionStore
from vidagent.testing.synth import SyntheticVideo
from vidagent.testing.tiny_models import build_tiny
from vidagent.tools.perceive import PerceiveSummary, perceive_many
from vidagent.tools.perceive_ray import RayPlan, connect, perceive_ray
from vidagent.tools.video import FrameBatch


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def ray_session() -> Iterator[Any]:
    try:
        import ray
    except ImportError:
        if _in_ci():
            pytest.fail("ray is not installed (CI is set: pip install '.[ray]')")
        pytest.skip("ray is not installed (pip install 'vidagent[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 * 1024)
    # the actors cannot import this test module: send its rigged tools by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def make_tools(tmp_path_factory: pytest.TempPathFactory) -> functools.partial[Any]:
    root = tmp_path_factory.getbasetemp() / "tiny-models"
    clip, blip = build_tiny("clip", root), build_tiny("blip", root)
    config = PerceptionConfig(
        captioner=str(blip), caption_max_tokens=5, action_model=str(clip), top_k=2,
        embedder=str(clip), frames_per_segment=2, device="cpu",
    )  # fmt: skip
    return functools.partial(build_tools, config)


@pytest.fixture(scope="module")
def videos(
    h264_video: SyntheticVideo, vp9_video: SyntheticVideo, multi_cut_video: SyntheticVideo
) -> list[Path]:
    return [h264_video.path, vp9_video.path, multi_cut_video.path]


@pytest.fixture(scope="module")
def local_timelines(
    make_tools: functools.partial[Any],
    videos: list[Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """The local engine's timelines, the reference every Ray run must reproduce."""
    store = PerceptionStore(tmp_path_factory.mktemp("local-store"))
    out = tmp_path_factory.mktemp("local-out")
    summary = perceive_many(videos, tools=make_tools(store=store), store=store, out_dir=out)
    assert [r.status for r in summary.results] == ["ok"] * 3
    return read_timelines(out)


def read_timelines(folder: Path) -> dict[str, Any]:
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


class Rigged:
    """A tool that misbehaves in a Ray actor: ``kill`` exits the process on the first call of
    the whole test (a marker file says it happened); ``flaky`` raises on that first call;
    segments after ``bad_after_s`` always raise."""

    def __init__(self, inner: Any, mode: str, marker: str, bad_after_s: float | None) -> None:
        self.inner, self.mode, self.marker, self.bad_after_s = inner, mode, marker, bad_after_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def run(self, frames: Sequence[FrameBatch]) -> Any:
        if self.bad_after_s is not None and any(
            fb.timestamps.max() > self.bad_after_s for fb in frames
        ):
            raise RuntimeError("always bad")
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return self.inner.run(frames)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        if self.mode == "kill":
            os._exit(1)
        raise RuntimeError("flaky once")


def rigged_tools(
    *, store: Any, inner: Any, mode: str, marker: str, bad_after_s: float | None = None
) -> list[Any]:
    tools = inner(store=store)
    return [Rigged(tools[0], mode, marker, bad_after_s), *tools[1:]]


def run_rigged(
    make_tools: Any,
    videos: list[Path],
    folder: Path,
    *,
    mode: str,
    workers: int,
    bad_after_s: float | None = None,
) -> PerceiveSummary:
    """A Ray run, one video per task, its first tool :class:`Rigged` (marker: folder/marker)."""
    marker = str(folder / "marker")
    factory = functools.partial(
        rigged_tools, inner=make_tools, mode=mode, marker=marker, bad_after_s=bad_after_s
    )
    store = PerceptionStore(folder / "store")
    plan = RayPlan(workers=workers, videos_per_task=1)
    return perceive_ray(videos, make_tools=factory, store=store, out_dir=folder / "out", plan=plan)


def test_ray_run_gives_the_local_timelines_and_skips_cached_videos(
    ray_session: Any,
    make_tools: functools.partial[Any],
    videos: list[Path],
    local_timelines: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = PerceptionStore(tmp_path / "store")
    events: list[str] = []
    plan = RayPlan(workers=2, videos_per_task=1)
    summary = perceive_ray(videos, make_tools=make_tools, store=store, out_dir=tmp_path / "out",
                           plan=plan, progress=lambda e: events.append(e.kind))  # fmt: skip
    assert [r.status for r in summary.results] == ["ok"] * 3
    assert [r.path for r in summary.results] == [str(v) for v in videos]
    assert all(r.computed == ["captioner", "embedder", "actions"] for r in summary.results)
    assert_timelines_close(read_timelines(tmp_path / "out"), local_timelines)
    assert events.count("video") == 3 and events.count("planned") == 3

    # a second run finds everything in the store: finished on the driver, Ray is not even asked
    def no_ray(address: str | None) -> None:
        raise AssertionError("Ray was used for cached videos")

    monkeypatch.setattr("vidagent.tools.perceive_ray.connect", no_ray)
    again = perceive_ray(videos, make_tools=make_tools, store=store, out_dir=tmp_path / "again",
                         plan=plan)  # fmt: skip
    assert [r.status for r in again.results] == ["cached"] * 3
    assert_timelines_close(read_timelines(tmp_path / "again"), local_timelines)


@pytest.mark.slow
def test_a_killed_actor_loses_no_video(
    ray_session: Any,
    make_tools: functools.partial[Any],
    videos: list[Path],
    local_timelines: dict[str, Any],
    tmp_path: Path,
) -> None:
    summary = run_rigged(make_tools, videos, tmp_path, mode="kill", workers=2)
    marker = tmp_path / "marker"
    assert marker.exists() and int(marker.read_text()) != os.getpid()  # an actor died
    assert [r.status for r in summary.results] == ["ok"] * 3
    assert_timelines_close(read_timelines(tmp_path / "out"), local_timelines)


def test_a_failed_video_is_retried_once_then_reported(
    ray_session: Any,
    make_tools: functools.partial[Any],
    videos: list[Path],
    local_timelines: dict[str, Any],
    tmp_path: Path,
) -> None:
    # the 12 s video always fails; the first video sent fails once
    summary = run_rigged(make_tools, videos, tmp_path, mode="flaky", workers=1, bad_after_s=10.0)
    assert (tmp_path / "marker").exists()
    assert [r.status for r in summary.results] == ["ok", "ok", "failed"]
    assert summary.results[2].error == "RuntimeError: always bad"
    written = read_timelines(tmp_path / "out")
    assert_timelines_close(written, {k: v for k, v in local_timelines.items() if k != "multi.json"})


def test_cli_engine_ray_and_its_error_lines(
    ray_session: Any,
    make_tools: functools.partial[Any],
    h264_video: SyntheticVideo,
    local_timelines: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import typer

    app = typer.Typer()
    app.command("perceive")(perceive)
    app.command("noop")(lambda: None)
    config = make_tools.args[0]
    args = ["perceive", str(h264_video.path), "--out", str(tmp_path), "--captioner",
            config.captioner, "--caption-max-tokens", "5", "--embedder", config.embedder,
            "--action-model", config.action_model, "--top-k", "2", "--frames-per-segment", "2",
            "--device", "cpu"]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--engine", "ray", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "1 computed, 0 cached, 0 failed" in result.output
    written = read_timelines(tmp_path)
    assert list(written) == ["cut.json"]
    (local,) = [t for t in local_timelines.values() if t["video"]["path"] == str(h264_video.path)]
    assert_timelines_close(written["cut.json"], local)

    no_ray = CliRunner().invoke(app, [*args, "--address", "auto"])
    assert isinstance(no_ray.exception, ConfigError)
    assert "--address needs --engine ray" in str(no_ray.exception)
    bad = CliRunner().invoke(app, [*args, "--engine", "spark"])
    assert isinstance(bad.exception, ConfigError) and "'spark'" in str(bad.exception)

    from vidagent.testing.vllm_server import free_port

    for address, message in [
        (f"127.0.0.1:{free_port()}", "cannot connect to Ray"),
        ("headnode", "expected auto, HOST:PORT or ray://HOST:PORT"),
    ]:
        failed = CliRunner().invoke(app, [*args, "--engine", "ray", "--address", address])
        assert isinstance(failed.exception, ConfigError), failed.output
        assert f"--address {address}: {message}" in str(failed.exception)

    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'vidagent\[ray\]'"):
        connect(None)
