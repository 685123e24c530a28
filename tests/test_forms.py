"""Malformed input gets a clear answer, never a 500."""

import pytest
from django.urls import reverse

from consults.models import Visit
from tests.test_permissions import login


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"slot": "not-a-date", "reason": "x"},
        {"slot": "2020-01-01T00:00:00+00:00", "reason": "x"},
        {"slot": "9" * 5000, "reason": "y" * 5000},
        {"reason": "x", "red_flags": ["made_up"]},
    ],
)
def test_booking_form_rejects_malformed_posts(client, patient, physician, slots, data):
    response = login(client, patient).post(reverse("consults:book_slot", args=[physician.pk]), data)
    assert response.status_code == 200
    assert b'class="error"' in response.content
    assert not Visit.objects.exists()


def test_booking_form_books_offered_slot(client, patient, physician, slots):
    response = login(client, patient).post(
        reverse("consults:book_slot", args=[physician.pk]),
        {
            "day": slots[0].date().isoformat(),
            "slot": slots[0].isoformat(),
            "reason": "Itchy rash",
            "red_flags": ["severe_pain"],
        },
    )
    visit = Visit.objects.get()
    assert response.status_code == 302 and visit.urgency == "urgent"


def test_unknown_physician_is_404(client, patient):
    assert login(client, patient).get("/visits/book/999999/").status_code == 404


def test_signup_explains_weak_password(client):
    response = client.post(
        reverse("signup"),
        {
            "email": "new@example.org",
            "first_name": "N",
            "last_name": "P",
            "time_zone": "UTC",
            "password1": "123",
            "password2": "123",
        },
    )
    assert response.status_code == 200 and b"too short" in response.content


def test_signup_creates_an_inactive_patient_and_does_not_sign_in(client, mailoutbox):
    response = client.post(
        reverse("signup"),
        {
            "email": "New@Example.org",
            "first_name": "N",
            "last_name": "P",
            "time_zone": "Europe/Paris",
            "password1": "a-long-passphrase-42",
            "password2": "a-long-passphrase-42",
        },
    )
    assert response.status_code == 302 and response["Location"] == reverse("signup_sent")
    from telehealth.models import User

    user = User.objects.get(email="new@example.org")
    assert user.role == "patient" and not user.is_active and user.time_zone == "Europe/Paris"
    assert "_auth_user_id" not in client.session
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["new@example.org"]


def test_signup_form_never_says_an_address_is_taken(client, physician):
    response = client.post(
        reverse("signup"),
        {
            "email": physician.email.upper(),
            "first_name": "N",
            "last_name": "P",
            "time_zone": "UTC",
            "password1": "123",
            "password2": "123",
        },
    )
    assert response.status_code == 200 and b"too short" in response.content
    assert b"already exists" not in response.content


def test_urgency_override_form_rejects_bad_level(client, admin_user, patient):
    from consults.booking.services import visit_join_on_demand

    visit = visit_join_on_demand(patient=patient, reason="x")
    response = login(client, admin_user).post(
        reverse("triage:urgency_override", args=[visit.pk]), {"level": "??", "reason": ""}
    )
    assert response.status_code == 302
    visit.refresh_from_db()
    assert visit.urgency == "standard"


def test_availability_form_rejects_end_before_start(client, physician):
    response = login(client, physician).post(
        reverse("consults:availability"),
        {
            "add_rule": "1",
            "rule-weekday": "0",
            "rule-start_time": "10:00",
            "rule-end_time": "09:00",
            "rule-slot_minutes": "20",
        },
    )
    assert response.status_code == 200 and b"must be after" in response.content


def test_availability_delete_with_garbage_id_is_not_500(client, physician):
    response = login(client, physician).post(
        reverse("consults:availability"), {"delete_rule": "abc"}
    )
    assert response.status_code in (200, 302)
