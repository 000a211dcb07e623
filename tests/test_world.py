"""The synthetic world: known truth in real H.264 files and in the official annotation formats."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from vidagent.evals.benchmarks.charades_sta import BENCHMARK as CHARADES
from vidagent.evals.benchmarks.ego4d_lta import BENCHMARK as LTA
from vidagent.evals.benchmarks.ego4d_lta import lta_windows
from vidagent.testing.world import (
    ACTIONS,
    NOUNS,
    VERBS,
    Grammar,
    World,
    WorldAction,
    WorldParams,
    build_world,
)
from vidagent.tools.segmenter import build_timeline
from vidagent.tools.taxonomy import Taxonomy
from vidagent.tools.video import open_video

PARAMS = WorldParams(seed=3, train_clips=2, val_clips=1, actions_per_clip=30)
NOUN_COLOURS = {
    "knife": (240, 220, 40),
    "onion": (160, 40, 200),
    "pan": (230, 30, 40),
    "cup": (40, 90, 250),
    "fridge": (40, 200, 90),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("worlds"), PARAMS)


def test_the_world_is_cached_by_its_parameters(world: World) -> None:
    root = world.root.parent
    manifest = world.root / "world.json"
    stamp = manifest.stat().st_mtime_ns
    again = build_world(root, PARAMS)
    assert again == world and manifest.stat().st_mtime_ns == stamp  # reused, not rewritten
    assert [p.name for p in root.iterdir()] == [world.root.name]  # no temp folder left behind
    assert WorldParams(seed=4).digest != WorldParams(seed=3).digest
    with pytest.raises(ValueError, match="extra"):
        WorldParams(sed=3)  # type: ignore[call-arg]


def test_videos_tile_into_segments_that_each_show_one_action(world: World) -> None:
    """Every 2 s segment of the default segmenter lies inside exactly one action, and a frame in
    the middle of it shows that action's object colour and no other object's."""
    clip = world.clips_of("val")[0]
    timeline = build_timeline(world.video(clip))
    assert timeline.video.num_frames == clip.num_frames and timeline.video.fps == PARAMS.fps
    spans = [(a.start, a.end, a.noun) for a in clip.actions]
    with open_video(world.video(clip)) as source:
        for seg in timeline.segments:
            inside = [n for s, e, n in spans if s <= seg.start + 1e-6 and seg.end <= e + 1e-6]
            assert len(inside) == 1, seg
            frame = source.get_frames([(seg.start_frame + seg.end_frame) // 2]).frames[0]
            pixels = frame.reshape(-1, 3).astype(int)
            for noun, colour in NOUN_COLOURS.items():
                near = (np.abs(pixels - colour).max(axis=1) < 45).sum()
                if noun == inside[0]:
                    assert near >= 20, (seg.index, noun, near)
                else:
                    assert near < 8, (seg.index, noun, near)


def test_ego4d_lta_files_follow_the_official_schema(world: World) -> None:
    taxonomy = Taxonomy.load(world.taxonomy_file)
    assert (taxonomy.verbs, taxonomy.nouns) == (VERBS, NOUNS)
    data = json.loads(world.lta_file("train").read_text())
    entries = data["clips"]
    assert len(entries) == 2 * PARAMS.actions_per_clip
    first = entries[0]
    assert {
        "clip_uid", "video_uid", "clip_id", "action_idx", "verb", "noun", "verb_label",
        "noun_label", "action_clip_start_sec", "action_clip_end_sec", "action_clip_start_frame",
        "action_clip_end_frame", "clip_parent_start_sec", "clip_parent_end_sec",
    } <= set(first)  # fmt: skip
    for entry in entries:
        assert VERBS[entry["verb_label"]] == entry["verb"]
        assert NOUNS[entry["noun_label"]] == entry["noun"]
        assert (entry["verb_label"], entry["noun_label"]) in ACTIONS
        fps_frames = entry["action_clip_end_frame"] - entry["action_clip_start_frame"]
        seconds = entry["action_clip_end_sec"] - entry["action_clip_start_sec"]
        assert fps_frames == round(seconds * PARAMS.fps)
    assert (world.videos_dir / f"{first['clip_uid']}.mp4").is_file()
    # The benchmark reads them: 30 actions per clip give 30 - (8 + 20) + 1 = 3 windows a clip.
    samples = LTA.load_samples(world.lta_file("val"))
    assert len(samples) == 3 and samples[0].video_id == world.clips_of("val")[0].clip_uid


def test_the_oracle_knows_the_grammar(world: World) -> None:
    grammar = world.grammar
    np.testing.assert_allclose(grammar.transitions.sum(axis=1), 1.0)
    assert [grammar.most_likely_next(a) for a in range(len(ACTIONS))] == [1, 2, 3, 4, 5, 6, 7, 0]
    assert grammar.most_likely_future(6, 3) == [7, 0, 1]

    # The sequences follow it: most transitions are the scripted ones.
    def index(a: WorldAction) -> int:
        return ACTIONS.index((VERBS.index(a.verb), NOUNS.index(a.noun)))

    assert all(index(a) == a.action for clip in world.clips for a in clip.actions)
    pairs = [(a.action, b.action) for clip in world.clips for a, b in pairwise(clip.actions)]
    scripted = np.mean([b == grammar.most_likely_next(a) for a, b in pairs])
    assert 0.7 < scripted <= 1.0
    # Scored by the benchmark, the oracle beats always repeating the last observed action, and the
    # truth itself scores 0.
    samples = LTA.load_samples(world.lta_file("val"))
    oracle = LTA.score(samples, world.oracle_outputs("val"))
    windows = {w.key: w for w in lta_windows(world.lta_file("val"))}
    repeat = {
        key: {"verb": [[w.observed[-1].verb_label] * 20] * 5,
              "noun": [[w.observed[-1].noun_label] * 20] * 5}
        for key, w in windows.items()
    }  # fmt: skip
    truth = {s.key: {"verb": [s.target["verb"]], "noun": [s.target["noun"]]} for s in samples}
    assert oracle["ED_action"] < LTA.score(samples, repeat)["ED_action"]
    assert LTA.score(samples, truth)["ED_action"] == 0.0


def test_grammar_strength_is_the_scripted_probability() -> None:
    grammar = Grammar(0.6)
    seq = grammar.sample(np.random.default_rng(0), 4000)
    hits = np.mean([b == (a + 1) % len(ACTIONS) for a, b in pairwise(seq)])
    assert abs(hits - 0.6) < 0.03


def test_charades_and_plain_label_files(world: World) -> None:
    clip = world.clips_of("val")[0]
    txt = CHARADES.load_samples(world.charades_file("val"))
    assert len(txt) == len(clip.actions)
    assert txt[0].video_id == clip.clip_uid
    assert txt[0].windows == [[clip.actions[0].start, clip.actions[0].end]]
    assert txt[0].question == "the person " + {
        "take": "takes", "put": "puts", "cut": "cuts", "stir": "stirs", "wash": "washes",
        "open": "opens",
    }[clip.actions[0].verb.partition("_")[0]] + f" the {clip.actions[0].noun}."  # fmt: skip
    csv_samples = CHARADES.load_samples(world.charades_file("val", "csv"))
    by_query = {s.key: s for s in csv_samples}
    kinds = {a.action for a in clip.actions}
    assert len(by_query) == len(kinds)  # one query per (clip, action), all occurrences as windows
    assert sum(len(s.windows) for s in csv_samples) == len(clip.actions)
    rows = world.labels_file("val").read_text().splitlines()
    assert rows[0] == "video,start,end,verb,noun" and len(rows) == len(clip.actions) + 1
    lines = world.labels_file("val", "jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first == {
        "video": f"{clip.clip_uid}.mp4", "start": clip.actions[0].start,
        "end": clip.actions[0].end, "verb": clip.actions[0].verb.partition("_(")[0],
        "noun": clip.actions[0].noun,
    }  # fmt: skip


def test_building_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that fails half way leaves no world folder that a later build would reuse."""
    import vidagent.testing.world as world_module

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(world_module, "_write_annotations", boom)
    small = WorldParams(train_clips=1, val_clips=1, actions_per_clip=2, size=32)
    with pytest.raises(RuntimeError, match="disk full"):
        build_world(tmp_path, small)
    assert not (tmp_path / f"world-{small.digest}").exists()
