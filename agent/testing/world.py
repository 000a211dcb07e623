"""A small synthetic world with known truth, for proving that training learns something.

Each clip is a sequence of scripted actions, one per 2 s segment (the default segment length of
:mod:`vidagent.tools.segmenter`), some lasting two segments. An action is a (verb, noun) pair drawn
so both are visible (:mod:`vidagent.testing.world_draw`): the **noun** is an object's colour and
shape (a yellow bar is the knife, a purple disk the onion...), the **verb** a prop in its own
colour and place (the shelf one takes from, the table one puts on, the board, the burner, the
sink, the door frame) and the object's motion (``take`` rises on the left, ``put`` sinks on the
right, ``cut`` shakes sideways, ``stir`` circles, ``wash`` jitters under water, ``open`` grows). A
segment embedding is the mean of a few frames' embeddings, so the time order inside a segment is
lost; the props and the part of the frame each motion covers survive the mean. With the tiny
random-weight CLIP (16-d), a linear head on the default world reaches 98% val action top-1
(motion alone, without the props, gave 56-89% verb top-1 depending on the noise: random
features keep colour far better than position). Per-instance jitter and pixel noise keep each
class a cloud, not a point.

The sequence of actions follows :class:`Grammar`, a Markov chain over :data:`ACTIONS` in a recipe
order (take knife -> cut onion -> put knife -> take pan -> stir pan -> wash cup -> put cup -> open
fridge -> take knife ...): the scripted next action with probability ``strength``, any other one
with the rest. :meth:`Grammar.most_likely_next` is the oracle a forecaster can at best learn.

:func:`build_world` writes, under ``root/world-<hash of the parameters>/`` (reused when it exists;
written to a temp folder and renamed, so a half-written world is never found):

- ``videos/<clip_uid>.mp4``: H.264 written with PyAV (``size`` px square, ``fps`` frames/s);
- ``annotations/fho_lta_{train,val}.json``: Ego4D LTA's schema (``{"clips": [...]}``, one entry per
  action with clip_uid, video_uid, clip_id, action_idx, verb, noun, verb_label, noun_label,
  action_clip_{start,end}_{sec,frame}, clip_parent_{start,end}_{sec,frame},
  interval_{start,end}_{sec,frame}); clip times are the video's own (a clip is a whole file, its
  parent offset 0), frames at the world's ``fps``;
- ``annotations/fho_lta_taxonomy.json``: ``{"verbs": [...], "nouns": [...]}`` (Ego4D's format; the
  labels are indices into it);
- ``annotations/charades_sta_{train,val}.txt``: ``vid start end##sentence``, one line per action
  occurrence (an action that recurs in a clip gives the same sentence with each span), and
  ``charades_sta_{train,val}.csv``: the re-annotated CSV layout (HITId, video_id, description,
  start, end) with one query per (clip, action) and one row per occurrence, so a localizer that
  finds any occurrence is right;
- ``annotations/actions_{train,val}.{csv,jsonl}``: plain ``video,start,end,verb,noun`` rows;
- ``world.json``: the parameters and every clip's actions (:class:`World`).

Generation is numpy drawing plus ultrafast H.264 on small frames: the default world (12 clips of
32 actions at 64 px, 10 fps) builds in a few seconds on one core.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vidagent.testing.world_draw import plain_label, write_clip
from vidagent.tools.taxonomy import Taxonomy

WORLD_VERSION = "1"
"""Part of every world's digest: bump it when the drawing or the files change."""
Split = Literal["train", "val"]
SPLITS: tuple[Split, ...] = ("train", "val")

VERBS: tuple[str, ...] = (
    "take_(pick,_grab,_get)",
    "put_(place,_leave,_drop)",
    "cut_(chop,_slice)",
    "stir",
    "wash_(clean,_rinse)",
    "open",
)
NOUNS: tuple[str, ...] = ("knife", "onion", "pan", "cup", "fridge")
ACTIONS: tuple[tuple[int, int], ...] = (
    (0, 0),  # take knife
    (2, 1),  # cut onion
    (1, 0),  # put knife
    (0, 2),  # take pan
    (3, 2),  # stir pan
    (4, 3),  # wash cup
    (1, 3),  # put cup
    (5, 4),  # open fridge
)
"""(verb index, noun index) of each action, in the grammar's recipe order."""


class WorldParams(BaseModel):
    """Everything that changes the world's files (their hash names the world's folder).

    ``size`` is a multiple of 32: decord (the default reader) fails on some other sizes of
    H.264 frames (16 and 48 px squares: "DECORDArrayCopyFromTo: The size must exactly match").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    train_clips: int = Field(default=8, ge=1)
    val_clips: int = Field(default=4, ge=1)
    actions_per_clip: int = Field(default=32, ge=1, description="Ego4D LTA windows need N+Z=28")
    strength: float = Field(default=0.85, gt=0.0, le=1.0, description="P(scripted next action)")
    long_action_prob: float = Field(default=0.2, ge=0.0, le=1.0, description="P(2 segments)")
    size: int = Field(default=64, ge=32, le=512, multiple_of=32, description="Frame side, px")
    fps: int = Field(default=10, ge=2, le=60)
    segment_seconds: float = Field(default=2.0, gt=0.0)
    noise: float = Field(default=8.0, ge=0.0, description="Pixel noise std (0-255 scale)")
    crf: int = Field(default=23, ge=0, le=51)

    @property
    def digest(self) -> str:
        doc = json.dumps({"v": WORLD_VERSION, **self.model_dump()}, sort_keys=True)
        return hashlib.sha256(doc.encode()).hexdigest()[:12]


class Grammar:
    """The Markov chain the clips follow: row ``a`` of :attr:`transitions` is P(next | a)."""

    def __init__(self, strength: float, n: int = len(ACTIONS)) -> None:
        self.n = n
        rest = (1.0 - strength) / (n - 1)
        self.transitions = np.full((n, n), rest)
        for a in range(n):
            self.transitions[a, (a + 1) % n] = strength
        self.start = np.full(n, 1.0 / n)

    def sample(self, rng: np.random.Generator, length: int) -> list[int]:
        seq = [int(rng.choice(self.n, p=self.start))]
        while len(seq) < length:
            seq.append(int(rng.choice(self.n, p=self.transitions[seq[-1]])))
        return seq

    def most_likely_next(self, action: int) -> int:
        """The oracle's next action: the most likely transition from ``action``."""
        return int(np.argmax(self.transitions[action]))

    def most_likely_future(self, last: int, z: int) -> list[int]:
        """``z`` actions after ``last``, each the most likely transition from the one before."""
        out, a = [], last
        for _ in range(z):
            a = self.most_likely_next(a)
            out.append(a)
        return out


class WorldAction(BaseModel):
    """One action of a clip: its index in :data:`ACTIONS` and its span in seconds."""

    model_config = ConfigDict(extra="forbid")

    action: int
    verb: str
    noun: str
    start: float
    end: float

    @property
    def text(self) -> str:
        return f"{plain_label(self.verb)} {self.noun}"


class WorldClip(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clip_uid: str
    split: Split
    video: str = Field(description="Path relative to the world's folder")
    num_frames: int
    actions: list[WorldAction]


class World(BaseModel):
    """A built world: its folder, parameters and clips, and where each file is."""

    model_config = ConfigDict(extra="forbid")

    root: Path
    params: WorldParams
    clips: list[WorldClip]

    @property
    def videos_dir(self) -> Path:
        return self.root / "videos"

    @property
    def taxonomy_file(self) -> Path:
        return self.root / "annotations" / "fho_lta_taxonomy.json"

    @property
    def taxonomy(self) -> Taxonomy:
        return Taxonomy(VERBS, NOUNS, str(self.taxonomy_file))

    @property
    def grammar(self) -> Grammar:
        return Grammar(self.params.strength)

    def lta_file(self, split: Split) -> Path:
        return self.root / "annotations" / f"fho_lta_{split}.json"

    def charades_file(self, split: Split, kind: Literal["txt", "csv"] = "txt") -> Path:
        return self.root / "annotations" / f"charades_sta_{split}.{kind}"

    def labels_file(self, split: Split, kind: Literal["csv", "jsonl"] = "csv") -> Path:
        return self.root / "annotations" / f"actions_{split}.{kind}"

    def clips_of(self, split: Split) -> list[WorldClip]:
        return [c for c in self.clips if c.split == split]

    def video(self, clip: WorldClip) -> Path:
        return self.root / clip.video

    def oracle_outputs(self, split: Split, *, z: int = 20, k: int = 5, n_observed: int = 8) -> Any:
        """The Ego4D LTA challenge ``outputs.json`` of the grammar's oracle on ``split``'s windows:
        every candidate is :meth:`Grammar.most_likely_future` of the last observed action."""
        from vidagent.evals.benchmarks.ego4d_lta import lta_windows

        grammar = self.grammar
        lookup = {pair: i for i, pair in enumerate(ACTIONS)}
        out: dict[str, dict[str, list[list[int]]]] = {}
        for w in lta_windows(self.lta_file(split), n_observed=n_observed, n_future=z):
            last = lookup[(w.observed[-1].verb_label, w.observed[-1].noun_label)]
            future = [ACTIONS[a] for a in grammar.most_likely_future(last, z)]
            verbs, nouns = [v for v, _ in future], [n for _, n in future]
            out[w.key] = {"verb": [verbs] * k, "noun": [nouns] * k}
        return out


# --- annotation files ---------------------------------------------------------------------------


def _lta_json(clips: Sequence[WorldClip], split: Split, fps: int) -> dict[str, Any]:
    entries = []
    for clip_id, clip in enumerate(clips):
        end = clip.num_frames / fps
        for idx, a in enumerate(clip.actions):
            v, n = ACTIONS[a.action]
            sf, ef = int(round(a.start * fps)), int(round(a.end * fps))
            entries.append(
                {
                    "clip_uid": clip.clip_uid,
                    "video_uid": f"video-{clip.clip_uid}",
                    "clip_id": clip_id,
                    "action_idx": idx,
                    "verb": VERBS[v],
                    "noun": NOUNS[n],
                    "verb_label": v,
                    "noun_label": n,
                    "action_clip_start_sec": a.start,
                    "action_clip_end_sec": a.end,
                    "action_clip_start_frame": sf,
                    "action_clip_end_frame": ef,
                    "clip_parent_start_sec": 0.0,
                    "clip_parent_end_sec": end,
                    "clip_parent_start_frame": 0,
                    "clip_parent_end_frame": clip.num_frames,
                    "interval_start_sec": a.start,
                    "interval_end_sec": a.end,
                    "interval_start_frame": sf,
                    "interval_end_frame": ef,
                }
            )
    return {
        "version": WORLD_VERSION,
        "description": "vidagent synthetic world, Ego4D LTA schema",
        "split": split,
        "clips": entries,
    }


def _sentence(a: WorldAction) -> str:
    """``the person cuts the onion.``"""
    verb = plain_label(a.verb)
    return f"the person {verb}{'es' if verb.endswith('sh') else 's'} the {a.noun}."


def _write_annotations(folder: Path, world: World) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tax = {"verbs": list(VERBS), "nouns": list(NOUNS)}
    (folder / "fho_lta_taxonomy.json").write_text(json.dumps(tax, indent=1) + "\n")
    fps = world.params.fps
    for split in SPLITS:
        clips = world.clips_of(split)
        lta = _lta_json(clips, split, fps)
        (folder / f"fho_lta_{split}.json").write_text(json.dumps(lta, indent=1) + "\n")
        lines = [
            f"{c.clip_uid} {a.start:.1f} {a.end:.1f}##{_sentence(a)}"
            for c in clips
            for a in c.actions
        ]
        (folder / f"charades_sta_{split}.txt").write_text("\n".join(lines) + "\n")
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["HITId", "video_id", "description", "start", "end"])
        for c in clips:
            for action in sorted({a.action for a in c.actions}):
                for a in (a for a in c.actions if a.action == action):
                    hit = f"{c.clip_uid}-a{action}"
                    writer.writerow([hit, f"{c.clip_uid}.mp4", _sentence(a), a.start, a.end])
        (folder / f"charades_sta_{split}.csv").write_text(buf.getvalue())
        rows = [
            {"video": f"{c.clip_uid}.mp4", "start": a.start, "end": a.end,
             "verb": plain_label(a.verb), "noun": a.noun}
            for c in clips
            for a in c.actions
        ]  # fmt: skip
        buf = io.StringIO()
        dict_writer = csv.DictWriter(buf, ["video", "start", "end", "verb", "noun"])
        dict_writer.writeheader()
        dict_writer.writerows(rows)
        (folder / f"actions_{split}.csv").write_text(buf.getvalue())
        jsonl = "".join(json.dumps(r) + "\n" for r in rows)
        (folder / f"actions_{split}.jsonl").write_text(jsonl)


# --- the world ----------------------------------------------------------------------------------


def _script(params: WorldParams) -> list[WorldClip]:
    """Every clip's actions (no pixels yet), from the seed."""
    rng = np.random.default_rng(params.seed)
    grammar = Grammar(params.strength)
    clips = []
    seg = params.segment_seconds
    for split, count in (("train", params.train_clips), ("val", params.val_clips)):
        for i in range(count):
            t = 0.0
            actions = []
            for a in grammar.sample(rng, params.actions_per_clip):
                length = 2 if rng.random() < params.long_action_prob else 1
                v, n = ACTIONS[a]
                end = round(t + length * seg, 6)
                actions.append(
                    WorldAction(action=a, verb=VERBS[v], noun=NOUNS[n], start=t, end=end)
                )
                t = end
            uid = f"world-{split}-{i:03d}"
            frames = int(round(t * params.fps))
            clips.append(
                WorldClip(
                    clip_uid=uid,
                    split=split,  # type: ignore[arg-type]
                    video=f"videos/{uid}.mp4",
                    num_frames=frames,
                    actions=actions,
                )
            )
    return clips


def _write_world(tmp: Path, folder: Path, params: WorldParams) -> World:
    """Everything of the world in ``tmp`` (it is renamed to ``folder`` afterwards)."""
    (tmp / "videos").mkdir(parents=True)
    clips = _script(params)
    for number, clip in enumerate(clips):
        frames = write_clip(
            tmp / clip.video,
            [(a.verb, a.noun, a.start, a.end) for a in clip.actions],
            fps=params.fps, size=params.size, segment_seconds=params.segment_seconds,
            noise=params.noise, crf=params.crf, seed=params.seed * 7919 + number,
        )  # fmt: skip
        assert frames == clip.num_frames
    world = World(root=folder, params=params, clips=clips)
    _write_annotations(tmp / "annotations", world)
    (tmp / "world.json").write_text(world.model_dump_json(indent=1) + "\n", encoding="utf-8")
    return world


def build_world(root: str | Path, params: WorldParams | None = None) -> World:
    """Build (or reuse) the world of ``params`` in ``root/world-<digest>/``."""
    params = params or WorldParams()
    root = Path(root)
    folder = root / f"world-{params.digest}"
    manifest = folder / "world.json"
    if manifest.is_file():
        world = World.model_validate_json(manifest.read_text(encoding="utf-8"))
        return world.model_copy(update={"root": folder})
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".world-{params.digest}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        world = _write_world(tmp, folder, params)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.replace(tmp, folder)
    except OSError:  # another process finished the same world first
        shutil.rmtree(tmp, ignore_errors=True)
        if not manifest.is_file():
            raise
    return world


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m vidagent.testing.world DIR [--seed N] ...``: build a world, print its files."""
    import argparse

    parser = argparse.ArgumentParser(description="Build the synthetic world in DIR (cached).")
    parser.add_argument("root", type=Path)
    for name, field in WorldParams.model_fields.items():
        kind = type(field.default)
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=field.default)
    args = vars(parser.parse_args(argv))
    root = args.pop("root")
    world = build_world(root, WorldParams(**args))
    files = {
        "videos": world.videos_dir,
        "taxonomy": world.taxonomy_file,
        **{f"lta {s}": world.lta_file(s) for s in SPLITS},
        **{f"charades {s}": world.charades_file(s) for s in SPLITS},
        **{f"labels {s}": world.labels_file(s) for s in SPLITS},
    }
    for name, path in files.items():
        print(f"{name:14} {path}")


if __name__ == "__main__":
    main()
