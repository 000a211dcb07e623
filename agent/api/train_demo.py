"""``vidagent demo --train``: the proof that training learns, on a world whose truth is known.

Every model vidagent ships for tests and the demo has random weights, so nothing else shows that
the pipeline can get anything *right*. This runs the whole training story on the synthetic world
(:mod:`vidagent.testing.world`: scripted recipe clips, a Markov grammar, Ego4D LTA files) with the
demo's tiny random-weight CLIP and Llama, offline, through the same code a user's commands run:

1. build the world (train and val clips, Ego4D LTA annotations + taxonomy);
2. ``train actions``: a linear verb/noun head on the tiny CLIP's segment embeddings
   (:func:`vidagent.train.actions.train_actions`), scored on the val clips;
3. perceive every clip with that head (``perceive --action-head``: no captions, cached);
4. ``train llm``: full fine-tuning of the tiny Llama on the train windows' anticipation prompts,
   rendered by the benchmark's own solve (:func:`vidagent.train.sft_data.build_examples`);
5. ``eval run ego4d_lta`` on the val windows (:func:`vidagent.evals.runner.run_samples`, results
   and report in the run folder) with the untrained and the trained model, guided decoding, K
   sampled candidates; and two reference rows scored by the same official ED@Z:

   - *repeat observed*: the last N observed actions (as perceived, a two-segment action counted
     once), repeated in order to Z; what a forecaster with no model of the grammar can do;
   - *grammar oracle*: every candidate the grammar's most likely continuation of the last
     observed action (:meth:`vidagent.testing.world.World.oracle_outputs`); with a 0.85 grammar
     the truth still strays, so it is the floor a learned forecaster approaches, not zero.

A row is ED@Z (lower is better) of verb, noun and action, with the valid-output rate of the model
rows. Run folders and files go under ``out_dir`` (default ``$VIDAGENT_HOME/demo-train``); the
world, the perception cache and the tiny models are reused by a second run, the trained head and
model are not (they are what is being shown). With :class:`TrainDemoSettings` the sizes can be
cut for a quick check (tests) or grown.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from vidagent.api.demo import DemoEvent, demo_models

if TYPE_CHECKING:
    from vidagent.core.records import Timeline
    from vidagent.evals.common import Sample, Taxonomy
    from vidagent.testing.world import World
    from vidagent.train.actions import TrainReport
    from vidagent.train.llm import LLMTrainReport

__all__ = [
    "ProofRow",
    "TrainDemoResults",
    "TrainDemoSettings",
    "repeat_observed_outputs",
    "run_train_demo",
]

STEPS = 6
UNTRAINED, REPEAT, TRAINED, ORACLE = (
    "untrained tiny Llama", "repeat observed", "trained (train llm)", "grammar oracle",
)  # fmt: skip
"""The rows of the table, in order."""
PROOF_FILE = "proof.json"
"""The table, the settings and the head's and LLM's metrics, written under the output folder."""


class TrainDemoSettings(BaseModel):
    """Sizes of the training demo (the defaults take a few minutes on two CPU cores)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    train_clips: int = Field(default=16, ge=1, description="World clips to train on")
    val_clips: int = Field(default=2, ge=1, description="World clips to evaluate on")
    head_epochs: int = Field(default=150, ge=1)
    llm_steps: int = Field(default=300, ge=1, description="Optimizer steps of train llm")
    llm_lr: float = Field(default=2e-3, gt=0)
    llm_batch: int = Field(default=8, ge=1)
    z: int = Field(default=20, ge=1, description="Future actions per candidate (Ego4D: 20)")
    k: int = Field(default=5, ge=1, description="Candidates per window (Ego4D: 5)")
    observed: int = Field(default=8, ge=1, description="Observed actions per window (Ego4D: 8)")
    limit: int | None = Field(default=None, ge=1, description="Val windows to evaluate")
    concurrency: int = Field(default=2, ge=1, description="Windows in flight in eval")


class ProofRow(BaseModel):
    """One row of the table: ED@Z (lower is better) of a forecaster on the val windows."""

    model_config = ConfigDict(extra="forbid")

    name: str
    ed_verb: float
    ed_noun: float
    ed_action: float
    windows: int
    valid_rate: float | None = Field(default=None, description="Model rows: valid outputs")
    run_dir: Path | None = None


@dataclass(frozen=True)
class TrainDemoResults:
    out_dir: Path
    head: TrainReport
    llm: LLMTrainReport
    rows: list[ProofRow]
    settings: TrainDemoSettings
    seconds: float

    def row(self, name: str) -> ProofRow:
        return next(r for r in self.rows if r.name == name)

    def to_json(self) -> str:
        import json

        doc = {
            "settings": self.settings.model_dump(),
            "rows": [r.model_dump(mode="json") for r in self.rows],
            "action_head": {
                "val": self.head.val_metrics.model_dump(mode="json"),
                "chance": self.head.chance.model_dump(mode="json"),
                "file": self.head.head,
            },
            "llm": {"out": str(self.llm.out), "metrics": self.llm.manifest.metrics},
            "seconds": round(self.seconds, 1),
        }
        return json.dumps(doc, indent=1)


def repeat_observed_outputs(
    samples: Sequence[Sample],
    timelines: Callable[[str], Timeline],
    taxonomy: Taxonomy,
    *,
    n_observed: int,
    z: int,
    k: int,
) -> dict[str, dict[str, list[list[int]]]]:
    """The challenge ``outputs.json`` of the *repeat observed* forecaster: per window the last
    ``n_observed`` perceived actions (consecutive segments with the same top label counted once),
    repeated in order to ``z``, as all ``k`` candidates."""
    from vidagent.evals.benchmarks.ego4d_lta import clean_ego4d_label
    from vidagent.evals.sources import observed_part

    def index(names: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for i, name in enumerate(names):
            out.setdefault(name, i)
            out.setdefault(clean_ego4d_label(name), i)
        return out

    verbs, nouns = index(taxonomy.verbs), index(taxonomy.nouns)
    outputs: dict[str, dict[str, list[list[int]]]] = {}
    for sample in samples:
        timeline = timelines(sample.video_id)
        shown = timeline.segments[: observed_part(timeline, sample.observed_end or 0.0)]
        seen: list[tuple[int, int]] = []
        for seg in shown:
            if not seg.actions:
                continue
            pair = (verbs[seg.actions[0].verb], nouns[seg.actions[0].noun])
            if not seen or seen[-1] != pair:
                seen.append(pair)
        if not seen:
            continue  # scored as missing (the worst distance), as a forecaster with no input
        last = seen[-n_observed:]
        future = [last[i % len(last)] for i in range(z)]
        outputs[sample.key] = {
            "verb": [[v for v, _ in future]] * k,
            "noun": [[n for _, n in future]] * k,
        }
    return outputs


def _row(name: str, metrics: Mapping[str, Any], **extra: Any) -> ProofRow:
    return ProofRow(
        name=name, ed_verb=metrics["ED_verb"], ed_noun=metrics["ED_noun"],
        ed_action=metrics["ED_action"], windows=metrics["n"], **extra,
    )  # fmt: skip


def _eval_model(
    name: str,
    model: Path,
    samples: Sequence[Sample],
    timelines: Callable[[str], Timeline],
    files: tuple[Path, Path, Path],
    run_dir: Path,
    settings: TrainDemoSettings,
) -> ProofRow:
    """``eval run ego4d_lta`` of ``model`` (in process, guided) on ``samples``, in ``run_dir``;
    ``files``: the annotations, the taxonomy and the timelines folder (for the run's config)."""
    from vidagent.evals.benchmark import Params
    from vidagent.evals.common import read_taxonomy
    from vidagent.evals.registry import benchmark
    from vidagent.evals.report import summarize
    from vidagent.evals.run_folder import RunConfig, check_config, prepare_run_dir
    from vidagent.evals.runner import Solver, run_samples
    from vidagent.llm import LLMClient
    from vidagent.llm.hf_backend import HFBackend

    bench = benchmark("ego4d_lta")
    annotations, taxonomy_file, timelines_dir = files
    config = RunConfig(
        task="ego4d_lta", annotations=str(annotations), source=f"timelines:{timelines_dir}",
        llm_model=str(model), max_concurrency=settings.concurrency, lta_z=settings.z,
        lta_k=settings.k, taxonomy=str(taxonomy_file), limit=settings.limit,
    )  # fmt: skip
    prepare_run_dir(run_dir)
    check_config(run_dir, config, force=False)
    llm = LLMClient(HFBackend(model, device="cpu"), max_concurrency=settings.concurrency)
    try:
        solve = Solver(llm, config, read_taxonomy(taxonomy_file))
        start = time.perf_counter()
        results = run_samples(
            samples, source=timelines, solve=solve, run_dir=run_dir, workers=settings.concurrency
        )
        wall_s = time.perf_counter() - start
    finally:
        llm.close()
    params = Params(z=settings.z, candidates=settings.k, observed=settings.observed)
    summary = summarize(
        bench, samples, results, wall_s=wall_s, ran=len(samples), run_dir=run_dir, params=params
    )
    ok = [r for r in results.values() if r.ok]
    valid = sum(r.valid for r in ok) / len(ok) if ok else 0.0
    return _row(name, summary["metrics"], valid_rate=valid, run_dir=run_dir)


def _clear(out_dir: Path) -> None:
    """Remove what an earlier run made that this one makes anew (the world, the perception cache
    and the tiny models are kept)."""
    import shutil

    for name in ("head", "llm", "runs", "timelines"):
        shutil.rmtree(out_dir / name, ignore_errors=True)
    (out_dir / PROOF_FILE).unlink(missing_ok=True)


def _train_head(world: World, clip: Path, store: Any, out: Path, seed: int, epochs: int) -> Any:
    """``train actions`` on the world's LTA files: a linear head on the tiny CLIP's embeddings."""
    from vidagent.tools.visual_embedder import EmbedderParams, SegmentEmbedder
    from vidagent.train.actions import TrainActionsConfig, train_actions
    from vidagent.train.fit import HeadOptions

    config = TrainActionsConfig(
        labels=world.lta_file("train"), val_labels=world.lta_file("val"),
        videos_dir=world.videos_dir, out=out, taxonomy=world.taxonomy_file,
        seconds=world.params.segment_seconds, frame_size=None,
        head=HeadOptions(epochs=epochs, seed=seed),
    )  # fmt: skip
    embedder = SegmentEmbedder(EmbedderParams(model=str(clip), device="cpu"))
    return train_actions(config, embedder=embedder, store=store)


def _perceive(world: World, clip: Path, head: Path, store: Any, out: Path) -> dict[str, Timeline]:
    """Every clip's timeline with the head's labels (no captions), also written to ``out``."""
    from vidagent.api.config import PerceptionConfig
    from vidagent.api.perception import perceive_videos

    config = PerceptionConfig(
        captions=False, embedder=str(clip), taxonomy=world.taxonomy_file, action_head=head,
        top_k=1, device="cpu", seconds=world.params.segment_seconds, frame_size=0,
    )  # fmt: skip
    perceived = perceive_videos([world.video(c) for c in world.clips], config, store=store)
    out.mkdir(parents=True, exist_ok=True)
    timelines = {}
    for clip_info, timeline in zip(world.clips, perceived.timelines, strict=True):
        timelines[clip_info.clip_uid] = timeline
        (out / f"{clip_info.clip_uid}.json").write_text(timeline.model_dump_json(), "utf-8")
    return timelines


def run_train_demo(
    out_dir: Path | None = None,
    report: Callable[[DemoEvent], None] | None = None,
    settings: TrainDemoSettings | None = None,
) -> TrainDemoResults:
    """Run the training demo (module docstring), telling ``report`` each step."""
    import json

    from vidagent.api.perception import open_store
    from vidagent.core.settings import load_settings
    from vidagent.evals.benchmark import Params
    from vidagent.evals.common import read_taxonomy
    from vidagent.evals.registry import benchmark
    from vidagent.tasks import TaskOptions
    from vidagent.testing.world import WorldParams, build_world
    from vidagent.train.llm import TrainLLMConfig, train_llm
    from vidagent.train.sft_data import build_examples, require_examples

    settings = settings or TrainDemoSettings()

    def tell(number: int, text: str) -> None:
        if report is not None:
            report(DemoEvent("step", f"{number}/{STEPS} {text}"))

    started = time.perf_counter()
    home = load_settings()
    out_dir = out_dir if out_dir is not None else home.home / "demo-train"
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear(out_dir)
    world = build_world(
        out_dir / "worlds",
        WorldParams(
            seed=settings.seed, train_clips=settings.train_clips, val_clips=settings.val_clips
        ),
    )
    tell(1, f"world of {len(world.clips)} clips (8 actions, a 0.85 grammar) in {world.root}")

    models = demo_models(home.models_dir)
    store = open_store()
    head_file = out_dir / "head" / "world.safetensors"
    head = _train_head(world, models["clip"], store, head_file, settings.seed, settings.head_epochs)
    m = head.val_metrics
    tell(
        2,
        f"action head: val action top-1 {m.action_top1:.1%} (verb {m.verb_top1:.1%}, noun "
        f"{m.noun_top1:.1%}; chance {head.chance.action_top1:.1%}) -> {head_file}",
    )

    timelines_dir = out_dir / "timelines"
    by_clip = _perceive(world, models["clip"], head_file, store, timelines_dir)
    segments = sum(len(t.segments) for t in by_clip.values())
    tell(3, f"perceived with the head: {segments} segments -> {timelines_dir}")

    bench = benchmark("ego4d_lta")
    params = Params(z=settings.z, candidates=settings.k, observed=settings.observed)
    taxonomy = read_taxonomy(world.taxonomy_file)
    train_samples = bench.load_samples(world.lta_file("train"), params)
    val_samples = bench.load_samples(world.lta_file("val"), params)[: settings.limit]
    data = {
        split: require_examples(
            build_examples(
                bench, samples, by_clip.__getitem__, options=TaskOptions(), params=params,
                taxonomy=taxonomy,
            ),
            split,
        )
        for split, samples in (("train", train_samples), ("val", val_samples))
    }  # fmt: skip
    tuned = out_dir / "llm" / "world-lta"
    llm = train_llm(
        TrainLLMConfig(
            base_model=str(models["llm"]), out=tuned, task="ego4d_lta", full=True,
            max_steps=settings.llm_steps, lr=settings.llm_lr, batch_size=settings.llm_batch,
            eval_steps=10**9, device="cpu", seed=settings.seed,
        ),
        data["train"], data["val"],
    )  # fmt: skip
    metrics = llm.manifest.metrics
    tell(
        4,
        f"train llm: {len(data['train'])} windows, {llm.steps} steps, eval loss "
        f"{metrics['eval_loss_before']:.3f} -> {metrics['eval_loss']:.3f} -> {tuned}",
    )

    files = (world.lta_file("val"), world.taxonomy_file, timelines_dir)
    rows = []
    for name, model, folder in (
        (UNTRAINED, models["llm"], "untrained"),
        (TRAINED, tuned, "trained"),
    ):
        run_dir = out_dir / "runs" / folder
        rows.append(
            _eval_model(name, model, val_samples, by_clip.__getitem__, files, run_dir, settings)
        )
        tell(5, f"eval run ego4d_lta, {name}: ED@{settings.z} action {rows[-1].ed_action:.3f}")
    references = {
        "repeat": repeat_observed_outputs(
            val_samples, by_clip.__getitem__, taxonomy, n_observed=settings.observed,
            z=settings.z, k=settings.k,
        ),
        "oracle": world.oracle_outputs(
            "val", z=settings.z, k=settings.k, n_observed=settings.observed
        ),
    }  # fmt: skip
    for folder, outputs in references.items():
        outputs = {s.key: outputs[s.key] for s in val_samples if s.key in outputs}
        run_dir = out_dir / "runs" / folder  # its outputs.json scores with `vidagent eval score`
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / bench.submission_file).write_text(json.dumps(outputs) + "\n", "utf-8")
        name = REPEAT if folder == "repeat" else ORACLE
        row = _row(name, bench.score(val_samples, outputs, params), run_dir=run_dir)
        rows.insert(1 if folder == "repeat" else len(rows), row)
    results = TrainDemoResults(out_dir, head, llm, rows, settings, time.perf_counter() - started)
    (out_dir / PROOF_FILE).write_text(results.to_json() + "\n", encoding="utf-8")
    tell(6, f"scored {len(val_samples)} val windows with the official ED@{settings.z} -> "
            f"{out_dir / PROOF_FILE}")  # fmt: skip
    return results
