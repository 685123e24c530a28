"""Stitching overlapping audio pieces into one transcript without cutting or doubling words.

Live chunks (and the windows of a long upload) overlap their neighbours by a second or so.
Each piece keeps only the words whose midpoint falls inside its own share of the timeline:
from the middle of the overlap with the piece before to the middle of the overlap with the
piece after. A word spoken across a boundary is heard whole by one of the two pieces, and is
kept exactly once, as long as it is shorter than the overlap.
"""

from __future__ import annotations

from dataclasses import replace

from consults.speech.types import Segment


def keep_window(
    segments: list[Segment] | tuple[Segment, ...],
    *,
    keep_from: float | None = None,
    keep_until: float | None = None,
) -> list[Segment]:
    """The segments cut to [keep_from, keep_until) by word midpoints; None leaves a side open.

    A segment without word times is kept or dropped whole by its own midpoint.
    """
    if keep_from is None and keep_until is None:
        return list(segments)

    def inside(start: float, end: float) -> bool:
        middle = (start + end) / 2
        return (keep_from is None or middle >= keep_from) and (
            keep_until is None or middle < keep_until
        )

    kept: list[Segment] = []
    for segment in segments:
        if not segment.words:
            if inside(segment.start, segment.end):
                kept.append(segment)
            continue
        words = tuple(w for w in segment.words if inside(w.start, w.end))
        if not words:
            continue
        if len(words) == len(segment.words):
            kept.append(segment)
            continue
        text = "".join(w.text for w in words).strip()
        if text:
            kept.append(
                replace(segment, start=words[0].start, end=words[-1].end, text=text, words=words)
            )
    return kept
