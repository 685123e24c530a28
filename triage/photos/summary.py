"""What staff read about a photo: diagnosis names, image quality in words, wound size and trend.

Pure wording and arithmetic on rows already loaded; the reads live in ``triage.photos``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.utils import dateformat, timezone
from django.utils.text import capfirst

from triage.vision.quality import CHECK_WORDS
from triage.vision.skin import CLASS_NAMES
from triage.vision.wound import STABLE_BAND_PCT_PER_WEEK, area_cm2_from_px, area_trend

GOOD_QUALITY = 0.8
ACCEPTABLE_QUALITY = 0.5
MINUS = "\u2212"


def diagnosis_name(code: str) -> str:
    """'mel' -> 'Melanoma': the name a person reads; the code is only small print for staff."""
    return capfirst(CLASS_NAMES.get(code, code.replace("_", " ")))


@dataclass(frozen=True)
class Diagnosis:
    code: str
    name: str
    percent: int


def differential(probabilities: dict[str, float]) -> list[Diagnosis]:
    """The model's calibrated probabilities, most likely first, with names in full."""
    ranked = sorted(probabilities.items(), key=lambda item: item[1], reverse=True)
    return [Diagnosis(code, diagnosis_name(code), round(100 * p)) for code, p in ranked]


@dataclass(frozen=True)
class QualityWords:
    level: str  # good, acceptable or poor
    reason: str


def quality_words(
    *,
    score: float,
    flags: list[dict],
    checks: dict[str, float],
    ignored: Iterable[str] = (),
) -> QualityWords:
    """Good / acceptable / poor, and which checks (if any) held the photo back.

    Checks in ``ignored`` do not apply to this kind of photo (a wound bed is not skin-coloured).
    """
    ignored = set(ignored)
    flagged = [f["code"] for f in flags if f.get("code") not in ignored]
    relevant = {code: s for code, s in checks.items() if code not in ignored}
    if relevant:
        score = min(relevant.values())
    borderline = sorted(
        (s, code) for code, s in relevant.items() if s < GOOD_QUALITY and code not in flagged
    )
    words = [CHECK_WORDS[c][0] for c in flagged if c in CHECK_WORDS]
    words += [CHECK_WORDS[c][1] for _, c in borderline if c in CHECK_WORDS]
    if score < ACCEPTABLE_QUALITY:
        level = "poor"
    elif score < GOOD_QUALITY or flagged:
        level = "acceptable"
    else:
        level = "good"
    if words:
        reason = "; ".join(dict.fromkeys(words))
    elif level == "good":
        reason = "sharp, well lit and in frame"
    else:
        # Photos stored before per-check scores were kept: the weak check is not known.
        reason = "no single problem recorded"
    return QualityWords(level, capfirst(reason))


@dataclass(frozen=True)
class WoundSize:
    """A wound's size as staff should read it: cm² only where the photo has a scale."""

    cm2: float | None
    source: str  # "measured", "stated" or "" (size unknown)
    outline_px: int | None
    px_per_cm: float | None

    @property
    def cm2_text(self) -> str:
        return format_cm2(self.cm2) if self.cm2 is not None else ""


def wound_size(
    *, area_px: int | None, px_per_cm: float | None, stated_cm2: float | None
) -> WoundSize:
    """Measured on the photo when a scale is set; else the size stated at upload; else unknown."""
    if area_px is not None and px_per_cm:
        cm2 = area_cm2_from_px(area_px, px_per_cm=px_per_cm)
        return WoundSize(cm2, "measured", area_px, px_per_cm)
    if stated_cm2 is not None:
        return WoundSize(stated_cm2, "stated", area_px, px_per_cm)
    return WoundSize(None, "", area_px, px_per_cm)


def _shown(value: float) -> float:
    """The value as printed: one decimal from 1 cm² up, two significant digits below."""
    two_digits = float(f"{value:.2g}")
    return round(value, 1) if two_digits >= 1 else two_digits


def format_cm2(value: float) -> str:
    if value < 0.01:
        return "under 0.01 cm²"
    shown = _shown(value)
    return f"{shown:.1f} cm²" if shown >= 1 else f"{shown:g} cm²"


def short_date(moment: datetime) -> str:
    local = timezone.localtime(moment)
    same_year = local.year == timezone.localtime().year
    return dateformat.format(local, "j M" if same_year else "j M Y")


@dataclass(frozen=True)
class AreaPoint:
    """The measured wound area at one visit (the mean of that visit's measured photos)."""

    when: datetime
    cm2: float


def trend_sentences(points: list[AreaPoint]) -> list[str]:
    """The wound's change in words: first to last visit, then the pace across all visits."""
    points = sorted(points, key=lambda p: p.when)
    if not points:
        return ["No measured photo yet: mark a known length on a photo to measure the wound."]
    if len(points) == 1:
        return ["Only one measured photo so far: no trend yet."]
    first, last = points[0], points[-1]
    if timezone.localdate(first.when) == timezone.localdate(last.when):
        return [f"All measured photos are from {short_date(first.when)}: no trend yet."]
    # From the printed values, so "5.4 then, 4.0 now" is "smaller by 1.4", not 1.3.
    change = _shown(last.cm2) - _shown(first.cm2)
    percent = 100 * (last.cm2 - first.cm2) / first.cm2 if first.cm2 > 0 else 0.0
    since = short_date(first.when)
    if abs(percent) < 1 or change == 0:
        headline = f"About the same size ({format_cm2(last.cm2)}) since {since}."
    else:
        word = "Smaller" if change < 0 else "Larger"
        sign = MINUS if change < 0 else "+"
        headline = (
            f"{word} by {format_cm2(abs(change))} ({sign}{abs(percent):.0f} %) since {since}: "
            f"{format_cm2(first.cm2)} then, {format_cm2(last.cm2)} now."
        )
    trend = area_trend([(p.when, p.cm2) for p in points])
    if trend.percent_per_week is None:
        return [headline]
    weeks = trend.weeks
    span = f"{len(points)} visits over {weeks:.0f} week{'s' if round(weeks) != 1 else ''}"
    if weeks < 1:
        span = f"{len(points)} visits over {round(weeks * 7)} days"
    if trend.direction == "stable":
        pace = f"stable (within {STABLE_BAND_PCT_PER_WEEK:.0f} % a week)"
    else:
        verb = "healing: smaller" if trend.direction == "healing" else "worsening: larger"
        pace = f"{verb} by about {abs(trend.percent_per_week):.0f} % of the first size a week"
    return [headline, f"{span}, {pace}."]


@dataclass(frozen=True)
class ChartDot:
    x: float
    y: float
    value: str
    date: str
    anchor: str  # where the value's label hangs: start, middle or end

    @property
    def label_y(self) -> float:
        return round(self.y - 9, 1)


@dataclass(frozen=True)
class AreaChart:
    """A small line chart of wound area by visit, laid out for an inline SVG."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    y_max: str
    line: str
    dots: list[ChartDot]
    description: str


CHART_WIDTH, CHART_HEIGHT = 420, 160
CHART_MARGIN = {"left": 56, "right": 24, "top": 24, "bottom": 26}
NICE_STEPS = (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)


def _nice_ceiling(value: float) -> float:
    """The next round number at or above value (…, 4, 5, 6, 8, 10, 15, …), for the y axis."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return next(step * magnitude for step in NICE_STEPS if step * magnitude >= value - 1e-9)


def area_chart(points: list[AreaPoint]) -> AreaChart | None:
    """x: date of the visit; y: area in cm² from zero. None under two visits (no line to draw)."""
    points = sorted(points, key=lambda p: p.when)
    if len(points) < 2:
        return None
    m = CHART_MARGIN
    plot_w = CHART_WIDTH - m["left"] - m["right"]
    plot_h = CHART_HEIGHT - m["top"] - m["bottom"]
    t0 = points[0].when
    span = (points[-1].when - t0).total_seconds() or 1.0
    y_max = _nice_ceiling(max(p.cm2 for p in points) * 1.1)
    last = len(points) - 1
    dots = [
        ChartDot(
            x=round(m["left"] + plot_w * (p.when - t0).total_seconds() / span, 1),
            y=round(m["top"] + plot_h * (1 - p.cm2 / y_max), 1),
            value=format_cm2(p.cm2),
            date=short_date(p.when),
            anchor="start" if i == 0 else "end" if i == last else "middle",
        )
        for i, p in enumerate(points)
    ]
    return AreaChart(
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        left=m["left"],
        right=CHART_WIDTH - m["right"],
        top=m["top"],
        bottom=CHART_HEIGHT - m["bottom"],
        y_max=format_cm2(y_max),
        line=" ".join(f"{d.x},{d.y}" for d in dots),
        dots=dots,
        description="Wound area by visit: " + ", ".join(f"{d.value} on {d.date}" for d in dots),
    )


@dataclass(frozen=True)
class WoundTrend:
    sentences: list[str]
    chart: AreaChart | None
    n_measured: int


def wound_trend_words(points: list[AreaPoint]) -> WoundTrend:
    return WoundTrend(trend_sentences(points), area_chart(points), len(points))
