"""`--tiny`: the task commands run offline on the demo's tiny models, with `--taxonomy demo`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vidagent.testing.synth import SyntheticVideo
from vidagent.tools.taxonomy import Taxonomy


def test_the_demo_taxonomy_needs_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no file named "demo" here
    assert Taxonomy.load("demo") == Taxonomy.basic()


def test_anticipate_runs_offline_on_the_tiny_models(
    h264_video: SyntheticVideo, tmp_path: Path
) -> None:
    env = {**os.environ, "VIDAGENT_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "vidagent.cli", "anticipate", str(h264_video.path), "--tiny",
         "--z", "3", "--candidates", "2", "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    basic = Taxonomy.basic()
    assert len(out["candidates"]) == 2
    for candidate in out["candidates"]:
        assert len(candidate["actions"]) == 3
        assert all(
            a["verb"] in basic.verbs and a["noun"] in basic.nouns for a in candidate["actions"]
        )
    # the models are the demo's, built under the home (nothing downloaded)
    assert (tmp_path / "home" / "models" / "demo" / "tiny-llama" / "config.json").exists()
