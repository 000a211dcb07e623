"""Captioner, action recognizer and embedder on real decoded frames, with tiny local models.

The models are random-weight checkpoints built by tools/tiny_models.py and loaded through the same
``from_pretrained`` code a hub id goes through; outputs are checked for types, shapes, normalization
and batch invariance, not for meaning.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from vidagent.core.errors import ConfigError
from vidagent.core.records import ActionLabel, Segment
from vidagent.store.perception import PerceptionStore
from vidagent.testing.synth import SyntheticVideo
from vidagent.testing.tiny_models import build_tiny
from vidagent.tools.actions import (
    ActionParams,
    ActionRecognizer,
    Taxonomy,
    gerund,
    load_action_head,
    parse_class,
    save_action_head,
)
from vidagent.tools.captioner import Captioner, CaptionerParams
from vidagent.tools.sampling import sample_segments
from vidagent.tools.segmenter import build_timeline
from vidagent.tools.video import FrameBatch, open_video
from vidagent.tools.visual_embedder import EmbedderParams, SegmentEmbedder

EGO4D_STYLE = {
    "verbs": ["take_(pick,_grab,_get)", "put_(place,_leave,_drop)", "cut_(chop,_slice)", "open"],
    "nouns": ["knife_(knife,_machete)", "nut_(food)", "nut_(tool)", "onion", "bat_(sports)"],
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.getbasetemp() / "tiny-models"
    return {k: str(build_tiny(k, root)) for k in ("clip", "siglip", "blip", "llava", "vit-gpt2")}


@pytest.fixture(scope="module")
def frames(h264_video: SyntheticVideo) -> dict[int, list[FrameBatch]]:
    """Frames of the 4 segments (2 s) of the 8 s H.264 clip (cut at 3.7 s), for k = 1, 2, 4."""
    timeline = build_timeline(h264_video.path, seconds=2.0)
    with open_video(h264_video.path) as source:
        return {k: sample_segments(source, timeline.segments, k) for k in (1, 2, 4)}


# --- embedder -----------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_segment_embeddings_are_unit_vectors_independent_of_batch_size(
    models: dict[str, str], frames: dict[int, list[FrameBatch]], family: str
) -> None:
    big = SegmentEmbedder(EmbedderParams(model=models[family], batch_size=8))
    out = big.run(frames[4])
    emb = out.arrays["embeddings"]
    assert emb.shape == (4, big.encoder.dim) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert out.items[0]["frames"] == [int(i) for i in frames[4][0].indices]
    assert big.encoder.forward_calls == 2  # 16 frames in batches of 8
    one = SegmentEmbedder(EmbedderParams(model=models[family], batch_size=1))
    np.testing.assert_allclose(one.embed_segments(frames[4]), emb, atol=1e-5)
    assert one.encoder.forward_calls == 16
    # segments 0 and 3 are in different shots: different pictures, different vectors
    assert float(emb[0] @ emb[3]) < 0.9999


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_text_embeddings_share_the_space_and_ignore_batch_padding(
    models: dict[str, str], family: str
) -> None:
    embedder = SegmentEmbedder(EmbedderParams(model=models[family]))
    alone = embedder.embed_text(["a person cutting an onion"])
    padded = embedder.embed_text(
        ["a person cutting an onion", "someone takes a cup from the shelf and puts it down again"]
    )
    assert alone.shape == (1, embedder.encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(padded, axis=1), 1.0, atol=1e-5)
    # SigLIP pools the last position: only max_length padding keeps a text's vector stable
    np.testing.assert_allclose(padded[0], alone[0], atol=1e-5)


def test_embedder_cache_params_name_weights_and_dtype_not_speed(models: dict[str, str]) -> None:
    a = SegmentEmbedder(EmbedderParams(model=models["clip"], batch_size=4)).cache_params()
    b = SegmentEmbedder(EmbedderParams(model=models["clip"], batch_size=64)).cache_params()
    assert a == b
    assert a["model"].startswith("local:") and a["dtype"] == "float32"
    assert "batch_size" not in a and "device" not in a
    c = SegmentEmbedder(EmbedderParams(model=models["clip"], frames_per_segment=2)).cache_params()
    assert c != a


# --- actions ------------------------------------------------------------------------------------


def test_taxonomy_entries_become_readable_labels_and_prompts() -> None:
    take = parse_class("take_(pick,_grab,_get)")
    assert (take.label, take.names) == ("take", ["take", "pick", "grab", "get"])
    off = parse_class("turn_off_(turn_off,_switch_off)")
    assert (off.label, off.names) == ("turn off", ["turn off", "switch off"])
    adjust = parse_class("adjust_(regulate,_increase/reduce,_change)")
    assert adjust.names == ["adjust", "regulate", "increase or reduce", "change"]
    assert parse_class("operate_(use,_dial,_click-button)").names[-1] == "click button"
    tax = Taxonomy.from_dict(EGO4D_STYLE, "test")
    nouns = {c.raw: c for c in tax.noun_classes}
    assert nouns["nut_(food)"].label == "nut (food)" and nouns["nut_(tool)"].label == "nut (tool)"
    assert (nouns["bat_(sports)"].label, nouns["bat_(sports)"].names) == ("bat", ["bat (sports)"])
    assert [gerund(v) for v in ("take", "cut", "open", "turn off", "tie", "see")] == [
        "taking", "cutting", "opening", "turning off", "tying", "seeing",
    ]  # fmt: skip


def test_taxonomy_files_load_and_bad_ones_are_config_errors(tmp_path: Path) -> None:
    good = tmp_path / "tax.json"
    good.write_text(json.dumps({**EGO4D_STYLE, "version": "v2"}))
    tax = Taxonomy.load(good)
    assert len(tax.verbs) == 4 and len(tax.nouns) == 5
    assert tax.digest == Taxonomy.from_dict(EGO4D_STYLE, "x").digest
    bad = tmp_path / "bad.json"
    for content, message in [
        ("{not json", "not readable JSON"),
        (json.dumps({"verbs": ["a"]}), "'nouns' must be a non-empty list"),
        (json.dumps({"verbs": ["a", 3], "nouns": ["b"]}), "non-string or empty entry 3"),
    ]:
        bad.write_text(content)
        with pytest.raises(ConfigError, match=message):
            Taxonomy.load(bad)
    with pytest.raises(ConfigError, match="no such file"):
        Taxonomy.load(tmp_path / "missing.json")


def test_prompt_templates_are_checked_when_configured() -> None:
    with pytest.raises(ValidationError, match="bad placeholder 'object'"):
        ActionParams(noun_template="a photo of a {object}")
    assert ActionParams(verb_template="someone {verb_ing} it").verb_template


def test_zero_shot_actions_rank_pairs_and_store_probabilities(
    models: dict[str, str], frames: dict[int, list[FrameBatch]], tmp_path: Path
) -> None:
    tax_file = tmp_path / "tax.json"
    tax_file.write_text(json.dumps(EGO4D_STYLE))
    params = ActionParams(model=models["siglip"], taxonomy=tax_file, top_k=3)
    recognizer = ActionRecognizer(params)
    out = recognizer.run(frames[4])
    assert out.arrays["verb_probs"].shape == (4, 4) and out.arrays["noun_probs"].shape == (4, 5)
    np.testing.assert_allclose(out.arrays["noun_probs"].sum(axis=1), 1.0, atol=1e-5)
    verbs = {"take", "put", "cut", "open"}
    for row, vp, np_ in zip(
        out.items, out.arrays["verb_probs"], out.arrays["noun_probs"], strict=True
    ):
        labels = [ActionLabel.model_validate(a) for a in row]
        assert len(labels) == 3
        assert [a.score for a in labels] == sorted((a.score for a in labels), reverse=True)
        assert labels[0].verb in verbs and labels[0].verb_score == pytest.approx(vp.max())
        assert labels[0].noun_score == pytest.approx(np_.max())
        for a in labels:
            assert a.score == pytest.approx(a.verb_score * a.noun_score)
    segments = [
        Segment(index=i, start=2.0 * i, end=2.0 * i + 2, start_frame=20 * i, end_frame=20 * i + 20)
        for i in range(4)
    ]
    annotated = recognizer.annotate(segments, {"items": out.items}, "key")
    assert annotated[2].actions[0].text == f"{out.items[2][0]['verb']} {out.items[2][0]['noun']}"


def test_class_text_embeddings_are_computed_once_per_store(
    models: dict[str, str], frames: dict[int, list[FrameBatch]], tmp_path: Path
) -> None:
    store = PerceptionStore(tmp_path / "store")
    first = ActionRecognizer(ActionParams(model=models["clip"]), store=store)
    labels = first.run(frames[4]).items
    assert first.encoder.forward_calls > 1  # image batch + prompt batches
    second = ActionRecognizer(ActionParams(model=models["clip"]), store=store)
    second.setup()
    assert second.encoder.forward_calls == 0  # class prompts came from the store
    assert second.run(frames[4]).items == labels
    assert store.keys("actions.text")
    other = ActionRecognizer(
        ActionParams(model=models["clip"], noun_template="{noun}"), store=store
    )
    other.setup()
    assert other.encoder.forward_calls > 0  # other prompts: another cache entry


def test_a_linear_head_replaces_zero_shot_and_round_trips(
    models: dict[str, str], frames: dict[int, list[FrameBatch]], tmp_path: Path
) -> None:
    zero = ActionRecognizer(ActionParams(model=models["clip"], top_k=4))
    verbs, nouns = zero.class_embeddings()
    scale = zero.encoder.logit_scale
    head = save_action_head(
        tmp_path / "head.safetensors",
        verb_weight=scale * verbs,
        verb_bias=np.zeros(len(verbs), np.float32),
        noun_weight=scale * nouns,
        noun_bias=np.zeros(len(nouns), np.float32),
        taxonomy=Taxonomy.basic(),
        embedding_model=models["clip"],
    )
    taxonomy, _ = load_action_head(head)
    assert (taxonomy.verbs, taxonomy.nouns) == (Taxonomy.basic().verbs, Taxonomy.basic().nouns)
    trained = ActionRecognizer(ActionParams(model=models["clip"], top_k=4, head=head))
    expected, got = zero.run(frames[4]), trained.run(frames[4])
    np.testing.assert_allclose(got.arrays["verb_probs"], expected.arrays["verb_probs"], atol=1e-5)
    assert [[a["verb"] for a in r] for r in got.items] == [
        [a["verb"] for a in r] for r in expected.items
    ]
    assert trained.cache_params()["head"] != zero.cache_params()["head"]


def test_bad_heads_are_config_errors(models: dict[str, str], tmp_path: Path) -> None:
    tax = Taxonomy.basic()
    with pytest.raises(ConfigError, match="do not match the taxonomy's 34 verbs"):
        save_action_head(
            tmp_path / "h.safetensors",
            verb_weight=np.zeros((3, 16)),
            verb_bias=np.zeros(3),
            noun_weight=np.zeros((len(tax.nouns), 16)),
            noun_bias=np.zeros(len(tax.nouns)),
            taxonomy=tax,
            embedding_model="x",
        )
    wrong_dim = save_action_head(
        tmp_path / "h.safetensors",
        verb_weight=np.zeros((len(tax.verbs), 8)),
        verb_bias=np.zeros(len(tax.verbs)),
        noun_weight=np.zeros((len(tax.nouns), 8)),
        noun_bias=np.zeros(len(tax.nouns)),
        taxonomy=tax,
        embedding_model="x",
    )
    recognizer = ActionRecognizer(ActionParams(model=models["clip"], head=wrong_dim))
    with pytest.raises(ConfigError, match="head expects 8-d embeddings"):
        recognizer.run_embeddings(np.ones((1, 16), np.float32) / 4)
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ConfigError, match="unreadable"):
        load_action_head(tmp_path / "junk.safetensors")


# --- captioner ----------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["blip", "vit-gpt2"])
def test_image_captioners_caption_each_frame(
    models: dict[str, str], frames: dict[int, list[FrameBatch]], family: str
) -> None:
    captioner = Captioner(CaptionerParams(model=models[family], max_new_tokens=6, batch_size=8))
    assert not captioner.is_chat
    out = captioner.run(frames[1])
    assert len(out.items) == 4
    assert all(len(c) == 1 and isinstance(c[0], str) and c[0] for c in out.items)
    assert captioner.generate_calls == 1  # 4 segments, one batch
    one = Captioner(CaptionerParams(model=models[family], max_new_tokens=6, batch_size=1))
    assert one.run(frames[1]).items == out.items
    assert one.generate_calls == 4
    two = captioner.run(frames[2])  # two frames per segment: up to two captions each
    assert all(1 <= len(c) <= 2 for c in two.items)


def test_blip_prompt_is_a_prefix_that_is_not_repeated(
    models: dict[str, str], frames: dict[int, list[FrameBatch]]
) -> None:
    params = CaptionerParams(model=models["blip"], prompt="a photo of", max_new_tokens=6)
    captions = Captioner(params).run(frames[1]).items
    assert all(not c[0].lower().startswith("a photo of") for c in captions)


def test_encoder_decoder_captioners_take_no_prompt(models: dict[str, str]) -> None:
    params = CaptionerParams(model=models["vit-gpt2"], prompt="a photo of")
    with pytest.raises(ConfigError, match="takes no prompt"):
        Captioner(params).setup()


def test_chat_vlm_sees_all_frames_of_a_segment_in_one_prompt(
    models: dict[str, str], frames: dict[int, list[FrameBatch]], monkeypatch: pytest.MonkeyPatch
) -> None:
    captioner = Captioner(
        CaptionerParams(model=models["llava"], frames_per_segment=2, max_new_tokens=5)
    )
    assert captioner.is_chat
    processor = captioner.loaded.processor
    seen: list[dict] = []
    real = processor.__class__.__call__

    def spy(self, *args, **kwargs):  # record what the model is given
        seen.append(kwargs)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(processor.__class__, "__call__", spy)
    out = captioner.run(frames[2])
    assert len(out.items) == 4 and all(len(c) == 1 and isinstance(c[0], str) for c in out.items)
    assert [len(group) for group in seen[0]["images"]] == [2, 2, 2, 2]
    assert all(t.count("<image>") == 2 and "one sentence" in t for t in seen[0]["text"])
    assert processor.tokenizer.padding_side == "left"
    single = Captioner(
        CaptionerParams(model=models["llava"], frames_per_segment=2, max_new_tokens=5, batch_size=1)
    )
    assert single.run(frames[2]).items == out.items
