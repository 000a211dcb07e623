"""Per-clip saliency for highlight detection: how relevant each 2 s clip of a video is to a query,
from how relevant each timeline segment is to it.

1. Segment scores: the query-to-segment relevance the task pipeline already computed
   (:func:`vidagent.tasks.steps.segment_relevance`: cosine of the MiniLM embeddings of the query
   and of each segment's caption and action labels, min-max scaled over the video; recorded as
   the run's ``relevance``). Without a text embedder there is none, and the fallback is lexical
   overlap: the share of the query's distinct words (lower case, letters and digits, at least 3
   characters, so "a", "of", "on" do not count) that occur in the segment's text.
2. The clip grid of the official metric (:mod:`vidagent.evals.highlights`): ``int(duration / 2)``
   clips (at least one), clip ``i`` covering ``[2i, 2i + 2)``. A clip's score is the mean of the
   scores of the segments it overlaps, weighted by the seconds of overlap; a clip no segment
   covers (a timeline shorter than the annotated duration) scores 0, the lowest score.

Only the ranking of a query's clips matters to the metric (average precision and hit@1 per
query), so the scale of the scores is free.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from vidagent.evals.highlights import CLIP_SECONDS, clip_count

if TYPE_CHECKING:
    from vidagent.core.records import Timeline

_WORD = re.compile(r"[a-z0-9]+")
MIN_WORD = 3


def words(text: str) -> set[str]:
    """The distinct words of ``text`` that count for lexical overlap (module doc)."""
    return {w for w in _WORD.findall(text.lower()) if len(w) >= MIN_WORD}


def lexical_relevance(timeline: Timeline, query: str) -> list[float]:
    """Per segment: the share of the query's words that its text contains (0 for a query with
    no word that counts)."""
    from vidagent.tasks.steps import segment_text

    asked = words(query)
    if not asked:
        return [0.0] * len(timeline.segments)
    return [len(asked & words(segment_text(s))) / len(asked) for s in timeline.segments]


def clip_saliency(
    timeline: Timeline,
    query: str,
    duration: float,
    relevance: Sequence[float] | None = None,
) -> list[float]:
    """One score per 2 s clip of a ``duration``-second video (module doc); ``relevance``: the
    segments' scores (one per segment of ``timeline``), None for the lexical fallback."""
    scores = list(relevance) if relevance is not None else lexical_relevance(timeline, query)
    if len(scores) != len(timeline.segments):
        raise ValueError(
            f"{len(scores)} relevance scores for {len(timeline.segments)} segments of "
            f"{timeline.video.path}"
        )
    out = []
    for i in range(max(1, clip_count(duration))):
        start, end = CLIP_SECONDS * i, min(CLIP_SECONDS * (i + 1), max(duration, CLIP_SECONDS))
        total = weight = 0.0
        for seg, score in zip(timeline.segments, scores, strict=True):
            overlap = min(end, seg.end) - max(start, seg.start)
            if overlap > 0:
                total += overlap * score
                weight += overlap
        out.append(round(total / weight, 6) if weight else 0.0)
    return out
