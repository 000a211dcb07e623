"""The transformers CPU backend on the tiny random Llama: constraints must hold for every seed.

The model is random, so unconstrained output is gibberish; any valid choice / regex match / schema
instance it produces is the constraint's doing (checked against an unconstrained baseline).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
import regex
from llm_support import tiny_model_dir  # noqa: F401
from pydantic import BaseModel, Field

from vidagent.llm import LLMClient, LLMRequest, StructuredOutput, StructuredOutputUnsupportedError
from vidagent.llm.constrain import ChoiceConstraint
from vidagent.llm.hf_backend import HFBackend
from vidagent.llm.json_regex import schema_to_regex

CHOICES = ["red", "green", "blue", "no", "nope"]


class Part(BaseModel):
    kind: Literal["x", "y"]


class Step(BaseModel):
    verb: Literal["take", "put", "open"]
    count: int = Field(ge=0, le=20)
    done: bool
    note: str = Field(max_length=6)
    tags: list[Literal["a", "b"]] = Field(max_length=3)
    part: Part | None = None


@pytest.fixture(scope="module")
def hf(tiny_model_dir: Path) -> Iterator[HFBackend]:  # noqa: F811
    backend = HFBackend(tiny_model_dir)
    backend.setup()
    yield backend
    asyncio.run(backend.close())


def sample(hf: HFBackend, structured: StructuredOutput | None, seeds: int, **kw: object) -> list:
    requests = [
        LLMRequest.of(f"Question {s}?", structured=structured, temperature=1.5, seed=s, **kw)
        for s in range(seeds)
    ]
    return LLMClient(hf, max_concurrency=4).run_many(requests)


def test_choice_constraint_holds_for_every_seed(hf: HFBackend) -> None:
    results = sample(hf, StructuredOutput.from_choices(CHOICES), 25, n=4, max_tokens=8)
    texts = [t for r in results for t in r.texts]
    assert len(texts) == 100 and set(texts) <= set(CHOICES)
    assert len(set(texts)) >= 3, "sampling still varies within the allowed set"
    assert all(reason == "stop" for r in results for reason in r.finish_reasons)
    baseline = sample(hf, None, 3, n=4, max_tokens=8)
    assert not {t for r in baseline for t in r.texts} & set(CHOICES)


def test_regex_constraint_holds_for_every_seed(hf: HFBackend) -> None:
    pattern = r"(yes|no)-[0-9]{2}"
    results = sample(hf, StructuredOutput.from_regex(pattern), 20, n=4, max_tokens=16)
    texts = [t for r in results for t in r.texts]
    assert len(texts) == 80 and all(regex.fullmatch(pattern, t) for t in texts)
    assert len(set(texts)) > 10


def test_json_schema_outputs_validate(hf: HFBackend) -> None:
    results = sample(hf, StructuredOutput.from_model(Step), 10, n=3, max_tokens=96)
    steps = [r.parse(Step, i) for r in results for i in range(3)]
    assert len(steps) == 30
    assert len({s.verb for s in steps}) > 1


def test_unsupported_schema_keyword_is_an_error_not_unchecked_output(hf: HFBackend) -> None:
    class Coded(BaseModel):
        code: str = Field(pattern=r"^[A-Z]{3}$")

    client = LLMClient(hf)
    with pytest.raises(StructuredOutputUnsupportedError, match="pattern"):
        client.generate_sync(LLMRequest.of("x", structured=StructuredOutput.from_model(Coded)))
    assert client.usage.failed_calls == 1
    client.close()


def test_greedy_is_deterministic_and_returns_n_candidates(hf: HFBackend) -> None:
    client = LLMClient(hf)
    first = client.generate_sync(LLMRequest.of("hello", n=3, max_tokens=10))
    again = client.generate_sync(LLMRequest.of("hello", n=3, max_tokens=10))
    assert len(first.texts) == 3 and len(set(first.texts)) == 1 and again.texts == first.texts
    seeded = [
        client.generate_sync(LLMRequest.of("hello", temperature=1.0, seed=5, max_tokens=10)).text
        for _ in range(2)
    ]
    assert seeded[0] == seeded[1]


def test_stop_strings_cut_the_text_and_max_tokens_cuts_with_length(hf: HFBackend) -> None:
    client = LLMClient(hf)
    stopped = client.generate_sync(
        LLMRequest.of(
            "go", structured=StructuredOutput.from_regex("x{6}y{6}"), stop=["y"], max_tokens=30
        )
    )
    assert (stopped.text, stopped.finish_reasons) == ("xxxxxx", ["stop"])
    cut = client.generate_sync(
        LLMRequest.of("go", structured=StructuredOutput.from_regex("x{50}"), max_tokens=5)
    )
    assert cut.finish_reasons == ["length"] and cut.usage.completion_tokens == 5
    assert regex.fullmatch("x{50}", cut.text, partial=True)


def test_usage_counts_prompt_and_generated_tokens(hf: HFBackend) -> None:
    request = LLMRequest.of("count me", structured=StructuredOutput.from_choices(["blue"]))
    response = LLMClient(hf).generate_sync(request)
    tokenizer = hf._tokenizer
    prompt = tokenizer.apply_chat_template(
        [m.model_dump() for m in request.messages], add_generation_prompt=True, tokenize=False
    )
    assert response.usage.prompt_tokens == len(
        tokenizer(prompt, add_special_tokens=False).input_ids
    )
    blue_ids = tokenizer.encode("blue", add_special_tokens=False)
    assert response.usage.completion_tokens == len(blue_ids) + 1  # + end of sequence


def test_choice_trie_allows_eos_only_at_complete_choices() -> None:
    eos = 0
    trie = ChoiceConstraint([[5, 6], [5, 6, 7], [8]], eos)
    assert sorted(trie.allowed([])) == [5, 8]
    assert trie.allowed([5]) == [6]
    assert sorted(trie.allowed([5, 6])) == [eos, 7]
    assert trie.allowed([5, 6, 7]) == [eos]


def test_schema_regex_matches_exactly_the_valid_compact_documents() -> None:
    pattern = regex.compile(schema_to_regex(StructuredOutput.from_model(Step).json_schema or {}))
    valid = [
        Step(verb="put", count=0, done=True, note="", tags=[]),
        Step(
            verb="open",
            count=20,
            done=False,
            note='a"\\b',
            tags=["a", "b", "a"],
            part=Part(kind="y"),
        ),
    ]
    for step in valid:
        assert pattern.fullmatch(step.model_dump_json())
    invalid = [
        '{"verb":"jump","count":1,"done":true,"note":"","tags":[],"part":null}',
        '{"verb":"put","count":21,"done":true,"note":"","tags":[],"part":null}',
        '{"verb":"put","count":1,"done":true,"note":"toolong","tags":[],"part":null}',
        '{"verb":"put","count":1,"done":true,"note":"","tags":["a","a","a","a"],"part":null}',
        '{"verb":"put","count":1,"done":true,"note":"","tags":[],"part":null,"x":1}',
    ]
    for doc in invalid:
        assert not pattern.fullmatch(doc), doc


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "format": "date"},
        {"type": "number", "minimum": 0},
        {"type": "integer", "minimum": 5},
        {"type": "object", "additionalProperties": {"type": "integer"}},
        {"$defs": {"N": {"anyOf": [{"$ref": "#/$defs/N"}, {"type": "null"}]}}, "$ref": "#/$defs/N"},
        {},
    ],
)
def test_schema_regex_refuses_what_it_cannot_enforce(schema: dict) -> None:
    with pytest.raises(StructuredOutputUnsupportedError):
        schema_to_regex(schema)
