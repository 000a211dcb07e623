"""Build a tiny random Llama + tokenizer that a real vLLM server (and transformers) can load.

Tests and the throughput bench need a real model behind a real ``vllm serve``, but no weights can be
downloaded here and CI machines are CPU-only. This module writes, in well under a second, a
2-layer Llama with random (seeded) weights and a byte-level BPE tokenizer trained in memory, exactly
as described in ``shared/notes/vllm-cpu.md``:

- a byte-level BPE vocabulary of ~384 (the project's in-memory tokenizer trainer) with the special
  tokens ``<s> </s> <pad> <unk> <tool_call> </tool_call>``;
- ``head_dim`` = 128 / 4 = 32 (vLLM's CPU attention dies on the first request with 16);
- ``torch.manual_seed(0)`` before building the model, so the same prompt, seed and temperature give
  the same text across builds and server restarts.

The chat template renders system/user/assistant/tool turns and, when tools are given, lists them
and shows hermes-style ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` calls, which is
what vLLM's ``hermes`` tool-call parser expects. The model is random: tests check structure (valid
choice, schema, token counts, finish reasons), never content.

Run as ``python -m agent.llm.tiny OUT_DIR``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ["<s>", "</s>", "<pad>", "<unk>", "<tool_call>", "</tool_call>"]
VOCAB_SIZE = 384
CONTEXT_LENGTH = 4096
"""Positions of the tiny Llama: room for the chat agent's tool schemas and a timeline."""

CHAT_TEMPLATE = """\
{{- bos_token -}}
{%- if tools -%}
<|system|>
You can call these tools:
<tools>
{% for tool in tools %}{{ tool | tojson }}
{% endfor %}</tools>
To call a tool answer with <tool_call>{"name": NAME, "arguments": {...}}</tool_call>
{% endif -%}
{%- for message in messages -%}
{%- if message.role == 'assistant' -%}
<|assistant|>
{% if message.content %}{{ message.content }}{% endif -%}
{%- if message.tool_calls -%}
{%- for call in message.tool_calls -%}
{%- set fn = call.function if call.function is defined else call -%}
<tool_call>{"name": "{{ fn.name }}", "arguments": \
{% if fn.arguments is string %}{{ fn.arguments }}{% else %}{{ fn.arguments | tojson }}{% endif %}}\
</tool_call>
{%- endfor -%}
{%- endif -%}
{{ eos_token }}
{% elif message.role == 'tool' -%}
<|tool|>
{{ message.content }}{{ eos_token }}
{% else -%}
<|{{ message.role }}|>
{{ message.content }}{{ eos_token }}
{% endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
<|assistant|>
{% endif -%}
"""


def build_tokenizer() -> Any:
    """The tiny model's tokenizer, with the chat template above.

    Byte-level BPE trained in memory by :func:`vidagent.testing.tiny_models.train_tokenizer` (the
    project's one tokenizer trainer); the tool-call markers are single special tokens, as vLLM's
    hermes parser requires.
    """
    from vidagent.testing.tiny_models import train_tokenizer

    return train_tokenizer(
        SPECIAL_TOKENS,
        bos="<s>",
        eos="</s>",
        pad="<pad>",
        unk="<unk>",
        vocab_size=VOCAB_SIZE,
        model_max_length=CONTEXT_LENGTH,
        extra={
            "additional_special_tokens": ["<tool_call>", "</tool_call>"],
            "chat_template": CHAT_TEMPLATE,
        },
    )


def build_tiny_llama(out_dir: str | Path) -> Path:
    """Write the tiny random Llama and its tokenizer into ``out_dir``; return the folder.

    Deterministic: two builds give identical weights and vocabulary.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    vocab = tokenizer.get_vocab()
    ids = {name: vocab[name] for name in ("<s>", "</s>", "<pad>")}
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=CONTEXT_LENGTH,
        tie_word_embeddings=False,
        bos_token_id=ids["<s>"],
        eos_token_id=ids["</s>"],
        pad_token_id=ids["<pad>"],
    )
    with torch.random.fork_rng(devices=[]):  # seed 0 without disturbing the caller's RNG
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"]
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m agent.llm.tiny OUT_DIR``: build the model and print its folder."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m agent.llm.tiny OUT_DIR", file=sys.stderr)
        return 2
    print(build_tiny_llama(args[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
