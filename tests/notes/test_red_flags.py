"""The live red-flag detector: urgent phrases found, denied ones ignored."""

from __future__ import annotations

import pytest

from consults.notes.red_flags import detect_red_flags


@pytest.mark.parametrize(
    ("text", "category", "urgency"),
    [
        ("I have this crushing chest pain right now", "cardiac", "immediate"),
        ("i ca n't breathe , it's getting worse", "respiratory", "immediate"),
        ("Sometimes I think about killing myself", "mental_health", "immediate"),
        ("I've been having suicidal thoughts", "mental_health", "immediate"),
        ("my face is drooping and my speech is slurred", "neurological", "immediate"),
        ("I'm soaking through a pad every hour, heavy bleeding", "bleeding", "very_urgent"),
        ("my throat is closing after I ate the shrimp", "anaphylaxis", "immediate"),
        ("I have chest pain when I climb stairs", "cardiac", "very_urgent"),
    ],
)
def test_red_flag_is_detected(text: str, category: str, urgency: str) -> None:
    flags = detect_red_flags(text)
    assert flags, text
    assert flags[0].category == category
    assert flags[0].urgency == urgency


@pytest.mark.parametrize(
    "text",
    [
        "no chest pain",
        "I don't have any chest pain or shortness of breath.",
        "i do n't have any trouble breathing",
        "Denies suicidal ideation.",
        "If you get crushing chest pain, call 911.",
        "My father had a stroke and slurred speech.",
        "No heavy bleeding at all.",
    ],
)
def test_negated_or_hypothetical_red_flag_is_ignored(text: str) -> None:
    assert detect_red_flags(text) == []


def test_red_flags_sorted_most_urgent_first() -> None:
    flags = detect_red_flags("I have a high fever. I can't breathe.")
    assert [f.urgency for f in flags] == ["immediate", "urgent"]


def test_urgency_vocabulary_is_the_five_levels() -> None:
    from consults.notes.red_flags import _RULES

    assert {u for _, _, u in _RULES} <= {
        "immediate",
        "very_urgent",
        "urgent",
        "standard",
        "non_urgent",
    }
