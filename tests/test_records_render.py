"""Records validate what crosses boundaries; the timeline renders to LLM text within a budget."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vidagent.core.errors import ConfigError
from vidagent.core.records import ActionLabel, Caption, Segment, Segmentation, Timeline, VideoInfo
from vidagent.tasks.render import RenderOptions, render_segment, render_timeline


def _timeline(n: int = 10, seconds: float = 2.0) -> Timeline:
    fps = 10.0
    segs = [
        Segment(
            index=i,
            start=i * seconds,
            end=(i + 1) * seconds,
            start_frame=int(i * seconds * fps),
            end_frame=int((i + 1) * seconds * fps),
            captions=[Caption(text=f"a person does thing {i}", model="tiny")],
            actions=[
                ActionLabel(verb="cut", noun=f"onion{i}", score=0.8),
                ActionLabel(verb="take", noun="knife", score=0.1),
            ],
        )
        for i in range(n)
    ]
    info = VideoInfo(
        path="v.mp4",
        fps=fps,
        num_frames=int(n * seconds * fps),
        duration=n * seconds,
        width=160,
        height=120,
        codec="h264",
        backend="decord",
    )
    return Timeline(video=info, segmentation=Segmentation(method="fixed"), segments=segs)


def test_records_reject_unknown_fields_and_bad_spans() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Caption(text="x", modle="typo")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match=r"end 1\.0 must be after start 2\.0"):
        Segment(index=0, start=2.0, end=1.0, start_frame=0, end_frame=10)
    with pytest.raises(ValidationError):
        ActionLabel(verb="cut", noun="onion", score=1.5)


def test_timeline_checks_order_and_round_trips() -> None:
    t = _timeline(3)
    again = Timeline.model_validate_json(t.model_dump_json())
    assert again == t
    assert [s.token for s in t.segments] == ["<seg_0>", "<seg_1>", "<seg_2>"]
    assert t.by_token("<seg_2>").start == 4.0
    assert t.segment_at(3.9).index == 1
    assert t.segment_at(99).index == 2
    bad = t.model_dump()
    bad["segments"][1]["index"] = 5
    with pytest.raises(ValidationError, match="position 1 has index 5"):
        Timeline.model_validate(bad)


def test_render_segment_line() -> None:
    seg = _timeline(2).segments[1]
    assert render_segment(seg) == (
        "<seg_1> [2.0s-4.0s] a person does thing 1 | actions: cut onion1 (0.80); take knife (0.10)"
    )
    plain = RenderOptions(captions=False, max_actions=1, action_scores=False)
    assert render_segment(seg, plain) == "<seg_1> [2.0s-4.0s] actions: cut onion1"


def test_render_whole_timeline_when_it_fits() -> None:
    out = render_timeline(_timeline(4))
    lines = out.text.splitlines()
    assert lines[0] == "Video: 8.0s, 4 segments."
    assert [ln.split()[0] for ln in lines[1:]] == ["<seg_0>", "<seg_1>", "<seg_2>", "<seg_3>"]
    assert out.omitted == 0 and out.shown == [0, 1, 2, 3]


def test_budget_keeps_segments_evenly_and_says_so() -> None:
    t = _timeline(50)
    full = render_timeline(t)
    out = render_timeline(t, RenderOptions(max_chars=full.chars // 4))
    assert out.chars <= full.chars // 4
    assert 0 < len(out.shown) < 50
    assert out.shown[0] == 0 and out.shown[-1] == 49  # both ends still represented
    gaps = {b - a for a, b in zip(out.shown, out.shown[1:], strict=False)}
    assert max(gaps) - min(gaps) <= 1  # evenly spread
    assert f"({len(out.shown)} shown, {50 - len(out.shown)} omitted)" in out.text
    # no line is cut in the middle
    assert all(ln.endswith("(0.10)") for ln in out.text.splitlines()[1:])


def test_budget_with_priority_keeps_the_best_in_time_order() -> None:
    t = _timeline(20)
    prio = [0.0] * 20
    prio[17], prio[3], prio[9] = 3.0, 2.0, 1.0
    one_line = len(render_segment(t.segments[17])) + 1
    out = render_timeline(t, RenderOptions(max_chars=60 + 3 * one_line), priority=prio)
    assert out.shown == [3, 9, 17]
    with pytest.raises(ConfigError, match="priority has 2 scores for 20 segments"):
        render_timeline(t, priority=[1.0, 2.0])


def test_token_budget_uses_the_given_counter() -> None:
    t = _timeline(30)
    words = lambda s: len(s.split())  # noqa: E731
    out = render_timeline(t, RenderOptions(max_tokens=100), count_tokens=words)
    assert words(out.text) <= 100 and out.tokens == words(out.text)
    assert out.omitted > 0
