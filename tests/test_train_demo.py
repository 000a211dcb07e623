"""``vidagent demo --train``: on the synthetic world, training learns what the grammar allows.

The end-to-end proof of issue 15, in CI on CPU: build the world -> perceive -> train the action
head -> perceive with it -> fine-tune the tiny Llama on the train windows' LTA prompts -> ``eval
run ego4d_lta`` on the val windows, untrained and trained, plus the repeat-observed and oracle
rows, all scored by the official ED@20. Measured on this machine (16 train / 2 val clips, 150
steps, 10 val windows): ED@20 action untrained 0.875, repeat observed 0.415, trained 0.25,
grammar oracle 0.30 (the trained model's five sampled candidates can beat the oracle's five
identical ones); head val action top-1 100% (chance 12%).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidagent.api.train_demo import (
    ORACLE,
    PROOF_FILE,
    REPEAT,
    TRAINED,
    UNTRAINED,
    repeat_observed_outputs,
)
from vidagent.cli.main import main
from vidagent.core.records import ActionLabel, Segment, Segmentation, Timeline, VideoInfo
from vidagent.evals.common import Sample, Taxonomy


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    return int(exit_.value.code or 0)


def timeline(labels: list[tuple[str, str]]) -> Timeline:
    segments = [
        Segment(
            index=i, start=2.0 * i, end=2.0 * i + 2, start_frame=20 * i, end_frame=20 * i + 20,
            actions=[ActionLabel(verb=v, noun=n, score=1.0)],
        )
        for i, (v, n) in enumerate(labels)
    ]  # fmt: skip
    info = VideoInfo(
        path="v", fps=10, num_frames=20 * len(labels), duration=2.0 * len(labels), width=64,
        height=64, codec="h264", backend="pyav",
    )  # fmt: skip
    return Timeline(video=info, segmentation=Segmentation(method="fixed"), segments=segments)


def test_repeat_observed_tiles_the_last_actions_counting_a_long_one_once() -> None:
    tax = Taxonomy(verbs=["take_(pick,_grab,_get)", "cut_(chop,_slice)"], nouns=["knife", "onion"])
    labels = [("cut", "onion"), ("take", "knife"), ("take", "knife"), ("cut", "onion")]
    labels += [("take", "knife")]  # seen after the window ends: not observed
    tl = timeline(labels)
    window = Sample(key="v_3", video_id="v", kind="lta", observed_end=8.0)
    out = repeat_observed_outputs([window], {"v": tl}.__getitem__, tax, n_observed=2, z=5, k=3)
    # observed: cut onion, take knife (two segments, one action), cut onion -> last 2 tiled
    assert out["v_3"]["verb"] == [[0, 1, 0, 1, 0]] * 3
    assert out["v_3"]["noun"] == [[0, 1, 0, 1, 0]] * 3
    bare = timeline([("take", "knife")]).model_copy(update={"segments": []})
    assert repeat_observed_outputs([window], {"v": bare}.__getitem__, tax, n_observed=2, z=5,
                                   k=1) == {}  # fmt: skip


@pytest.mark.slow
def test_demo_train_learns_the_world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VIDAGENT_HOME", str(tmp_path / "home"))
    out = tmp_path / "demo-train"
    assert cli("demo", "--train", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    for name in (UNTRAINED, REPEAT, TRAINED, ORACLE, "ED@20"):
        assert name in printed, printed

    proof = json.loads((out / PROOF_FILE).read_text())
    rows = {r["name"]: r for r in proof["rows"]}
    assert [r["name"] for r in proof["rows"]] == [UNTRAINED, REPEAT, TRAINED, ORACLE]
    head = proof["action_head"]
    assert head["val"]["action_top1"] >= 0.9 and head["chance"]["action_top1"] <= 0.2
    untrained, repeat, trained, oracle = (rows[n]["ed_action"] for n in rows)
    assert untrained >= 0.7  # a random model is far off
    assert trained <= untrained - 0.3 and trained < repeat  # learned more than repeating
    assert trained <= oracle + 0.1  # close to the best the grammar allows
    assert rows[UNTRAINED]["valid_rate"] == rows[TRAINED]["valid_rate"] == 1.0  # guided
    assert all(r["windows"] == 10 for r in proof["rows"])
    assert proof["llm"]["metrics"]["eval_loss"] < 0.1 * proof["llm"]["metrics"]["eval_loss_before"]

    # The model rows are real eval runs (results, report, submission); every row's outputs.json
    # scores to its number with `vidagent eval score`, the official ED@Z path.
    trained_run = Path(rows[TRAINED]["run_dir"])
    assert (trained_run / "report.md").is_file()
    assert len((trained_run / "results.jsonl").read_text().splitlines()) == 10
    annotations = next((out / "worlds").glob("world-*")) / "annotations" / "fho_lta_val.json"
    for name in (REPEAT, ORACLE, TRAINED):
        predictions = Path(rows[name]["run_dir"]) / "outputs.json"
        code = cli("eval", "score", "ego4d_lta", "--annotations", str(annotations),
                   "--predictions", str(predictions))  # fmt: skip
        assert code == 0
        scored = json.loads(capsys.readouterr().out)
        assert scored["ED_action"] == rows[name]["ed_action"]
