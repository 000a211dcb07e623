"""The in-process vLLM backend: request translation here, and a real run in the vLLM venv.

vllm is not installed in the project venv (it lives in its own venv), so the real run is a
subprocess with that venv's Python importing this checkout: the tiny Llama on ``vllm.LLM`` on CPU,
through :class:`LLMClient`, with concurrent requests micro-batched into ``LLM.chat`` calls.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Literal

import pytest
from llm_support import REPO, tiny_model_dir, unavailable, vllm_python  # noqa: F401
from pydantic import BaseModel, ConfigDict

from vidagent.core.errors import MissingDependencyError
from vidagent.llm import LLMRequest, StructuredOutput
from vidagent.llm.vllm_backend import VLLMBackend, sampling_kwargs


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: Literal["yes", "no"]
    sure: bool


SCRIPT = """
import asyncio, json, sys
from pydantic import BaseModel
from typing import Literal
from vidagent.llm import LLMClient, LLMRequest, StructuredOutput, LLMRequestError
from vidagent.llm.vllm_backend import VLLMBackend

class Verdict(BaseModel):
    answer: Literal["yes", "no"]
    sure: bool

async def main() -> None:
    backend = VLLMBackend(sys.argv[1], engine_args=dict(
        dtype="float32", max_model_len=512, enforce_eager=True,
        kv_cache_memory_bytes=256 * 1024 * 1024,
        structured_outputs_config={"backend": "guidance", "disable_any_whitespace": True}))
    await asyncio.to_thread(backend.setup)
    batches = []
    chat = backend._llm.chat
    def counting_chat(conversations, params, **kw):
        batches.append(len(conversations))
        return chat(conversations, params, **kw)
    backend._llm.chat = counting_chat
    client = LLMClient(backend, max_concurrency=64)
    choice = StructuredOutput.from_choices(["red", "green", "blue"])
    requests = [LLMRequest.of(f"q{i}", structured=choice, temperature=1.0, max_tokens=8)
                for i in range(24)]
    requests.append(LLMRequest.of("j", structured=StructuredOutput.from_model(Verdict),
                                  temperature=1.0, seed=3, n=3, max_tokens=64))
    requests.append(LLMRequest.of("r", structured=StructuredOutput.from_regex("(yes|no)-[0-9]{2}"),
                                  temperature=1.0, n=5, max_tokens=16))
    requests.append(LLMRequest.of("m").model_copy(update={"model": "other"}))
    results = await client.generate_many(requests)
    out = {"texts": [r.texts if not isinstance(r, Exception) else None for r in results],
           "errors": [str(r) for r in results if isinstance(r, Exception)],
           "usage": client.usage.model_dump(), "batches": batches}
    await client.aclose()
    print("RESULT " + json.dumps(out))

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_sampling_params_translation_uses_structured_outputs() -> None:
    request = LLMRequest.of(
        "x",
        structured=StructuredOutput.from_regex("a|b"),
        temperature=0.5,
        top_p=0.8,
        max_tokens=9,
        seed=2,
        n=3,
        stop=["."],
    )
    kwargs = sampling_kwargs(request)
    assert kwargs == {
        "n": 3,
        "temperature": 0.5,
        "top_p": 0.8,
        "max_tokens": 9,
        "seed": 2,
        "stop": ["."],
        "structured_outputs": {"regex": "a|b"},
    }
    assert "structured_outputs" not in sampling_kwargs(LLMRequest.of("x"))


def test_missing_vllm_is_a_clear_install_hint() -> None:
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("not applicable here: vllm is installed in this venv")
    with pytest.raises(MissingDependencyError, match=r"vidagent\[gpu\]"):
        VLLMBackend("some/model").setup()


@pytest.mark.vllm
@pytest.mark.slow
def test_in_process_engine_answers_a_concurrent_batch(
    tiny_model_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    python = vllm_python()
    if python is None:
        unavailable("no vLLM venv for the in-process engine test (VIDAGENT_VLLM_PYTHON)")
    script = tmp_path / "run_vllm_backend.py"
    script.write_text(SCRIPT)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
    }
    proc = subprocess.run(
        [str(python), str(script), str(tiny_model_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
        cwd=tmp_path,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[0].removeprefix("RESULT "))
    texts = out["texts"]
    assert all(t is not None and t[0] in {"red", "green", "blue"} for t in texts[:24])
    verdicts = [Verdict.model_validate_json(t) for t in texts[24]]
    assert len(verdicts) == 3
    assert len(texts[25]) == 5 and all(re.fullmatch(r"(yes|no)-[0-9]{2}", t) for t in texts[25])
    assert texts[26] is None and "not other" in out["errors"][0]
    assert sum(out["batches"]) == 26 and len(out["batches"]) < 26, out["batches"]
    assert out["usage"]["calls"] == 26 and out["usage"]["completion_tokens"] > 24
