"""Every shipped prompt rendered on a frozen sample and compared exactly with tests/snapshots/.

``UPDATE_SNAPSHOTS=1 pytest tests/test_prompts.py`` rewrites the snapshot files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from vidagent.prompts import list_prompts
from vidagent.prompts.loader import PromptError, load_prompt, render_text

SNAPSHOTS = Path(__file__).parent / "snapshots"
TIMELINE = (
    "Video: 6.0s, 3 segments.\n"
    "<seg_0> [0.0s-2.0s] a hand opens a drawer | actions: open drawer (0.81)\n"
    "<seg_1> [2.0s-4.0s] a knife on a board | actions: take knife (0.64)\n"
    "<seg_2> [4.0s-6.0s] an onion is cut | actions: cut onion (0.77)"
)
EXAMPLES = [{"input": "What is opened? A. door B. jar", "target": "B"}]
SAMPLES: dict[str, dict[str, Any]] = {
    "qa_open.yaml": {"timeline": TIMELINE, "question": "What is cut?", "examples": EXAMPLES},
    "qa_choice.yaml": {
        "timeline": TIMELINE,
        "question": "What is cut?",
        "options": [{"letter": "A", "text": "an onion"}, {"letter": "B", "text": "a door"}],
        "examples": EXAMPLES,
    },
    "lta.yaml": {
        "observed": "open drawer, take knife, cut onion",
        "context": "a hand opens a drawer; an onion is cut",
        "z": 20,
        "examples": [{"input": "take knife, cut onion", "target": "put knife, wash hands"}],
    },
    "localize.yaml": {
        "timeline": TIMELINE,
        "query": "someone cuts an onion",
        "examples": [{"input": "door opens", "target": "<seg_1> <seg_2>"}],
    },
    "chat_system.yaml": {
        "timeline": TIMELINE,
        "duration": "6.0s",
        "num_segments": 3,
        "videos": ["v"],
    },
    "caption.yaml": {},
}


def test_every_shipped_prompt_has_a_sample() -> None:
    assert sorted(SAMPLES) == list_prompts()


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_prompt_snapshot(name: str) -> None:
    messages = load_prompt(name).render(SAMPLES[name])
    text = "".join(f"=== {m.role} ===\n{m.content}\n" for m in messages)
    path = SNAPSHOTS / f"{Path(name).stem}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path}: run with UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(n for n, v in SAMPLES.items() if v))
def test_a_missing_variable_is_an_error(name: str) -> None:
    variables = dict(SAMPLES[name])
    variables.pop(sorted(variables)[-1])
    with pytest.raises(PromptError, match="not provided"):
        load_prompt(name).render(variables)


def test_user_prompt_file_and_its_errors(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("user: 'Q: {{ question }}'\n")
    [message] = load_prompt(mine).render({"question": "why?"})
    assert message.role == "user" and message.content == "Q: why?"
    bad = tmp_path / "bad.yaml"
    bad.write_text("user: '{% for x in %}'\n")
    with pytest.raises(PromptError, match=r"bad\.yaml"):
        load_prompt(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("name: nothing\n")
    with pytest.raises(PromptError, match="needs a 'system' or 'user'"):
        load_prompt(empty)
    with pytest.raises(PromptError, match="no such file"):
        load_prompt(tmp_path / "missing.yaml")
    with pytest.raises(PromptError, match="typo"):
        load_prompt(_write(tmp_path / "typo.yaml", "usr: hi\n"))
    with pytest.raises(PromptError, match="'who' is undefined"):
        render_text("hi {{ who }}", {})


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_caption_instruction_comes_from_its_prompt_file_and_is_in_the_cache_key() -> None:
    from vidagent.tools.captioner import (
        Captioner,
        CaptionerParams,
        ServedCaptioner,
        ServedCaptionerParams,
        default_caption_prompt,
    )

    shipped = load_prompt("caption").render({})[0].content.strip()
    assert default_caption_prompt() == shipped and "frames of a short video clip" in shipped
    served = ServedCaptioner(ServedCaptionerParams(model="vlm", base_url="http://x/v1"))
    assert served.build_request([])["messages"][0]["content"][-1]["text"] == shipped
    assert served.cache_params()["prompt"] == shipped
    own = ServedCaptioner(ServedCaptionerParams(model="vlm", base_url="http://x/v1", prompt="Hi"))
    assert own.cache_params()["prompt"] == "Hi"
    local = Captioner(CaptionerParams(model="some/model"))
    local._fingerprint = "fp"  # no hub lookup
    assert local.cache_params()["prompt"] == shipped
