"""``vidagent train actions`` on the synthetic world with the tiny random-weight CLIP: the head
learns the world's actions, ``perceive --action-head`` then labels them, and bad input is one
line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vidagent.cli.main import app, main
from vidagent.cli.train import app as train_app
from vidagent.core.errors import ConfigError
from vidagent.core.records import Segment, Timeline
from vidagent.store.perception import PerceptionStore
from vidagent.testing.tiny_models import build_tiny
from vidagent.testing.world import World, WorldParams, build_world
from vidagent.tools.action_head import load_action_head, save_action_head
from vidagent.tools.actions import ActionParams, ActionRecognizer
from vidagent.tools.taxonomy import Taxonomy
from vidagent.tools.visual_embedder import EmbedderParams, SegmentEmbedder
from vidagent.train import (
    ActionData,
    ActionSpan,
    HeadOptions,
    TrainActionsConfig,
    fit_head,
    recognition_metrics,
    segment_labels,
    train_actions,
)
from vidagent.train.metrics import majority_metrics, top_k_hits

WORLD = WorldParams(seed=1, train_clips=6, val_clips=3, actions_per_clip=12)

if not any(group.name == "train" for group in app.registered_groups):
    app.add_typer(train_app, name="train")  # until vidagent.cli.main mounts it itself


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.getbasetemp() / "worlds", WORLD)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny("clip", tmp_path_factory.getbasetemp() / "tiny-models"))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One VIDAGENT_HOME (so one perception store) for the module: perceive the world once."""
    return tmp_path_factory.mktemp("train-home")


@pytest.fixture(autouse=True)
def _shared_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDAGENT_HOME", str(home))


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    return int(exit_.value.code or 0)


def train_args(
    clip: str,
    out: Path,
    labels: Path,
    val: Path,
    videos: Path,
    taxonomy: Path | None,
) -> list[str]:
    args = ["train", "actions", "--labels", str(labels), "--val", str(val)]
    args += ["--videos", str(videos), "--embedder", clip, "--device", "cpu", "--out", str(out)]
    return args + (["--taxonomy", str(taxonomy)] if taxonomy else [])


def lta_args(world: World, clip: str, out: Path) -> list[str]:
    return train_args(
        clip, out, world.lta_file("train"), world.lta_file("val"), world.videos_dir,
        world.taxonomy_file,
    )  # fmt: skip


def test_the_trained_head_learns_the_world_and_perceive_uses_it(
    world: World, clip: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = tmp_path / "heads" / "world.safetensors"
    assert cli(*lta_args(world, clip, head), "--epochs", "150") == 0
    printed = capsys.readouterr().out
    assert "action recognition on val" in printed and "trained head" in printed
    report = json.loads((tmp_path / "heads" / "world.metrics.json").read_text())
    val, chance = report["val_metrics"], report["chance"]
    # Measured on this world: 1.0 verb, noun and action top-1 (chance 0.08-0.17).
    assert val["action_top1"] >= 0.9 and val["verb_top1"] >= 0.9 and val["noun_top1"] >= 0.9
    assert val["action_top1"] >= 5 * chance["action_top1"]
    assert val["n"] == report["val"]["samples"] > 30
    assert report["train"]["videos"] == 6 and report["val"]["videos"] == 3
    assert len(report["history"]) == report["epochs_run"] <= 150
    assert sorted(p.name for p in head.parent.iterdir()) == [
        "world.metrics.json",
        "world.safetensors",
    ]  # nothing else (no temp file) left
    taxonomy, _ = load_action_head(head)
    assert (taxonomy.verbs, taxonomy.nouns) == (world.taxonomy.verbs, world.taxonomy.nouns)

    # perceive --action-head labels a val video's segments with the trained classes.
    clip_truth = world.clips_of("val")[0]
    timelines = tmp_path / "timelines"
    code = cli(
        "perceive", str(world.video(clip_truth)), "--no-captions", "--action-model", clip,
        "--embedder", clip, "--action-head", str(head), "--device", "cpu", "--out", str(timelines),
    )  # fmt: skip
    assert code == 0
    timeline = Timeline.model_validate_json((timelines / f"{clip_truth.clip_uid}.json").read_text())
    right = 0
    for seg in timeline.segments:
        truth = next(a for a in clip_truth.actions if a.start <= seg.start < a.end)
        top = seg.actions[0]
        right += (top.verb, top.noun) == (truth.verb.partition("_(")[0], truth.noun)
    assert right >= 0.9 * len(timeline.segments)


def test_plain_labels_an_mlp_head_and_the_balanced_loss(
    world: World, clip: str, tmp_path: Path
) -> None:
    """CSV train / JSONL val without a taxonomy file (the classes are the labels' names), an MLP
    head written in format version 2, read back by the recognizer with the metrics' numbers."""
    store = PerceptionStore(tmp_path / "store")
    embedder = SegmentEmbedder(EmbedderParams(model=clip, device="cpu"))
    out = tmp_path / "mlp.safetensors"
    config = TrainActionsConfig(
        labels=world.labels_file("train"), val_labels=world.labels_file("val", "jsonl"),
        videos_dir=world.videos_dir, out=out,
        head=HeadOptions(hidden=32, balanced=True, epochs=80),
    )  # fmt: skip
    epochs: list[int] = []
    events: list[str] = []
    report = train_actions(
        config, embedder=embedder, store=store,
        progress=lambda e: events.append(e.kind), on_epoch=lambda r: epochs.append(r.epoch),
    )  # fmt: skip
    assert epochs == list(range(1, report.epochs_run + 1)) and "segments" in events
    assert report.val_metrics.action_top1 >= 0.9
    assert report.taxonomy == "labels" and report.verbs == 6 and report.nouns == 5
    taxonomy, head = load_action_head(out)
    assert taxonomy.verbs == ("cut", "open", "put", "stir", "take", "wash")  # sorted names
    assert head.hidden_w is not None and head.hidden_w.shape == (32, 16)
    from safetensors import safe_open

    with safe_open(str(out), framework="numpy") as fh:
        assert (fh.metadata() or {})["format_version"] == "2"
    # The recognizer reads it: its probabilities give the reported val accuracy.
    recognizer = ActionRecognizer(ActionParams(model=clip, head=out, device="cpu"))
    again = train_actions(
        config.model_copy(update={"cached_only": True, "out": tmp_path / "again.safetensors"}),
        embedder=embedder, store=store,
    )  # fmt: skip
    assert again.val_metrics == report.val_metrics  # seeded: the same fit, from the store only
    from vidagent.train.actions import action_data
    from vidagent.train.features import resolve_videos, segment_features
    from vidagent.train.labels import load_labels

    spans = load_labels(world.labels_file("val", "jsonl"), taxonomy)
    feats = segment_features(resolve_videos([s.video for s in spans], world.videos_dir), embedder,
                             store, cached_only=True)  # fmt: skip
    data = action_data(spans, feats, 0.5)
    verb_p, noun_p = recognizer.probabilities(data.embeddings)
    assert recognition_metrics(verb_p, noun_p, data.verbs, data.nouns) == report.val_metrics


def test_bad_input_is_one_line(
    world: World,
    clip: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "head.safetensors"
    train, val = world.lta_file("train"), world.lta_file("val")
    videos, taxonomy = world.videos_dir, world.taxonomy_file

    def error(*args: str) -> str:
        assert cli(*args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        return err

    uid = world.clips_of("train")[0].clip_uid
    bad = tmp_path / "bad.csv"
    bad.write_text(
        f"video,start,end,verb,noun\n{uid}.mp4,0,2,fly,knife\n{uid}.mp4,2,4,take,spaceship\n"
    )
    msg = error(*train_args(clip, out, bad, world.labels_file("val"), videos, taxonomy))
    assert "labels outside the taxonomy" in msg and "verb 'fly'" in msg and "1 more" in msg

    empty_dir = tmp_path / "no-videos"
    empty_dir.mkdir()
    msg = error(*train_args(clip, out, train, val, empty_dir, taxonomy))
    assert "9 labelled video(s) not found" in msg and "world-train-000" in msg

    empty = tmp_path / "val.jsonl"
    empty.write_text("\n")
    msg = error(*train_args(clip, out, train, empty, videos, taxonomy))
    assert "val split" in msg and "no labels" in msg

    msg = error(*train_args(clip, out, train, val, videos, None))
    assert "pass the taxonomy file" in msg

    late = tmp_path / "late.csv"  # after the end of the video: covers no segment
    late.write_text(f"video,start,end,verb,noun\n{uid},500,502,stir,pan\n")
    msg = error(*train_args(clip, out, train, late, videos, taxonomy))
    assert "val split" in msg and "none of its 1 labels covers a segment" in msg

    monkeypatch.setenv("VIDAGENT_HOME", str(tmp_path / "fresh-home"))  # an empty store
    msg = error(*lta_args(world, clip, out), "--cached-only")
    assert "not in the perception store" in msg and "run vidagent perceive" in msg
    assert not out.exists() and not list(tmp_path.glob(".*tmp*"))  # nothing half-written


def test_each_action_labels_the_segments_it_covers() -> None:
    segments = [
        Segment(index=i, start=2.0 * i, end=2.0 * i + 2, start_frame=20 * i, end_frame=20 * i + 20)
        for i in range(4)
    ]

    def span(start: float, end: float, verb: int = 0) -> ActionSpan:
        return ActionSpan(video="v", start=start, end=end, verb=verb, noun=0, where="t")

    def covered(*spans: ActionSpan) -> list[tuple[int, int]]:
        return [(i, s.verb) for i, s in segment_labels(spans, segments)]

    assert covered(span(0, 4)) == [(0, 0), (1, 0)]  # a 4 s action: both its segments
    assert covered(span(1.0, 4.5)) == [(0, 0), (1, 0)]  # half of segment 0 counts, 0.5 s does not
    assert covered(span(2.2, 2.6)) == [(1, 0)]  # short: the segment it overlaps
    assert covered(span(3.4, 4.4)) == [(1, 0)]  # straddling: the larger overlap
    assert covered(span(0, 2, verb=1), span(0, 2, verb=2)) == [(0, 1), (0, 2)]  # one sample each
    assert covered(span(0, 2), span(0, 2)) == [(0, 0)]  # the same label once
    assert covered(span(9, 10)) == []  # after the video


def test_recognition_metrics_top_k() -> None:
    scores = np.array([[0.1, 0.5, 0.4], [0.3, 0.3, 0.4], [0.9, 0.05, 0.05]])
    labels = np.array([2, 0, 1])
    assert top_k_hits(scores, labels, 1).tolist() == [False, False, False]
    assert top_k_hits(scores, labels, 2).tolist() == [
        True,
        True,
        True,
    ]  # a tie does not push it out
    assert top_k_hits(scores, labels, 5).tolist() == [True, True, True]  # k capped at classes
    truth = np.array([1, 0, 0])  # verbs: rows 0, 2 right; nouns (reversed scores): rows 0, 1
    m = recognition_metrics(scores, scores[:, ::-1], truth, truth)
    assert (m.verb_top1, m.noun_top1, m.action_top1, m.n) == (0.6667, 0.6667, 0.3333, 3)
    assert (m.verb_top5, m.noun_top5) == (1.0, 1.0)


def _gaussians(n_major: int, n_minor: int, seed: int) -> ActionData:
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(0, 1, (n_major, 2)), rng.normal(0.8, 1, (n_minor, 2))])
    y = np.array([0] * n_major + [1] * n_minor)
    return ActionData(x.astype(np.float32), y, y)


def test_class_balance_and_early_stopping() -> None:
    train, val = _gaussians(950, 50, 0), _gaussians(950, 50, 1)

    def minority_recall(balanced: bool) -> float:
        fit = fit_head(train, val, 2, 2, HeadOptions(balanced=balanced, epochs=60, lr=0.05))
        w = fit.weights
        pred = (val.embeddings @ w.verb_w.T + w.verb_b).argmax(axis=1)
        return float((pred[val.verbs == 1] == 1).mean())

    assert minority_recall(False) < 0.1 < 0.6 < minority_recall(True)  # measured 0.02, 0.8

    # Labels unrelated to the inputs: the val loss stops improving, training stops `patience`
    # epochs after its best epoch, and the weights are those of the best epoch.
    rng = np.random.default_rng(2)
    noise = ActionData(rng.normal(size=(200, 8)).astype(np.float32), rng.integers(0, 3, 200),
                       rng.integers(0, 3, 200))  # fmt: skip
    held = ActionData(rng.normal(size=(100, 8)).astype(np.float32), rng.integers(0, 3, 100),
                      rng.integers(0, 3, 100))  # fmt: skip
    fit = fit_head(noise, held, 3, 3, HeadOptions(epochs=300, patience=5, lr=0.05))
    assert len(fit.history) == fit.best_epoch + 5 < 300
    best = fit.history[fit.best_epoch - 1]
    assert best.val_loss == min(r.val_loss for r in fit.history)
    w = fit.weights
    import torch

    ce = torch.nn.functional.cross_entropy
    logits = [torch.as_tensor(held.embeddings @ a.T + b) for a, b in
              ((w.verb_w, w.verb_b), (w.noun_w, w.noun_b))]  # fmt: skip
    loss = ce(logits[0], torch.as_tensor(held.verbs)) + ce(logits[1], torch.as_tensor(held.nouns))
    assert abs(float(loss) - best.val_loss) < 1e-3  # the folded weights are the best epoch's


def test_the_chance_row_predicts_the_most_common_action() -> None:
    # Most common verb 0 and noun 0, but (0, 0) never happens: the common pair is (1, 0).
    train_v = np.array([0, 0, 0, 0, 1, 1, 1, 2])
    train_n = np.array([1, 2, 4, 5, 0, 0, 0, 3])
    val_v, val_n = np.array([1, 0]), np.array([0, 1])
    m = majority_metrics(train_v, train_n, val_v, val_n, 3, 6)
    assert (m.verb_top1, m.noun_top1, m.action_top1) == (0.5, 0.5, 0.5)


def test_an_mlp_head_file_is_checked_and_read_as_written(tmp_path: Path) -> None:
    tax = Taxonomy(("a", "b"), ("x", "y", "z"), "t")
    rng = np.random.default_rng(0)
    hw, hb = rng.normal(size=(4, 8)), rng.normal(size=4)
    vw, vb, nw, nb = rng.normal(size=(2, 4)), rng.normal(size=2), rng.normal(size=(3, 4)), [0.0] * 3
    path = save_action_head(
        tmp_path / "mlp.safetensors", verb_weight=vw, verb_bias=vb, noun_weight=nw,
        noun_bias=np.asarray(nb), taxonomy=tax, embedding_model="m", hidden_weight=hw,
        hidden_bias=hb,
    )  # fmt: skip
    _, head = load_action_head(path)
    e = rng.normal(size=(5, 8))
    verb_logits, noun_logits = head.logits(e.astype(np.float32))
    hidden = np.maximum(e @ hw.T + hb, 0)
    np.testing.assert_allclose(verb_logits, hidden @ vw.T + vb, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(noun_logits, hidden @ nw.T, rtol=1e-4, atol=1e-4)
    assert head.input_dim == 8
    with pytest.raises(ConfigError, match="hidden layer of 4 units, output weights read 3"):
        save_action_head(
            tmp_path / "bad.safetensors", verb_weight=np.zeros((2, 3)), verb_bias=np.zeros(2),
            noun_weight=np.zeros((3, 3)), noun_bias=np.zeros(3), taxonomy=tax,
            embedding_model="m", hidden_weight=hw, hidden_bias=hb,
        )  # fmt: skip
    with pytest.raises(ConfigError, match="needs both"):
        save_action_head(
            tmp_path / "bad.safetensors", verb_weight=vw, verb_bias=vb, noun_weight=nw,
            noun_bias=np.zeros(3), taxonomy=tax, embedding_model="m", hidden_weight=hw,
        )  # fmt: skip


def test_the_cli_draws_a_bar_of_epochs() -> None:
    import io

    from rich.console import Console

    from vidagent.cli.train import epochs_bar
    from vidagent.train import EpochReport

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with epochs_bar(console) as on_epoch:
        for epoch in (1, 2):
            on_epoch(
                EpochReport(
                    epoch=epoch, epochs=5, train_loss=1.0, val_loss=0.5 / epoch,
                    val_verb_top1=0.9, val_noun_top1=0.8, val_action_top1=0.7, best_epoch=epoch,
                )
            )  # fmt: skip
    text = out.getvalue()
    assert "epoch 2: val loss 0.250, top-1 verb 0.90 noun 0.80 action 0.70" in text
    assert "2/5" in text
