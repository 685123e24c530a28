"""The queue's "Change urgency" select starts at each visit's current level, never at Immediate."""

import re

import pytest
from django.urls import reverse

from consults.booking import services as visit_services
from consults.urgency import Urgency
from tests.test_permissions import login
from triage import services


@pytest.fixture
def waiting(patient, other_patient, admin_user):
    calm = visit_services.visit_join_on_demand(patient=patient, reason="Rash")
    urgent = visit_services.visit_join_on_demand(patient=other_patient, reason="Chest pain")
    services.visit_urgency_override(
        visit=urgent, level=Urgency.VERY_URGENT, reason="pain at rest", actor=admin_user
    )
    return calm, urgent


def _selected_levels(html: str) -> dict[int, str]:
    rows = re.findall(r'<tr[^>]*data-visit="(\d+)">(.*?)</tr>', html, re.S)
    return {
        int(pk): re.search(r'<option value="(\w+)" selected>', row).group(1) for pk, row in rows
    }


def test_physicians_queue_defaults_each_row_to_its_urgency(client, physician, waiting):
    calm, urgent = waiting
    html = login(client, physician).get(reverse("triage:queue_partial")).content.decode()
    assert _selected_levels(html) == {calm.pk: "standard", urgent.pk: "very_urgent"}


def test_board_defaults_each_row_to_its_urgency(client, admin_user, waiting):
    calm, urgent = waiting
    html = login(client, admin_user).get(reverse("triage:board_partial")).content.decode()
    assert _selected_levels(html) == {calm.pk: "standard", urgent.pk: "very_urgent"}
