"""A LoRA adapter of the tiny Llama, served three ways: the real vLLM server (``--enable-lora
--lora-modules NAME=DIR``, requests for NAME), the in-process vLLM engine (``LoRARequest``), and
the transformers backend (``PeftModel``). Each must change the output (a random adapter with
non-zero ``lora_B`` moves the logits) and keep guided decoding valid; a mismatched base is one
clear error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Literal

import httpx
import pytest
from llm_support import REPO, tiny_model_dir, unavailable, vllm_python  # noqa: F401
from pydantic import BaseModel, ConfigDict

from vidagent.api.config import LLMSettings
from vidagent.core.errors import ConfigError
from vidagent.llm import LLMClient, LLMRequest, StructuredOutput
from vidagent.llm.adapter import MANIFEST_FILE, AdapterError, AdapterManifest, model_fingerprint
from vidagent.llm.config import LLMConfig, build_backend
from vidagent.llm.hf_backend import HFBackend
from vidagent.testing.vllm_server import lora_flags, server_command, start_vllm_server

CHOICES = ["red", "green", "blue"]
PROMPTS = [f"Name a colour, question {i}." for i in range(6)]


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: Literal["yes", "no"]
    sure: bool


def make_random_adapter(base: Path, out: Path, *, manifest: bool = True) -> Path:
    """A rank-8 LoRA on q/v with noisy lora_B (so it changes the output), saved by peft."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    peft_model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    )
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(1)
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5)
    peft_model.save_pretrained(out)
    if manifest:
        doc = AdapterManifest(
            kind="lora", base_model=str(base), base_fingerprint=model_fingerprint(base),
            task="test", prompt_hash="-", data_hash="-",
        )  # fmt: skip
        (out / MANIFEST_FILE).write_text(doc.model_dump_json())
    return out


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    return make_random_adapter(tiny_model_dir, tmp_path_factory.mktemp("lora") / "tuned")


def greedy(text: str, **kw: object) -> LLMRequest:
    return LLMRequest.of(text, temperature=0.0, max_tokens=12, **kw)  # type: ignore[arg-type]


def test_transformers_backend_applies_the_adapter_and_keeps_constraints(
    tiny_model_dir: Path,  # noqa: F811
    adapter_dir: Path,
) -> None:
    base = LLMClient(HFBackend(tiny_model_dir), max_concurrency=1)
    tuned = LLMClient(HFBackend(tiny_model_dir, adapter=adapter_dir), max_concurrency=1)
    plain_base = [r.text for r in base.run_many([greedy(p) for p in PROMPTS])]
    plain_tuned = tuned.run_many([greedy(p) for p in PROMPTS])
    assert [r.text for r in plain_tuned] != plain_base, "the adapter changed nothing"
    assert plain_tuned[0].model == "tuned"
    choice = StructuredOutput.from_choices(CHOICES)
    texts = [r.text for r in tuned.run_many([greedy(p, structured=choice) for p in PROMPTS])]
    assert set(texts) <= set(CHOICES)
    schema = StructuredOutput.from_model(Verdict)
    requests = [LLMRequest.of(p, structured=schema, max_tokens=48) for p in PROMPTS[:3]]
    for r in tuned.run_many(requests):
        Verdict.model_validate_json(r.text)


def test_settings_and_config_pass_the_adapter_through(
    tiny_model_dir: Path,  # noqa: F811
    adapter_dir: Path,
) -> None:
    from vidagent.cli.options import llm_settings

    settings = llm_settings(
        {"llm_url": None, "llm_model": str(tiny_model_dir), "llm_adapter": adapter_dir}
    )
    config = settings.llm_config(backend="hf", cache=False)
    assert config.adapter == adapter_dir
    backend = build_backend(config).backend
    assert isinstance(backend, HFBackend) and backend.adapter == adapter_dir
    served = LLMSettings(urls=["http://127.0.0.1:1/v1"], model="tuned", adapter=adapter_dir)
    with pytest.raises(ConfigError, match="--lora-modules NAME=DIR"):
        build_backend(served.llm_config(cache=False))


def test_a_base_that_does_not_match_the_manifest_is_one_clear_error(
    tiny_model_dir: Path,  # noqa: F811
    adapter_dir: Path,
    tmp_path: Path,
) -> None:
    other = tmp_path / "other-base"
    shutil.copytree(tiny_model_dir, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "intermediate_size": 512}))
    with pytest.raises(
        AdapterError, match=r"was trained on .* does not match the base model"
    ) as err:
        HFBackend(other, adapter=adapter_dir).setup()
    assert "\n" not in str(err.value)
    with pytest.raises(AdapterError, match="no such folder"):
        HFBackend(tiny_model_dir, adapter=tmp_path / "missing").setup()


def test_server_command_gets_the_lora_flags(adapter_dir: Path) -> None:
    assert lora_flags({}) == []
    cmd = server_command(
        Path("python"), Path("m"), host="h", port=1, served_model_name="tiny",
        lora_modules={"tuned": adapter_dir},
    )  # fmt: skip
    tail = cmd[cmd.index("--enable-lora") :]
    assert tail == [
        "--enable-lora",
        "--lora-modules",
        f"tuned={adapter_dir.resolve()}",
        "--max-lora-rank",
        "8",
    ]


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_server_serves_the_adapter_by_name(
    tiny_model_dir: Path,  # noqa: F811
    adapter_dir: Path,
    tmp_path: Path,
) -> None:
    python = vllm_python()
    if python is None:
        unavailable("no vLLM venv for the LoRA server test (VIDAGENT_VLLM_PYTHON)")
    with start_vllm_server(
        python, tiny_model_dir, log_path=tmp_path / "lora.log", lora_modules={"tuned": adapter_dir}
    ) as server:
        models = httpx.get(f"{server.url}/v1/models").json()["data"]
        by_id = {m["id"]: m for m in models}
        assert by_id["tuned"]["parent"] == "tiny"
        clients = {
            name: build_backend(LLMConfig(urls=[f"{server.url}/v1"], model=name, cache=False))
            for name in ("tiny", "tuned")
        }
        outs = {
            n: [r.text for r in c.run_many([greedy(p) for p in PROMPTS])]
            for n, c in clients.items()
        }
        assert outs["tuned"] != outs["tiny"], "the served adapter changed nothing"
        tuned = clients["tuned"]
        choice = StructuredOutput.from_choices(CHOICES)
        assert {
            r.text for r in tuned.run_many([greedy(p, structured=choice) for p in PROMPTS])
        } <= set(CHOICES)
        schema = StructuredOutput.from_model(Verdict)
        for r in tuned.run_many(
            [
                LLMRequest.of(p, structured=schema, temperature=1.0, seed=2, max_tokens=48)
                for p in PROMPTS[:3]
            ]
        ):
            Verdict.model_validate_json(r.text)
        for client in clients.values():
            client.close()


SCRIPT = """
import asyncio, json, sys
from vidagent.llm import LLMClient, LLMRequest, StructuredOutput
from vidagent.llm.vllm_backend import VLLMBackend

ARGS = dict(dtype="float32", max_model_len=512, enforce_eager=True,
            kv_cache_memory_bytes=256 * 1024 * 1024,
            structured_outputs_config={"backend": "guidance", "disable_any_whitespace": True})
PROMPTS = json.loads(sys.argv[3])

def run(adapter):
    backend = VLLMBackend(sys.argv[1], engine_args=ARGS, adapter=adapter)
    client = LLMClient(backend, max_concurrency=16)
    plain = [r.text for r in client.run_many(
        [LLMRequest.of(p, temperature=0.0, max_tokens=12) for p in PROMPTS])]
    choice = StructuredOutput.from_choices(["red", "green", "blue"])
    chosen = [r.text for r in client.run_many(
        [LLMRequest.of(p, structured=choice, temperature=0.0, max_tokens=8) for p in PROMPTS])]
    model = client.run_many([LLMRequest.of("x", max_tokens=2)])[0].model
    base = [r.text for r in client.run_many(
        [LLMRequest.of(p, temperature=0.0, max_tokens=12).model_copy(update={"model": sys.argv[1]})
         for p in PROMPTS])]
    client.close()
    return {"plain": plain, "choice": chosen, "model": model, "base": base}

if __name__ == "__main__":  # vLLM's engine core re-imports this file in a spawned process
    print("RESULT " + json.dumps({"tuned": run(sys.argv[2])}))
"""


@pytest.mark.vllm
@pytest.mark.slow
def test_in_process_vllm_applies_the_adapter_with_a_lora_request(
    tiny_model_dir: Path,  # noqa: F811
    adapter_dir: Path,
    tmp_path: Path,
) -> None:
    python = vllm_python()
    if python is None:
        unavailable("no vLLM venv for the in-process LoRA test (VIDAGENT_VLLM_PYTHON)")
    script = tmp_path / "run_lora.py"
    script.write_text(SCRIPT)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
    }
    proc = subprocess.run(
        [str(python), str(script), str(tiny_model_dir), str(adapter_dir), json.dumps(PROMPTS)],
        capture_output=True, text=True, env=env, timeout=400, cwd=tmp_path,
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    tuned = json.loads(lines[0].removeprefix("RESULT "))["tuned"]
    assert tuned["plain"] != tuned["base"], "the LoRARequest changed nothing"
    assert set(tuned["choice"]) <= set(CHOICES) and tuned["model"] == "tuned"
