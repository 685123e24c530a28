import pytest
from django.test import RequestFactory
from django.urls import reverse

from consults.booking import services
from telehealth.models import AuditEvent
from tests.factories import PASSWORD


def login(client, user):
    # django-axes checks every authentication against the request it came with.
    request = RequestFactory().post("/accounts/login/")
    assert client.login(request=request, email=user.email, password=PASSWORD)
    return client


@pytest.fixture
def booked(patient, physician, slots):
    return services.visit_book(patient=patient, physician=physician, start=slots[0], reason="Rash")


def test_patient_sees_own_visit_and_the_read_is_audited(client, patient, booked):
    response = login(client, patient).get(reverse("consults:visit_detail", args=[booked.pk]))
    assert response.status_code == 200 and b"Rash" in response.content
    event = AuditEvent.objects.get(action="read", object_type="visit")
    assert event.actor == patient and event.patient == patient and event.object_id == str(booked.pk)


def test_patient_cannot_open_other_patients_visit(client, other_patient, booked):
    response = login(client, other_patient).get(reverse("consults:visit_detail", args=[booked.pk]))
    assert response.status_code == 404 and b"Rash" not in response.content
    denied = AuditEvent.objects.get(action="denied")
    assert denied.actor == other_patient and denied.object_id == str(booked.pk)


def test_unassigned_physician_cannot_open_visit(client, other_physician, booked):
    response = login(client, other_physician).get(
        reverse("consults:visit_detail", args=[booked.pk])
    )
    assert response.status_code == 404


def test_assigned_physician_and_admin_can_open_visit(client, physician, admin_user, booked):
    url = reverse("consults:visit_detail", args=[booked.pk])
    assert login(client, physician).get(url).status_code == 200
    assert login(client, admin_user).get(url).status_code == 200
    assert AuditEvent.objects.filter(action="read", patient=booked.patient).count() == 2


@pytest.mark.parametrize(
    ("url_name", "role_fixture"),
    [
        ("triage:queue", "patient"),
        ("triage:board", "patient"),
        ("triage:board", "physician"),
        ("audit_log", "physician"),
        ("consults:book_start", "physician"),
        ("consults:availability", "patient"),
    ],
)
def test_wrong_role_gets_403_and_audit(client, request, url_name, role_fixture):
    user = request.getfixturevalue(role_fixture)
    response = login(client, user).get(reverse(url_name))
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="denied", actor=user).exists()


def test_anonymous_is_sent_to_login(client, booked):
    response = client.get(reverse("consults:visit_detail", args=[booked.pk]))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_patient_cannot_cancel_someone_elses_visit(client, other_patient, booked):
    response = login(client, other_patient).post(reverse("consults:visit_cancel", args=[booked.pk]))
    assert response.status_code == 404
    booked.refresh_from_db()
    assert booked.status == "booked"


def test_physician_cannot_reassign(client, physician, other_physician, booked):
    response = login(client, physician).post(
        reverse("triage:reassign", args=[booked.pk]), {"physician": other_physician.pk}
    )
    assert response.status_code == 403
    booked.refresh_from_db()
    assert booked.physician == physician


def test_queue_partial_audits_each_visit_shown(client, physician, patient):
    services.visit_join_on_demand(patient=patient, reason="Cough")
    response = login(client, physician).get(reverse("triage:queue_partial"))
    assert b"Cough" in response.content
    assert AuditEvent.objects.filter(object_type="queue_entry", patient=patient).count() == 1


def test_patient_sees_who_opened_their_record(client, physician, patient, booked):
    login(client, physician).get(reverse("consults:visit_detail", args=[booked.pk]))
    response = login(client, patient).get(reverse("record_access"))
    assert physician.last_name.encode() in response.content


def test_audit_events_are_append_only(patient):
    from telehealth.audit import audit_record

    event = audit_record(actor=patient, action="read", object_type="visit", object_id=1)
    event.detail = "tampered"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
