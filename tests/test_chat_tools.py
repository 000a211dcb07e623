"""The chat tools over a perceived test video: what each returns, and how bad calls fail."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import pytest
from llm_support import tiny_model_dir, vllm_url
from test_tasks_support import Perceived, perceived

from vidagent.chat import ALL_TOOLS, ChatTool, Toolbox, ToolCallError, VideoContext, system_prompt
from vidagent.llm import LLMClient, RetryPolicy
from vidagent.llm.openai_backend import OpenAIBackend
from vidagent.tasks import TaskOptions

__all__ = ["perceived", "tiny_model_dir", "vllm_url"]

CITE = re.compile(r"<seg_(\d+)> \[(\d+\.\d)s?-(\d+\.\d)s?( s)?\]")


def toolbox(p: Perceived, llm: LLMClient | None = None) -> Toolbox:
    return Toolbox(
        VideoContext(
            timeline=p.timeline,
            llm=llm,
            store=p.store,
            query_embedder=p.query_embedder,
            text_embedder=p.text_embedder,
            context=TaskOptions(k=0, max_timeline_chars=160),
            overview_chars=400,
        )
    )


def test_every_tool_has_a_schema_and_a_description() -> None:
    schemas = [ChatTool.from_function(fn).schema() for fn in ALL_TOOLS]
    names = [s["function"]["name"] for s in schemas]
    assert names == [
        "timeline_overview",
        "describe_moment",
        "find_moments",
        "actions_between",
        "localize",
        "answer_choice",
    ]
    for schema in schemas:
        function = schema["function"]
        assert function["description"] and "\n" not in function["description"]
        assert function["parameters"]["type"] == "object"
        assert function["parameters"]["additionalProperties"] is False
    describe = schemas[1]["function"]["parameters"]
    assert describe["required"] == ["time_s"] and describe["properties"]["window_s"]["default"] == 4


def test_describe_moment_cites_the_segments_around_a_time(perceived: Perceived) -> None:
    box = toolbox(perceived)
    text = box.run("describe_moment", {"time_s": 3.0, "window_s": 2.0})
    spans = [(float(a), float(b)) for _, a, b, _ in CITE.findall(text)]
    assert spans and all(end > 2.0 and start < 4.0 for start, end in spans)
    tokens = {f"<seg_{i}>" for i, *_ in CITE.findall(text)}
    expected = {s.token for s in perceived.timeline.segments if s.end > 2.0 and s.start < 4.0}
    assert tokens == expected


def test_find_moments_ranks_k_segments_and_actions_between_lists_labels(
    perceived: Perceived,
) -> None:
    box = toolbox(perceived)
    lines = box.run("find_moments", {"text": "a person cuts an onion", "k": 2}).splitlines()
    assert len(lines) == 2 and all(CITE.search(line) for line in lines)
    scores = [float(re.search(r"score (\d\.\d+)", line).group(1)) for line in lines]  # type: ignore[union-attr]
    assert scores == sorted(scores, reverse=True) and scores[0] == 1.0
    between = box.run("actions_between", {"start_s": 0.0, "end_s": 3.9}).splitlines()
    first = perceived.timeline.segments[0]
    assert between[0].startswith(f"{first.token} [{first.start:.1f}-{first.end:.1f} s]")
    assert first.actions[0].text in between[0]


def test_overview_and_system_prompt_show_the_timeline(perceived: Perceived) -> None:
    box = toolbox(perceived)
    overview = box.run("timeline_overview", {})
    assert "<seg_0>" in overview and len(overview) <= 400
    system = system_prompt(box)
    assert overview in system and f"{len(perceived.timeline.segments)} segments" in system
    assert f"{perceived.timeline.video.duration:.1f}s long" in system


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("describe_moment", {"time_s": -1}, "time_s"),
        ("describe_moment", {"time": 1}, "time"),
        ("find_moments", {"text": "x", "k": 0}, "k"),
        ("actions_between", {"start_s": 5, "end_s": 1}, "before start_s"),
        ("no_such_tool", {}, "unknown tool 'no_such_tool'"),
        ("localize", {"query": "door"}, "no LLM client"),
    ],
)
def test_bad_calls_are_tool_call_errors(
    perceived: Perceived, name: str, arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(ToolCallError, match=re.escape(message)):
        toolbox(perceived).run(name, arguments)


@pytest.fixture
def llm(vllm_url: str) -> Iterator[LLMClient]:
    client = LLMClient(OpenAIBackend([vllm_url], retry=RetryPolicy(max_retries=0)))
    yield client
    client.close()


def test_localize_and_answer_choice_run_the_tasks_on_the_server(
    perceived: Perceived, llm: LLMClient
) -> None:
    box = toolbox(perceived, llm)
    span = box.run("localize", {"query": "the door opens"})
    assert re.fullmatch(r"<seg_\d+> to <seg_\d+> \[\d+\.\d-\d+\.\d s\] for 'the door opens'", span)
    answer = box.run("answer_choice", {"question": "What is cut?", "options": ["bread", "wood"]})
    assert re.match(r"answer: [AB]\. (bread|wood) \(segments: ", answer)


def test_over_several_videos_each_tool_takes_the_video_name(perceived: Perceived) -> None:
    short = perceived.timeline.model_copy(update={"segments": perceived.timeline.segments[:2]})
    context = TaskOptions(k=0, max_timeline_chars=400)
    box = Toolbox(
        {
            "kitchen.mp4": VideoContext(timeline=perceived.timeline, context=context),
            "garage.mp4": VideoContext(timeline=short, context=context),
        }
    )
    for schema in box.schemas():
        parameters = schema["function"]["parameters"]
        assert parameters["properties"]["video"]["enum"] == ["kitchen.mp4", "garage.mp4"]
        assert parameters["required"][0] == "video"
    garage = box.run("timeline_overview", {"video": "garage.mp4"})
    kitchen = box.run("timeline_overview", {"video": "kitchen.mp4"})
    assert "<seg_1>" in garage and "<seg_2>" not in garage and "<seg_2>" in kitchen
    last = perceived.timeline.segments[-1]
    assert box.run("describe_moment", {"video": "kitchen.mp4", "time_s": last.start}).count(
        last.token
    )
    with pytest.raises(ToolCallError, match=r"'kitchen\.mp4', 'garage\.mp4'.*got 'attic\.mp4'"):
        box.run("timeline_overview", {"video": "attic.mp4"})
    with pytest.raises(ToolCallError, match="got None"):
        box.run("describe_moment", {"time_s": 1.0})
    system = system_prompt(box)
    assert "There are 2 videos" in system and "Video 'garage.mp4' (" in system
    assert f"Video 'kitchen.mp4' ({perceived.timeline.video.duration:.1f}s" in system


def test_one_video_has_no_video_argument(perceived: Perceived) -> None:
    box = toolbox(perceived)
    assert all(
        "video" not in s["function"]["parameters"].get("properties", {}) for s in box.schemas()
    )
    assert "There are" not in system_prompt(box)


def test_describe_moment_fine_recaptions_the_window_and_caches_it(
    perceived: Perceived, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = VideoContext(
        timeline=perceived.timeline, store=perceived.store, captioner=perceived.captioner
    )
    box = Toolbox(video)
    text = box.run("describe_moment", {"time_s": 3.0, "window_s": 2.0, "fine": True})
    coarse, fine = text.split("finer captions (every 0.5 s):\n")
    assert "<seg_1>" in coarse
    spans = [tuple(map(float, m)) for m in re.findall(r"^\[(\d+\.\d)-(\d+\.\d) s\] \S", fine, re.M)]
    assert spans[0][0] == 2.0 and spans[-1][1] == 4.0 and len(spans) == len(fine.splitlines())
    assert all(b - a <= 0.6 and b > a for a, b in spans) and len(spans) >= 3

    def no_model(frames: object) -> None:
        raise AssertionError("the second call must come from the store")

    monkeypatch.setattr(perceived.captioner, "run", no_model)
    assert box.run("describe_moment", {"time_s": 3.0, "window_s": 2.0, "fine": True}) == text


def test_describe_moment_fine_without_a_captioner_is_an_error(perceived: Perceived) -> None:
    with pytest.raises(ToolCallError, match="fine=true needs the captioner"):
        toolbox(perceived).run("describe_moment", {"time_s": 1.0, "fine": True})


def test_fine_segments_stay_inside_the_video_and_are_bounded(perceived: Perceived) -> None:
    from vidagent.tools.recaption import MAX_STEPS, fine_segments

    info = perceived.timeline.video
    steps = fine_segments(info, -3.0, info.duration + 5, 0.5)
    assert steps[0].start_frame == 0 and steps[-1].end_frame == info.num_frames
    assert all(a.end_frame == b.start_frame for a, b in itertools.pairwise(steps))
    assert len(fine_segments(info, 0, info.duration, 1 / info.fps)) <= MAX_STEPS
    tail = fine_segments(info, info.duration + 1, info.duration + 2, 0.5)
    assert len(tail) == 1 and tail[0].end_frame == info.num_frames
