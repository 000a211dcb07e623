"""Task flows with the in-process transformers backend on the tiny Llama (real constrained
decoding), plus the pure parts: relevance selection, span refinement, the fuzzy taxonomy mapper."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llm_support import tiny_model_dir
from test_tasks_support import (
    Perceived,
    all_text,
    assert_candidates,
    big_taxonomy,
    labelled_timeline,
    perceived,
    shown_tokens,
)

from vidagent.llm import LLMConfig, build_backend
from vidagent.tasks import (
    AnswerResult,
    AnticipateSpec,
    AnticipationResult,
    ChoiceAnswerSpec,
    LocalizationResult,
    LocalizeSpec,
    RunRecord,
    TaskDeps,
    TaskOptions,
    answer_question,
    anticipate_actions,
    localize_query,
    map_to_taxonomy,
    refine_span,
    run_tasks,
    segment_relevance,
)
from vidagent.tasks.anticipate import lta_schema, output_bound
from vidagent.tasks.steps import timeline_text
from vidagent.tools.actions import Taxonomy

__all__ = ["perceived", "tiny_model_dir"]

CONTEXT = TaskOptions(k=2, max_timeline_chars=400)


@pytest.fixture(scope="module")
def llm(tiny_model_dir: Path) -> Iterator[Any]:
    client = build_backend(LLMConfig(backend="hf", hf_model=str(tiny_model_dir), cache=False))
    yield client
    client.close()


def test_multiple_choice_answer_is_an_option_with_vote_and_evidence(
    perceived: Perceived, llm: Any
) -> None:
    options = ["an onion", "a door", "a cup"]
    result = answer_question(
        perceived.timeline,
        "What is cut?",
        options,
        llm=llm,
        bank=perceived.bank,
        context=CONTEXT,
        samples=3,
        **perceived.embeds(),
    )
    assert result.letter in ("A", "B", "C") and result.answer == options["ABC".index(result.letter)]
    assert sum(result.votes.values()) == 3 and result.votes[result.letter] == max(
        result.votes.values()
    )
    run = result.run
    [call] = run.calls
    assert call.structured is not None and call.structured.choices == ["A", "B", "C"]
    assert call.n == 3 and call.temperature > 0 and len(call.texts) == 3
    sent = all_text(call.messages)
    assert {e.input for e in run.examples} == {"What is cut? QAMARK1", "Where is the cup? QAMARK2"}
    for ex in run.examples:
        assert ex.input in sent
    for token in shown_tokens(perceived.timeline, run.segments_shown):
        assert token in sent
    assert {c.index for c in result.citations} <= set(run.segments_shown)
    assert result.cited_by == "relevance" and run.usage.prompt_tokens > 0
    assert set(run.timings) >= {"relevance", "render", "examples", "prompt", "llm", "parse"}
    again = RunRecord.model_validate_json(run.dump())
    assert again == run


def test_open_answer_cites_shown_segments(perceived: Perceived, llm: Any) -> None:
    result = answer_question(
        perceived.timeline,
        "What happens?",
        llm=llm,
        context=CONTEXT,
        max_answer_chars=20,
        **perceived.embeds(),
    )
    assert result.cited_by == "model" and result.citations
    assert {c.index for c in result.citations} <= set(result.run.segments_shown)
    data = json.loads(result.run.calls[0].texts[0])
    assert data["answer"].strip() == result.answer and len(result.answer) <= 20
    assert result.run.examples == []  # no bank given


def test_anticipation_is_k_by_z_taxonomy_members(perceived: Perceived, llm: Any) -> None:
    tax = Taxonomy.basic()
    result = anticipate_actions(
        perceived.timeline,
        verbs=tax.verbs,
        nouns=tax.nouns,
        llm=llm,
        bank=perceived.bank,
        context=TaskOptions(k=1),
        observed=3,
        z=4,
        k=3,
    )
    assert len(result.candidates) == 3 and result.valid_rate == 1.0
    assert all(c.valid and c.error is None for c in result.candidates)
    assert_candidates(result.candidates, tax.verbs, tax.nouns, 4)
    assert result.observed_segments == [0, 1, 2]
    sent = all_text(result.run.calls[0].messages)
    assert result.run.examples and result.run.examples[0].input in sent
    assert result.observed in sent


def test_hf_backend_accepts_an_ego4d_size_schema(perceived: Perceived, llm: Any) -> None:
    verbs, nouns = big_taxonomy()
    result = anticipate_actions(
        perceived.timeline, verbs=verbs, nouns=nouns, llm=llm, z=2, k=1, max_context_chars=20
    )
    [cand] = result.candidates
    assert cand.valid
    assert_candidates([cand], verbs, nouns, 2)


def test_unguided_outputs_are_mapped_and_counted(perceived: Perceived, llm: Any) -> None:
    tax = Taxonomy.basic()
    result = anticipate_actions(
        perceived.timeline, verbs=tax.verbs, nouns=tax.nouns, llm=llm, z=3, k=2, guided=False
    )
    assert result.run.calls[0].structured is None
    assert 0.0 <= result.valid_rate <= 1.0
    assert_candidates(result.candidates, tax.verbs, tax.nouns, 3)


def test_localized_span_lies_inside_the_video(perceived: Perceived, llm: Any) -> None:
    result = localize_query(
        perceived.timeline,
        "a door opens",
        llm=llm,
        bank=perceived.bank,
        context=CONTEXT,
        **perceived.embeds(),
    )
    duration = perceived.timeline.video.duration
    assert 0.0 <= result.start < result.end <= duration + 1e-6
    tokens = shown_tokens(perceived.timeline, result.run.segments_shown)
    assert result.llm_start_token in tokens and result.llm_end_token in tokens
    schema = result.run.calls[0].structured.json_schema  # type: ignore[union-attr]
    assert schema["properties"]["start"]["enum"] == tokens
    assert "door opens LOCMARK1" in all_text(result.run.calls[0].messages)


def test_one_batch_runs_all_three_tasks_on_the_backend(perceived: Perceived, llm: Any) -> None:
    tax = Taxonomy.basic()
    deps = TaskDeps(llm=llm, bank=perceived.bank, options=CONTEXT, **perceived.embeds())
    timeline = perceived.timeline
    choice, span, future = run_tasks(
        [
            (ChoiceAnswerSpec("What is cut?", ("an onion", "a door")), timeline),
            (LocalizeSpec("a door opens"), timeline),
            (AnticipateSpec(tuple(tax.verbs), tuple(tax.nouns), observed=2, z=2, k=2), timeline),
        ],
        deps,
    )
    assert isinstance(choice, AnswerResult) and choice.answer in ("an onion", "a door")
    assert "What is cut? QAMARK1" in all_text(choice.run.calls[0].messages)
    assert isinstance(span, LocalizationResult) and 0.0 <= span.start < span.end
    assert "door opens LOCMARK1" in all_text(span.run.calls[0].messages)
    assert isinstance(future, AnticipationResult) and future.valid_rate == 1.0
    assert future.observed_segments == [0, 1] and len(future.candidates) == 2


def test_long_video_keeps_the_segments_relevant_to_the_question(perceived: Perceived) -> None:
    captions = ["a dog runs on the grass"] * 12
    captions[7] = "a man slices an onion with a knife"
    timeline = labelled_timeline(captions)
    rel = segment_relevance(
        timeline, "What is cut with the knife?", text_embedder=perceived.text_embedder
    )
    assert rel.combined is not None and max(rel.combined) == rel.combined[7] == 1.0
    rendered = timeline_text(timeline, TaskOptions(max_timeline_chars=150), rel)
    assert 7 in rendered.shown and rendered.omitted > 0
    assert "<seg_7>" in rendered.text


def test_refine_span_extends_to_similar_neighbours_and_drops_weak_edges() -> None:
    scores = [0.1, 0.85, 1.0, 0.5, 0.9, 0.05]
    assert refine_span(2, 2, scores) == (1, 2)  # 0.85 joins, 0.1 stops; 0.5 stops on the right
    assert refine_span(0, 5, scores) == (1, 4)  # weak edges dropped
    assert refine_span(5, 5, scores) == (4, 4)  # grows to 0.9, then its weak edge goes
    assert refine_span(0, 0, [0.0, 0.5]) == (0, 0)  # never empty
    assert refine_span(3, 3, None) == (3, 3)


def test_fuzzy_mapper_pads_truncates_and_maps_to_members() -> None:
    verbs, nouns = ["take_(pick,_grab)", "cut", "open"], ["knife", "onion", "door"]
    mapped = map_to_taxonomy("tak knif, cutt onio", verbs, nouns, 3)
    assert [(a.verb, a.noun) for a in mapped] == [
        ("take_(pick,_grab)", "knife"),
        ("cut", "onion"),
        ("cut", "onion"),
    ]
    assert len(map_to_taxonomy("open door\n" * 9, verbs, nouns, 2)) == 2
    assert len(map_to_taxonomy("", verbs, nouns, 2)) == 2


def test_lta_schema_bounds_the_output() -> None:
    schema = lta_schema(["cut"], ["onion"], 3)
    actions = schema["properties"]["actions"]
    assert actions["minItems"] == actions["maxItems"] == 3
    longest = json.dumps({"actions": [{"verb": "cut", "noun": "onion"}] * 3}, separators=(",", ":"))
    assert output_bound(["cut"], ["onion"], 3) >= len(longest)
