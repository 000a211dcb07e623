"""``vidagent eval run`` with ``--bank`` (few-shot examples, never from the sample's own video)
and with ``--videos`` (on-the-fly perception with tiny local models, real decoding), both against
the real vLLM test server; what the LLM was sent is read from the wire."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from llm_support import tiny_model_dir, vllm_url
from test_tasks_support import Perceived, perceived
from test_tasks_vllm import Recorder, user_text
from typer.testing import CliRunner

from vidagent.cli import eval as eval_cli
from vidagent.cli.eval import app
from vidagent.llm import LLMClient, RetryPolicy
from vidagent.llm.openai_backend import OpenAIBackend
from vidagent.testing.synth import SyntheticVideo

__all__ = ["perceived", "tiny_model_dir", "vllm_url"]

CAPTIONS = [
    {"start": 0, "end": 3, "caption": "a person opens a door"},
    {"start": 3, "end": 8, "caption": "a person takes a cup"},
]


@pytest.fixture
def recorder(vllm_url: str, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """The CLI's LLM client, with a recording transport in front of the real server."""
    rec = Recorder()

    def llm(*_args: Any) -> LLMClient:
        backend = OpenAIBackend([vllm_url], transport=rec, retry=RetryPolicy(max_retries=0))
        return LLMClient(backend)

    monkeypatch.setattr(eval_cli, "_llm", llm)
    return rec


def test_bank_examples_reach_the_prompt_but_never_from_the_own_video(
    perceived: Perceived, recorder: Recorder, vllm_url: str, tmp_path: Path
) -> None:
    from vidagent.retrieval import Example, ExampleBank

    examples = [
        Example(task="localize", input="door opens OTHERMARK1", target="<seg_0>", video_id="X1"),
        Example(task="localize", input="cup taken OTHERMARK2", target="<seg_1>", video_id="X2"),
        Example(task="localize", input="door opens OWNMARK", target="<seg_0>", video_id="VID1"),
    ]
    bank = ExampleBank.build(examples, perceived.text_embedder).save(tmp_path / "bank")
    ann = tmp_path / "charades_sta_test.txt"
    ann.write_text("VID1 0.0 3.0##a person opens a door\n")
    cap = tmp_path / "captions.json"
    cap.write_text(json.dumps({"VID1": CAPTIONS}))
    out = tmp_path / "bank-run"
    result = CliRunner().invoke(app, [
        "run", "charades_sta", "--annotations", str(ann), "--captions", str(cap), "--out",
        str(out), "--llm-url", vllm_url, "--bank", str(bank), "--examples", "2",
        "--max-timeline-chars", "160", "--no-cache", "--no-progress",
    ])  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    assert recorder.bodies, "nothing was sent"
    sent = "\n".join(user_text(b) for b in recorder.bodies)
    assert "OTHERMARK1" in sent and "OTHERMARK2" in sent
    assert "OWNMARK" not in sent  # the sample's own video is excluded
    config = json.loads((out / "config.json").read_text())
    assert config["bank"] == str(bank.resolve()) and config["k"] == 2
    assert json.loads((out / "summary.json").read_text())["succeeded"] == 1


def test_videos_are_perceived_with_the_given_local_models(
    perceived: Perceived,
    h264_video: SyntheticVideo,
    vllm_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIDAGENT_HOME", str(tmp_path / "home"))
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "clipV.mp4").symlink_to(h264_video.path)
    ann = tmp_path / "charades_sta_test.txt"
    ann.write_text("clipV 0.5 3.0##a person opens a door\nclipW 1.0 2.0##a dog runs\n")
    out = tmp_path / "video-run"
    result = CliRunner().invoke(app, [
        "run", "charades_sta", "--annotations", str(ann), "--videos", str(videos), "--out",
        str(out), "--llm-url", vllm_url, "--captioner", perceived.models["blip"],
        "--embedder", perceived.models["clip"], "--device", "cpu", "--seconds", "2",
        "--max-timeline-chars", "400", "--no-cache", "--no-progress",
    ])  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["succeeded"] == 1 and summary["failed"] == 1
    assert "no video file for 'clipW'" in summary["failures"][0]["error"]
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    (row,) = [r for r in rows if r["vid"] == "clipV"]
    ((st, ed, _),) = row["pred_relevant_windows"]
    assert 0.0 <= st < ed <= 8.0 + 1e-6
    assert list((tmp_path / "home").rglob("*")), "perception wrote nothing to the store"
    config = json.loads((out / "config.json").read_text())
    assert config["captioner"] == perceived.models["blip"] and config["seconds"] == 2.0
