"""Tiny random-weight vision models, built offline, for tests and ``vidagent demo``.

Each ``build_*`` writes a complete Hugging Face checkpoint folder (``save_pretrained`` of the model
and of its processor or image processor + tokenizer) that loads through exactly the code users run
with hub ids (:func:`vidagent.tools.models.load_model`): nothing here is a fake class. Tokenizers
are byte-level BPE trained in memory on :data:`CORPUS` with ``tokenizers``, so any text tokenizes.
The weights are random (seeded: the same folder every time), so outputs have the right types and
shapes but no meaning: captions are junk text, labels are arbitrary.

Sizes: the ``tiny`` models have ~50k-300k parameters and build, save and load in well under a
second each. :func:`build_random_clip` and :func:`build_random_blip` build real-size architectures
(CLIP ViT-B/16, BLIP base) with random weights, for realistic CPU throughput in ``bench/``.

A folder that already holds a finished build (``.vidagent-tiny`` marker) is reused as is.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MARKER = ".vidagent-tiny"
CORPUS = (
    "a person is cutting an onion on a wooden table in the kitchen",
    "someone takes a cup from the shelf and puts it down next to the sink",
    "a man opens the door and walks into the room with a bag",
    "a woman picks up a knife, washes the plate and closes the drawer",
    "the camera shows a hand holding a phone while turning on the light",
    "a photo of a dog running on the grass in the park near a car",
    "take pick grab get put place leave drop open close cut wash hold turn off on move",
    "cup plate knife onion door drawer bag phone light sink table shelf box bottle water",
    "Describe what is happening in this video clip in one sentence.",
    "0 1 2 3 4 5 6 7 8 9 , . : ; ! ? ( ) - / ' \"",
)
_TINY_TEXT: dict[str, Any] = {
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 37,
}
_TINY_VISION: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
}


def _done(folder: Path) -> bool:
    return (folder / MARKER).exists() and (folder / "config.json").exists()


def _finish(folder: Path, kind: str) -> Path:
    (folder / MARKER).write_text(json.dumps({"kind": kind}) + "\n")
    return folder


@contextlib.contextmanager
def _seeded(seed: int = 0) -> Iterator[None]:
    """Deterministic weights without disturbing the caller's global RNG."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def train_tokenizer(
    specials: list[str],
    *,
    bos: str | None,
    eos: str,
    pad: str,
    unk: str | None = None,
    template: str | None = None,
    vocab_size: int = 512,
    model_max_length: int = 64,
    extra: dict[str, Any] | None = None,
) -> Any:
    """A byte-level BPE tokenizer trained in memory on :data:`CORPUS`, as a transformers tokenizer.

    ``template`` is a ``tokenizers`` TemplateProcessing for single sequences (``"<s> $A </s>"``).
    """
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors, trainers
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(CORPUS) * 4, trainer)
    if template:
        used = [(s, tok.token_to_id(s)) for s in specials if s in template.split()]
        tok.post_processor = processors.TemplateProcessing(single=template, special_tokens=used)
    kwargs: dict[str, Any] = {"eos_token": eos, "pad_token": pad, "unk_token": unk or specials[0]}
    if bos:
        kwargs["bos_token"] = bos
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, model_max_length=model_max_length, **kwargs, **(extra or {})
    )


def _image_processor(name: str, **kwargs: Any) -> Any:
    """``XxxImageProcessorPil`` when torchvision is absent (no warning), else the default class."""
    import transformers
    from transformers.utils import is_torchvision_available

    cls = getattr(transformers, name)
    if not is_torchvision_available():
        cls = getattr(transformers, f"{name}Pil", cls)
    return cls(**kwargs)


def _set_generation_ids(model: Any, **ids: int | None) -> None:
    """Generation needs its special ids on both the config and the generation config."""
    for cfg in (model.config, model.generation_config):
        for name, value in ids.items():
            setattr(cfg, name, value)


def _clip_processor(tokenizer: Any, image_size: int) -> Any:
    from transformers import CLIPProcessor

    size = {"height": image_size, "width": image_size}
    ip = _image_processor("CLIPImageProcessor", size={"shortest_edge": image_size}, crop_size=size)
    return CLIPProcessor(image_processor=ip, tokenizer=tokenizer)


def _clip_tokenizer(model_max_length: int) -> Any:
    return train_tokenizer(
        ["<unk>", "<pad>", "<s>", "</s>"],  # </s> must not be id 2 (CLIP's legacy eos pooling)
        bos="<s>",
        eos="</s>",
        pad="<pad>",
        template="<s> $A </s>",
        model_max_length=model_max_length,
    )


def build_tiny_clip(folder: str | Path) -> Path:
    """CLIP (hidden 32, 2 layers, 32 px images, patch 8, projection 16): ~70k parameters."""
    folder = Path(folder)
    if _done(folder):
        return folder
    from transformers import CLIPConfig, CLIPModel

    tok = _clip_tokenizer(64)
    text = {**_TINY_TEXT, "hidden_size": 32, "vocab_size": len(tok), "max_position_embeddings": 64}
    text.update(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    text["pad_token_id"] = tok.pad_token_id
    cfg = CLIPConfig(text_config=text, vision_config=_TINY_VISION, projection_dim=16)
    with _seeded():
        model = CLIPModel(cfg)
    model.save_pretrained(folder)
    _clip_processor(tok, 32).save_pretrained(folder)
    return _finish(folder, "clip")


def build_tiny_siglip(folder: str | Path) -> Path:
    """SigLIP (hidden 32, 2 layers, 32 px images, patch 8, 64 text positions)."""
    folder = Path(folder)
    if _done(folder):
        return folder
    from transformers import SiglipConfig, SiglipModel, SiglipProcessor

    tok = train_tokenizer(
        ["<unk>", "<pad>", "</s>"], bos=None, eos="</s>", pad="<pad>", template="$A </s>"
    )
    text = {**_TINY_TEXT, "hidden_size": 32, "vocab_size": len(tok), "max_position_embeddings": 64}
    text.update(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    cfg = SiglipConfig(text_config=text, vision_config=_TINY_VISION)
    with _seeded():
        model = SiglipModel(cfg)
    ip = _image_processor("SiglipImageProcessor", size={"height": 32, "width": 32})
    model.save_pretrained(folder)
    SiglipProcessor(image_processor=ip, tokenizer=tok).save_pretrained(folder)
    return _finish(folder, "siglip")


def build_tiny_blip(folder: str | Path) -> Path:
    """BLIP image captioning (BlipForConditionalGeneration), hidden 32, 2+2 layers."""
    return _build_blip(Path(folder), tiny=True)


def build_random_blip(folder: str | Path) -> Path:
    """BLIP base architecture (ViT-B/16 at 384 px + BERT-base decoder), random weights (~250M)."""
    return _build_blip(Path(folder), tiny=False)


def _build_blip(folder: Path, *, tiny: bool) -> Path:
    if _done(folder):
        return folder
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipProcessor

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[DEC]"]
    extra = {"sep_token": "[SEP]", "cls_token": "[CLS]"}
    tok = train_tokenizer(
        specials, bos="[DEC]", eos="[SEP]", pad="[PAD]", unk="[UNK]", template="[CLS] $A [SEP]"
    )
    tok.add_special_tokens(extra)
    ids = {
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.sep_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    if tiny:
        text = {**_TINY_TEXT, "hidden_size": 32, "max_position_embeddings": 64}
        vision = {**_TINY_VISION, "initializer_range": 0.02}  # BLIP's default 1e-10: flat features
        image_size = 32
    else:
        text = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12}
        text.update(intermediate_size=3072, max_position_embeddings=512)
        vision = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12}
        vision.update(intermediate_size=3072, image_size=384, patch_size=16, initializer_range=0.02)
        image_size = 384
    text.update(vocab_size=len(tok), sep_token_id=tok.sep_token_id, **ids)
    cfg = BlipConfig(text_config=text, vision_config=vision, projection_dim=16 if tiny else 512)
    with _seeded():
        model = BlipForConditionalGeneration(cfg)
    _set_generation_ids(model, **ids)
    ip = _image_processor("BlipImageProcessor", size={"height": image_size, "width": image_size})
    model.save_pretrained(folder)
    BlipProcessor(image_processor=ip, tokenizer=tok).save_pretrained(folder)
    return _finish(folder, "blip" if tiny else "blip-base-random")


LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | upper }}: "
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}\n"
    "{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def build_tiny_llava(folder: str | Path) -> Path:
    """LLaVA (tiny CLIP vision tower + tiny Llama, with a chat template), ~150k parameters."""
    folder = Path(folder)
    if _done(folder):
        return folder
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tok = train_tokenizer(
        ["<unk>", "<s>", "</s>", "<pad>", "<image>"],
        bos="<s>",
        eos="</s>",
        pad="<pad>",
        model_max_length=512,
        extra={"extra_special_tokens": {"image_token": "<image>"}},
    )
    ids = {
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    vision = CLIPVisionConfig(**_TINY_VISION)
    text = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        **ids,
    )
    cfg = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    with _seeded():
        model = LlavaForConditionalGeneration(cfg)
    _set_generation_ids(model, **ids)
    size = {"height": 32, "width": 32}
    ip = _image_processor("CLIPImageProcessor", size={"shortest_edge": 32}, crop_size=size)
    processor = LlavaProcessor(
        image_processor=ip,
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_CHAT_TEMPLATE,
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return _finish(folder, "llava")


def build_tiny_vit_gpt2(folder: str | Path) -> Path:
    """VisionEncoderDecoder (tiny ViT + tiny GPT-2) saved like the hub's vit-gpt2 captioners:
    an image processor and a tokenizer, no processor class."""
    folder = Path(folder)
    if _done(folder):
        return folder
    from transformers import (
        GPT2Config,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
    )

    tok = train_tokenizer(["<unk>", "<pad>", "<s>", "</s>"], bos="<s>", eos="</s>", pad="<pad>")
    bos, eos, pad = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
    encoder = ViTConfig(**_TINY_VISION)
    decoder = GPT2Config(  # type: ignore[call-arg]
        vocab_size=len(tok),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=64,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
        add_cross_attention=True,
        is_decoder=True,
        tie_word_embeddings=False,  # tied random embeddings echo the start token (empty captions)
    )
    cfg = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    with _seeded():
        model = VisionEncoderDecoderModel(cfg)
    _set_generation_ids(
        model, decoder_start_token_id=bos, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad
    )
    model.save_pretrained(folder)
    _image_processor("ViTImageProcessor", size={"height": 32, "width": 32}).save_pretrained(folder)
    tok.save_pretrained(folder)
    return _finish(folder, "vit-gpt2")


def build_random_clip(folder: str | Path) -> Path:
    """CLIP ViT-B/16 architecture (224 px, 512-d projection; ~150M parameters), random weights.

    For realistic CPU throughput in benchmarks; the tokenizer is the small trained one.
    """
    folder = Path(folder)
    if _done(folder):
        return folder
    from transformers import CLIPConfig, CLIPModel

    tok = _clip_tokenizer(77)
    text = {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12}
    text.update(num_attention_heads=8, max_position_embeddings=77, vocab_size=49408)
    text.update(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    vision = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12}
    vision.update(num_attention_heads=12, image_size=224, patch_size=16)
    cfg = CLIPConfig(text_config=text, vision_config=vision, projection_dim=512)
    with _seeded():
        model = CLIPModel(cfg)
    model.save_pretrained(folder)
    _clip_processor(tok, 224).save_pretrained(folder)
    return _finish(folder, "clip-vit-b16-random")


TINY_BUILDERS: dict[str, Callable[[str | Path], Path]] = {
    "clip": build_tiny_clip,
    "siglip": build_tiny_siglip,
    "blip": build_tiny_blip,
    "llava": build_tiny_llava,
    "vit-gpt2": build_tiny_vit_gpt2,
}
"""Builders by family name: ``TINY_BUILDERS["clip"](folder)``."""


def build_tiny(kind: str, root: str | Path) -> Path:
    """Build (or reuse) the tiny model ``kind`` in ``root/<kind>``."""
    if kind not in TINY_BUILDERS:
        raise KeyError(f"unknown tiny model {kind!r} (one of {sorted(TINY_BUILDERS)})")
    return TINY_BUILDERS[kind](Path(root) / kind)
