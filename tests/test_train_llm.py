"""``vidagent train llm``: SFT examples rendered by the inference code, a completion-only loss,
an adapter written whole or not at all, clear bad-input errors, and training that learns.

The LTA data is a deterministic recipe grammar (:class:`vidagent.testing.world.Grammar` with
strength 1: each action is followed by the next one of the recipe) written as an Ego4D LTA file,
with ground-truth timelines (one segment per action, its label as perception's action head would
give it), so the prompts are the real ``lta`` prompts and the truth is known.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from llm_support import tiny_model_dir  # noqa: F401

from vidagent.core.records import ActionLabel, Caption, Segment, Segmentation, Timeline, VideoInfo
from vidagent.evals.benchmark import Params
from vidagent.evals.common import Sample, Taxonomy
from vidagent.evals.registry import benchmark
from vidagent.llm import LLMClient
from vidagent.llm.adapter import MANIFEST_FILE, read_manifest
from vidagent.llm.hf_backend import HFBackend
from vidagent.tasks.answer import ChoiceAnswerSpec
from vidagent.tasks.anticipate import AnticipateSpec, parse_actions
from vidagent.tasks.localize import LocalizeSpec
from vidagent.tasks.pipeline import TaskDeps, prepare_task
from vidagent.tasks.steps import TaskOptions
from vidagent.testing.world import ACTIONS, NOUNS, VERBS, Grammar
from vidagent.train.errors import EmptySplitError, TrainError
from vidagent.train.llm import IGNORE, TrainLLMConfig, encode_example, pad_batch, train_llm
from vidagent.train.sft_data import SFTData, build_examples, require_examples, split_by_video

TAXONOMY = Taxonomy(verbs=list(VERBS), nouns=list(NOUNS))
OPTIONS = TaskOptions(max_timeline_chars=300)


def timeline_of(uid: str, labels: list[tuple[int, int]], captions: bool = False) -> Timeline:
    segments = [
        Segment(
            index=i, start=2.0 * i, end=2.0 * i + 2, start_frame=20 * i, end_frame=20 * i + 20,
            actions=[ActionLabel(verb=VERBS[v], noun=NOUNS[n], score=1.0)],
            captions=[Caption(text=f"someone holds the {NOUNS[n]}")] if captions else [],
        )
        for i, (v, n) in enumerate(labels)
    ]  # fmt: skip
    info = VideoInfo(
        path=uid, fps=10, num_frames=20 * len(labels), duration=2.0 * len(labels), width=64,
        height=64, codec="h264", backend="pyav",
    )  # fmt: skip
    return Timeline(video=info, segmentation=Segmentation(method="fixed"), segments=segments)


def write_lta(
    folder: Path, split: str, clips: int, length: int, seed: int
) -> tuple[Path, dict[str, Timeline]]:
    """An Ego4D LTA file of ``clips`` recipe clips and their ground-truth timelines."""
    rng, grammar = np.random.default_rng(seed), Grammar(1.0)
    items, timelines = [], {}
    for c in range(clips):
        uid = f"{split}-{c}"
        labels = [ACTIONS[a] for a in grammar.sample(rng, length)]
        for i, (v, n) in enumerate(labels):
            items.append({
                "clip_uid": uid, "video_uid": uid, "action_idx": i, "verb": VERBS[v],
                "noun": NOUNS[n], "verb_label": v, "noun_label": n,
                "action_clip_start_sec": 2.0 * i, "action_clip_end_sec": 2.0 * i + 2,
            })  # fmt: skip
        timelines[uid] = timeline_of(uid, labels)
    path = folder / f"fho_lta_{split}.json"
    path.write_text(json.dumps({"clips": items}))
    return path, timelines


def lta_data(folder: Path, split: str, clips: int, seed: int, params: Params) -> SFTData:
    path, timelines = write_lta(folder, split, clips, 10, seed)
    bench = benchmark("ego4d_lta")
    samples = bench.load_samples(path, params)
    return build_examples(
        bench, samples, timelines.__getitem__, options=OPTIONS, params=params, taxonomy=TAXONOMY
    )


def test_lta_training_prompt_is_what_inference_sends(tmp_path: Path) -> None:
    params = Params(z=3, candidates=2, observed=2)
    data = lta_data(tmp_path, "train", 1, 0, params)
    assert not data.skipped and len(data.examples) == 10 - 2 - 3 + 1
    ex = data.examples[0]
    path, timelines = write_lta(tmp_path, "train", 1, 10, 0)  # the same clip again
    timeline = timelines["train-0"]
    spec = AnticipateSpec(tuple(VERBS), tuple(NOUNS), observed=2, z=3, k=2)
    sent = prepare_task(
        spec, timeline, TaskDeps(llm=LLMClient(HFBackend("unused")), options=OPTIONS)
    )
    assert ex.messages == sent.requests[0].messages  # byte-identical chat messages
    assert "Observed: " in ex.messages[-1].content and ex.prompt.endswith("lta.yaml")
    target = [ACTIONS[a] for a in Grammar(1.0).most_likely_future(
        ACTIONS.index((VERBS.index(timeline.segments[1].actions[0].verb),
                       NOUNS.index(timeline.segments[1].actions[0].noun))), 3)]  # fmt: skip
    pairs = parse_actions(ex.completion, VERBS, NOUNS, 3)
    assert (
        pairs is not None and [(VERBS.index(p.verb), NOUNS.index(p.noun)) for p in pairs] == target
    )
    assert json.loads(ex.completion) and " " not in ex.completion.replace("_", "")  # compact JSON
    assert path.is_file()


def test_in_context_examples_from_a_bank_are_rendered_as_inference_renders_them(
    tmp_path: Path,
) -> None:
    """``train llm --bank``: the training prompt carries the examples inference retrieves (the
    sample's own clip excluded, as at inference), byte for byte."""
    from vidagent.retrieval import ExampleBank, SentenceTransformerEmbedder

    params = Params(z=2, candidates=1, observed=2)
    path, timelines = write_lta(tmp_path, "train", 3, 8, 0)
    bench = benchmark("ego4d_lta")
    embedder = SentenceTransformerEmbedder()
    bank = ExampleBank.build(bench.bank_examples(path, params=params), embedder)
    options = TaskOptions(max_timeline_chars=300, k=2)
    samples = bench.load_samples(path, params)
    data = build_examples(bench, samples, timelines.__getitem__, options=options, params=params,
                          taxonomy=TAXONOMY, bank=bank)  # fmt: skip
    assert not data.skipped and len(data.examples) == len(samples)
    sample, ex = samples[0], data.examples[0]
    assert "Example 1:" in ex.messages[-1].content and "Example 2:" in ex.messages[-1].content
    timeline = timelines[sample.video_id]
    from vidagent.evals.sources import observed_part

    spec = AnticipateSpec(tuple(VERBS), tuple(NOUNS), z=2, k=1,
                          observed=observed_part(timeline, sample.observed_end or 0.0))  # fmt: skip
    deps = TaskDeps(llm=LLMClient(HFBackend("unused")), options=options, bank=bank)
    sent = prepare_task(spec, timeline, deps)
    assert ex.messages == sent.requests[0].messages
    shown = {e.video_id for e in sent.run.examples}
    assert shown and sample.video_id not in shown  # the sample's own clip is never an example
    without = build_examples(bench, samples[:1], timelines.__getitem__,
                             options=TaskOptions(max_timeline_chars=300), params=params,
                             taxonomy=TAXONOMY)  # fmt: skip
    assert "Example 1:" not in without.examples[0].messages[-1].content


def test_qa_and_moment_targets_use_the_tasks_own_prompts() -> None:
    timeline = timeline_of("v", [ACTIONS[a] for a in range(5)], captions=True)
    options = TaskOptions(max_timeline_chars=4000)
    deps = TaskDeps(llm=LLMClient(HFBackend("unused")), options=options)
    qa = Sample(key="v_1", video_id="v", kind="qa", question="What is cut?",
                options=["a knife", "an onion", "a cup"], answer=1)  # fmt: skip
    data = build_examples(benchmark("nextqa"), [qa], {"v": timeline}.__getitem__,
                          options=options, params=Params())  # fmt: skip
    [ex] = data.examples
    sent = prepare_task(ChoiceAnswerSpec(qa.question, tuple(qa.options)), timeline, deps)
    assert ex.messages == sent.requests[0].messages and ex.completion == "B"
    moment = Sample(key="v_q", video_id="v", kind="moment", question="the person stirs the pan",
                    windows=[[8.5, 9.5]], duration=10.0)  # fmt: skip
    data = build_examples(benchmark("charades_sta"), [moment], {"v": timeline}.__getitem__,
                          options=options, params=Params())  # fmt: skip
    [ex] = data.examples
    sent = prepare_task(LocalizeSpec(moment.question), timeline, deps)
    assert ex.messages == sent.requests[0].messages
    token = timeline.segments[4].token
    assert json.loads(ex.completion) == {"start": token, "end": token}
    # a target the task cannot take is skipped with its reason, not trained on
    bad = qa.model_copy(update={"key": "v_2", "answer": 7})
    data = build_examples(benchmark("nextqa"), [bad], {"v": timeline}.__getitem__,
                          options=options, params=Params())  # fmt: skip
    assert not data.examples and "not among" in data.skipped["v_2"]
    with pytest.raises(EmptySplitError, match="the val split gives no training example"):
        require_examples(data, "val")


def test_the_loss_is_on_the_completion_only(tmp_path: Path, tiny_model_dir: Path) -> None:  # noqa: F811
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ex = lta_data(tmp_path, "train", 1, 0, Params(z=1, candidates=1, observed=1)).examples[0]
    row = encode_example(tok, ex, 4096)
    assert row is not None
    prompt = tok.apply_chat_template(
        [m.model_dump() for m in ex.messages], add_generation_prompt=True, tokenize=False
    )
    n_prompt = len(tok(prompt, add_special_tokens=False).input_ids)
    assert row["labels"][:n_prompt] == [IGNORE] * n_prompt
    learned = row["labels"][n_prompt:]
    assert IGNORE not in learned and learned == row["input_ids"][n_prompt:]
    assert learned[-1] == tok.eos_token_id and tok.decode(learned[:-1]) == ex.completion
    assert encode_example(tok, ex, n_prompt) is None  # too long: left out, never cut
    batch = pad_batch([row, {"input_ids": [5, 6], "labels": [IGNORE, 6]}], pad_id=0)
    assert batch["labels"][1].tolist() == [IGNORE, 6] + [IGNORE] * (len(row["input_ids"]) - 2)
    assert batch["attention_mask"][1].sum().item() == 2


def test_split_by_video_keeps_each_video_on_one_side() -> None:
    samples = [
        Sample(key=f"{v}_{i}", video_id=f"v{v}", kind="qa") for v in range(10) for i in range(3)
    ]
    train, val = split_by_video(samples, 0.2, seed=0)
    assert len(val) == 6 and not {s.video_id for s in train} & {s.video_id for s in val}
    assert split_by_video(samples, 0.2, seed=0) == (train, val)


def test_bad_input_is_one_clear_line(tmp_path: Path, tiny_model_dir: Path) -> None:  # noqa: F811
    params = Params(z=1, candidates=1, observed=1)
    data = lta_data(tmp_path, "train", 1, 0, params).examples[:2]
    config = TrainLLMConfig(
        base_model=str(tiny_model_dir), out=tmp_path / "adapter", task="ego4d_lta", max_steps=1,
        device="cpu", lora={"target_modules": ["q_proj", "qkv_proj"]},
    )  # fmt: skip
    with pytest.raises(TrainError, match=r"LoRA target module 'qkv_proj' does not exist") as err:
        train_llm(config, data, data)
    assert "\n" not in str(err.value) and "q_proj" in str(err.value)
    with pytest.raises(EmptySplitError, match="val split has no example"):
        train_llm(config, data, [])
    assert not (tmp_path / "adapter").exists()
    assert not list(tmp_path.glob(".adapter.tmp-*"))


@pytest.mark.slow
def test_adapter_is_written_whole_with_its_manifest_and_training_resumes(
    tmp_path: Path,
    tiny_model_dir: Path,  # noqa: F811
) -> None:
    params = Params(z=1, candidates=1, observed=1)
    data = lta_data(tmp_path, "train", 1, 0, params).examples[:8]
    out = tmp_path / "adapter"
    config = TrainLLMConfig(
        base_model=str(tiny_model_dir), out=out, task="ego4d_lta", max_steps=2, save_steps=1,
        batch_size=4, device="cpu", lora={"rank": 4, "alpha": 8, "target_modules": ["q_proj"]},
    )  # fmt: skip
    report = train_llm(config, data, data[:2])
    manifest = read_manifest(out)
    assert manifest is not None and manifest == report.manifest
    assert (out / "adapter_config.json").is_file() and (out / MANIFEST_FILE).is_file()
    assert manifest.kind == "lora" and manifest.task == "ego4d_lta" and manifest.lora.rank == 4
    assert manifest.train_examples == 8 and {"eval_loss", "eval_loss_before"} <= set(
        manifest.metrics
    )
    assert not list(tmp_path.glob(".adapter.*"))
    with pytest.raises(TrainError, match="exists; pass --overwrite"):
        train_llm(config, data, data[:2])
    steps: list[int] = []
    resumed = config.model_copy(update={"max_steps": 3, "resume": True, "overwrite": True})
    report = train_llm(resumed, data, data[:2], on_progress=lambda p: steps.append(p.step))
    assert (
        report.steps == 3 and min(s for s in steps if s > 0) == 3
    )  # steps 1-2 came from the checkpoint


def guided_accuracy(model: Path, examples: list, adapter: Path | None = None) -> float:
    """Share of examples whose greedy, schema-guided answer is exactly the target."""
    from vidagent.llm import LLMRequest, StructuredOutput
    from vidagent.tasks.anticipate import lta_schema

    client = LLMClient(HFBackend(model, adapter=adapter), max_concurrency=1)
    schema = StructuredOutput.from_schema(lta_schema(VERBS, NOUNS, 1))
    requests = [
        LLMRequest(messages=e.messages, structured=schema, sampling={"max_tokens": 64})
        for e in examples
    ]
    results = client.run_many(requests)
    return sum(r.text == e.completion for r, e in zip(results, examples, strict=True)) / len(
        examples
    )


@pytest.mark.slow
def test_training_learns_the_grammar(tmp_path: Path, tiny_model_dir: Path) -> None:  # noqa: F811
    """Full fine-tuning of the tiny Llama on the recipe grammar's next action: its guided answers
    on held-out clips go from chance (~1 in 8) to mostly right."""
    params = Params(z=1, candidates=1, observed=1)
    train = lta_data(tmp_path, "train", 6, 0, params).examples
    val = lta_data(tmp_path, "val", 2, 1, params).examples
    out = tmp_path / "tuned"
    config = TrainLLMConfig(
        base_model=str(tiny_model_dir), out=out, task="ego4d_lta", full=True, max_steps=150,
        lr=2e-3, batch_size=8, eval_steps=1000, device="cpu",
    )  # fmt: skip
    report = train_llm(config, train, val)
    before, after = guided_accuracy(tiny_model_dir, val), guided_accuracy(out, val)
    print(f"val exact match {before:.2f} -> {after:.2f}; {report.manifest.metrics}")
    assert report.manifest.metrics["eval_loss"] < 0.25 * report.manifest.metrics["eval_loss_before"]
    assert before <= 0.3 and after >= 0.6


@pytest.mark.slow
def test_cli_trains_from_timeline_files_and_reports_the_losses(
    tmp_path: Path,
    tiny_model_dir: Path,  # noqa: F811
) -> None:
    import typer
    from typer.testing import CliRunner

    from vidagent.cli.train_llm import llm

    app = typer.Typer()
    app.command("llm")(llm)
    app.command("other")(lambda: None)  # two commands: `llm` is a subcommand, as when mounted
    folder = tmp_path / "timelines"
    folder.mkdir()
    path, timelines = write_lta(tmp_path, "train", 3, 6, 0)
    for uid, timeline in timelines.items():
        (folder / f"{uid}.json").write_text(timeline.model_dump_json())
    (tmp_path / "tax.json").write_text(json.dumps({"verbs": VERBS, "nouns": NOUNS}))
    out = tmp_path / "adapter"
    args = [
        "llm", "--task", "ego4d_lta", "--annotations", str(path), "--timelines", str(folder),
        "--taxonomy", str(tmp_path / "tax.json"), "--base-model", str(tiny_model_dir),
        "--out", str(out), "--z", "1", "--candidates", "1", "--observed", "1",
        "--max-steps", "2", "--val-fraction", "0.34", "--device", "cpu", "--rank", "4",
        "--target-modules", "q_proj,v_proj",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "lora adapter" in result.output and "eval loss" in result.output
    manifest = read_manifest(out)
    assert manifest is not None and manifest.lora is not None
    assert manifest.lora.target_modules == ["q_proj", "v_proj"] and manifest.metrics["steps"] == 2
    (tmp_path / "short").mkdir()
    short, _ = write_lta(tmp_path / "short", "val", 1, 1, 0)  # one action: no window at all
    result = CliRunner().invoke(app, [*args, "--overwrite", "--val", str(short)])
    assert isinstance(result.exception, EmptySplitError), result.output
    assert "the val split gives no training example" in str(result.exception)
