"""The five urgency levels, modelled on the Manchester Triage System, with their maximum waits,
and the intake red flags that set them. A visit stores its level (consults.models), so the scale
lives with visits; triage (intake, queues, photos) applies it."""

from dataclasses import dataclass
from datetime import timedelta

from django.db import models


class Urgency(models.TextChoices):
    IMMEDIATE = "immediate", "Immediate"
    VERY_URGENT = "very_urgent", "Very urgent"
    URGENT = "urgent", "Urgent"
    STANDARD = "standard", "Standard"
    NON_URGENT = "non_urgent", "Non-urgent"


@dataclass(frozen=True)
class UrgencyLevel:
    code: str
    rank: int  # 0 is the most urgent
    max_wait: timedelta
    colour: str


LEVELS: dict[str, UrgencyLevel] = {
    Urgency.IMMEDIATE: UrgencyLevel(Urgency.IMMEDIATE, 0, timedelta(minutes=0), "red"),
    Urgency.VERY_URGENT: UrgencyLevel(Urgency.VERY_URGENT, 1, timedelta(minutes=10), "orange"),
    Urgency.URGENT: UrgencyLevel(Urgency.URGENT, 2, timedelta(minutes=60), "yellow"),
    Urgency.STANDARD: UrgencyLevel(Urgency.STANDARD, 3, timedelta(minutes=120), "green"),
    Urgency.NON_URGENT: UrgencyLevel(Urgency.NON_URGENT, 4, timedelta(minutes=240), "blue"),
}


def urgency_rank(code: str) -> int:
    """0 for immediate … 4 for non-urgent."""
    return LEVELS[code].rank


def is_more_urgent(a: str, b: str) -> bool:
    """True when level ``a`` is strictly more urgent than level ``b``."""
    return urgency_rank(a) < urgency_rank(b)


# Intake red flags: code, patient-facing label, the level it sets.
RED_FLAGS: dict[str, tuple[str, str]] = {
    "chest_pain": ("Chest pain or pressure", Urgency.VERY_URGENT),
    "breathing": ("Difficulty breathing or shortness of breath at rest", Urgency.IMMEDIATE),
    "bleeding": ("Heavy bleeding that does not stop", Urgency.IMMEDIATE),
    "confusion": ("New confusion, drowsiness or trouble speaking", Urgency.VERY_URGENT),
    "pregnancy_pain": ("Pregnant and in pain or bleeding", Urgency.VERY_URGENT),
    "suicidal": ("Thoughts of harming yourself", Urgency.VERY_URGENT),
    "high_fever": ("Fever above 39 °C with a stiff neck or rash", Urgency.URGENT),
    "severe_pain": ("Severe pain (8 or more out of 10)", Urgency.URGENT),
}


def level_for_red_flags(flags: list[str]) -> tuple[str, str]:
    """The most urgent level the given red flags call for, and the reason in words."""
    if not flags:
        return Urgency.STANDARD, "No red flags at intake"
    worst = min(flags, key=lambda code: urgency_rank(RED_FLAGS[code][1]))
    labels = ", ".join(RED_FLAGS[code][0].lower() for code in flags)
    return RED_FLAGS[worst][1], f"Intake red flags: {labels}"
