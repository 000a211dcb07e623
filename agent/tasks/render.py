"""Render a timeline as the text an LLM reads: one line per segment token, within a budget.

Each line is ``<seg_3> [6.0s-8.0s] caption | actions: cut onion (0.82); take knife (0.10)``.
When the
whole timeline does not fit the budget (characters or tokens), segments are dropped, never cut in
the middle: by a priority score when the caller has one (e.g. relevance to the question), otherwise
evenly across the video so that every part stays represented. Shown segments stay in time order, and
the header says how many were left out, so the LLM knows the view is partial.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import Field

from vidagent.core.errors import ConfigError
from vidagent.core.records import Record, Segment, Timeline

TokenCounter = Callable[[str], int]


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate (about 4 characters per token for English BPE vocabularies)."""
    return (len(text) + 3) // 4


class RenderOptions(Record):
    """What goes into each line and how much text is allowed."""

    captions: bool = True
    actions: bool = True
    max_captions: int = Field(default=1, ge=0)
    max_actions: int = Field(default=3, ge=0)
    action_scores: bool = True
    header: bool = True
    max_chars: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)


class RenderedTimeline(Record):
    """The rendered text and which segments it shows."""

    text: str
    shown: list[int]
    omitted: int
    chars: int
    tokens: int


def format_time(seconds: float) -> str:
    return f"{seconds:.1f}s"


def render_segment(segment: Segment, options: RenderOptions | None = None) -> str:
    """One line for one segment: token, span, captions, actions."""
    opts = options or RenderOptions()
    parts = [f"{segment.token} [{format_time(segment.start)}-{format_time(segment.end)}]"]
    if opts.captions and segment.captions and opts.max_captions:
        parts.append(" ".join(c.text.strip() for c in segment.captions[: opts.max_captions]))
    if opts.actions and segment.actions and opts.max_actions:
        acts = segment.actions[: opts.max_actions]
        if opts.action_scores:
            text = "; ".join(f"{a.verb} {a.noun} ({a.score:.2f})" for a in acts)
        else:
            text = "; ".join(a.text for a in acts)
        parts.append(f"actions: {text}")
    line = parts[0]
    if len(parts) > 1:
        line += " " + " | ".join(parts[1:])
    return line


def _header(timeline: Timeline, shown: int) -> str:
    total = len(timeline.segments)
    text = f"Video: {timeline.video.duration:.1f}s, {total} segments"
    if shown < total:
        text += f" ({shown} shown, {total - shown} omitted)"
    return text + "."


def _evenly(n_total: int, m: int) -> list[int]:
    """``m`` of ``n_total`` positions spread evenly (first and last included when m >= 2)."""
    if m >= n_total:
        return list(range(n_total))
    if m == 1:
        return [n_total // 2]
    step = (n_total - 1) / (m - 1)
    return sorted({int(round(i * step)) for i in range(m)})


def render_timeline(
    timeline: Timeline,
    options: RenderOptions | None = None,
    *,
    priority: Sequence[float] | None = None,
    count_tokens: TokenCounter = approx_tokens,
) -> RenderedTimeline:
    """Render ``timeline`` within ``options.max_chars`` / ``options.max_tokens``.

    ``priority`` (one score per segment, higher first) picks the segments that survive a tight
    budget; without it segments are kept evenly across the video.
    """
    opts = options or RenderOptions()
    n = len(timeline.segments)
    if priority is not None and len(priority) != n:
        raise ConfigError(f"priority has {len(priority)} scores for {n} segments")
    lines = [render_segment(s, opts) for s in timeline.segments]

    def build(keep: Sequence[int]) -> str:
        body = [lines[i] for i in sorted(keep)]
        return "\n".join([_header(timeline, len(keep)), *body] if opts.header else body)

    def fits(text: str) -> bool:
        if opts.max_chars is not None and len(text) > opts.max_chars:
            return False
        return opts.max_tokens is None or count_tokens(text) <= opts.max_tokens

    keep: list[int] = list(range(n))
    text = build(keep)
    if not fits(text):
        if priority is not None:
            keep = _by_priority(lines, priority, opts, count_tokens, _header(timeline, 0))
        else:
            keep = []
            lo, hi = 0, n  # largest m whose even selection fits (fit is monotone in m)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if fits(build(_evenly(n, mid))):
                    lo = mid
                else:
                    hi = mid - 1
            keep = _evenly(n, lo)
        text = build(keep)
        while keep and not fits(text):  # costs are additive estimates: settle on the real text
            keep = keep[:-1] if priority is not None else _evenly(n, len(keep) - 1)
            text = build(keep)
    return RenderedTimeline(
        text=text,
        shown=[timeline.segments[i].index for i in sorted(keep)],
        omitted=n - len(keep),
        chars=len(text),
        tokens=count_tokens(text),
    )


def _by_priority(
    lines: Sequence[str],
    priority: Sequence[float],
    opts: RenderOptions,
    count_tokens: TokenCounter,
    header: str,
) -> list[int]:
    """Greedy selection in priority order with per-line costs (skip what does not fit)."""
    base_chars = len(header) + 4 if opts.header else 0  # "+4": digits of the shown count
    base_tokens = count_tokens(header) + 2 if opts.header else 0
    chars, tokens = base_chars, base_tokens
    keep: list[int] = []
    for i in sorted(range(len(lines)), key=lambda j: (-priority[j], j)):
        c = len(lines[i]) + 1
        t = count_tokens(lines[i]) + 1 if opts.max_tokens is not None else 0
        if opts.max_chars is not None and chars + c > opts.max_chars:
            continue
        if opts.max_tokens is not None and tokens + t > opts.max_tokens:
            continue
        keep.append(i)
        chars, tokens = chars + c, tokens + t
    return keep
