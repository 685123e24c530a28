"""The audit log is complete (the Django admin's reads of health data are audited like the app's)
and readable (a polling page writes one event with a count, not one a poll; the patient's page
speaks in words, not codes)."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from consults.booking import services as visit_services
from consults.models import Visit
from telehealth.admin import AuditedReadsAdmin
from telehealth.audit import audit_record
from telehealth.models import AuditEvent, User
from tests.factories import PASSWORD, PatientFactory
from tests.test_permissions import login
from triage.models import Intake, QueueSkip, UrgencyChange

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root@example.org", PASSWORD)


@pytest.fixture
def admin_client(superuser):
    client = Client(HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="10.1.2.3")
    return login(client, superuser)


@pytest.fixture
def waiting(patient):
    return visit_services.visit_join_on_demand(patient=patient, reason="Itchy mole")


def reads(**filters):
    return AuditEvent.objects.filter(action="read", **filters)


# --- Django admin reads --------------------------------------------------------------------------


def test_admin_change_page_of_a_visit_is_audited_like_an_app_read(
    admin_client, superuser, patient, waiting
):
    response = admin_client.get(reverse("admin:consults_visit_change", args=[waiting.pk]))
    assert response.status_code == 200 and b"Itchy mole" in response.content
    event = reads(object_type="visit").get()
    assert (event.actor, event.patient, event.object_id) == (superuser, patient, str(waiting.pk))
    assert event.ip_address == "10.1.2.3" and event.user_agent == BROWSER
    assert event.path == f"/admin/consults/visit/{waiting.pk}/change/"
    assert event.detail == "admin" and event.created_at is not None


def test_admin_change_list_audits_each_patients_row(
    admin_client, superuser, patient, other_patient, waiting
):
    other = visit_services.visit_join_on_demand(patient=other_patient, reason="Cough")
    response = admin_client.get(reverse("admin:consults_visit_changelist"))
    assert response.status_code == 200
    events = reads(object_type="visit", detail="admin list")
    assert {(e.object_id, e.patient_id) for e in events} == {
        (str(waiting.pk), patient.pk),
        (str(other.pk), other_patient.pk),
    }
    assert {e.actor_id for e in events} == {superuser.pk}


@pytest.mark.parametrize(
    ("model", "object_type"),
    [(Intake, "intake"), (UrgencyChange, "urgency_change")],
)
def test_admin_reads_of_triage_records_name_the_patient(
    admin_client, patient, waiting, model, object_type
):
    Intake.objects.get_or_create(visit=waiting, defaults={"reason": "Itchy mole"})
    UrgencyChange.objects.create(
        visit=waiting, level="urgent", reason="Bleeding", source=UrgencyChange.Source.STAFF
    )
    obj = model.objects.filter(visit=waiting).first()
    opts = model._meta
    admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    change = admin_client.get(
        reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    )
    assert change.status_code == 200
    events = reads(object_type=object_type)
    listed = {str(pk) for pk in model.objects.values_list("pk", flat=True)}
    assert set(events.filter(detail="admin list").values_list("object_id", flat=True)) == listed
    assert set(events.values_list("patient", flat=True)) == {patient.pk}
    assert events.get(detail="admin").object_id == str(obj.pk)


def test_admin_read_of_a_queue_skip_is_audited_for_both_patients(
    admin_client, patient, other_patient, physician, waiting
):
    passed_over = visit_services.visit_join_on_demand(patient=other_patient, reason="Chest pain")
    skip = QueueSkip.objects.create(
        visit=waiting, passed_over=passed_over, passed_over_urgency="urgent", reason="Booked call"
    )
    admin_client.get(reverse("admin:triage_queueskip_change", args=[skip.pk]))
    event_patients = reads(object_type="queue_skip", object_id=str(waiting.pk))
    assert set(event_patients.values_list("patient", flat=True)) == {patient.pk, other_patient.pk}


def test_a_missing_object_in_the_admin_is_not_recorded_as_read(admin_client):
    admin_client.get(reverse("admin:consults_visit_change", args=[999]))
    assert not reads().exists()


def test_every_admin_of_health_data_audits_its_reads():
    # Physicians' weekly hours and days off are the only consult or triage records that are not
    # about a patient.
    not_health_data = {"consults.availabilityrule", "consults.availabilityexception"}
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        if model._meta.app_label in {"consults", "triage"} and label not in not_health_data:
            assert isinstance(model_admin, AuditedReadsAdmin), label
            assert model_admin.audit_object_type, label


# --- A page that polls writes one event with a count --------------------------------------------


def board(client):
    response = client.get(reverse("triage:board_partial"))
    assert response.status_code == 200
    return response


def test_polling_the_board_counts_on_one_event_per_patient(
    admin_user, patient, other_patient, waiting
):
    other = visit_services.visit_join_on_demand(patient=other_patient, reason="Cough")
    client = login(Client(), admin_user)
    for _ in range(12):
        board(client)
    events = reads(object_type="queue_entry").order_by("object_id")
    assert [(e.object_id, e.patient_id, e.count) for e in events] == sorted(
        [(str(waiting.pk), patient.pk, 12), (str(other.pk), other_patient.pk, 12)]
    )
    assert all(e.last_seen_at >= e.created_at for e in events)


def test_distinct_reads_are_never_folded_together(admin_user, patient, waiting, settings):
    settings.AUDIT_REPEAT_WINDOW = timedelta(minutes=5)
    first = login(Client(), admin_user)
    board(first)
    board(first)
    # Another person, another address, another patient: new events.
    second_admin = User.objects.create_user("admin2@example.org", PASSWORD, role="admin")
    board(login(Client(), second_admin))
    board(login(Client(REMOTE_ADDR="10.9.9.9"), admin_user))
    newcomer = PatientFactory(email="pat.c@example.org")
    later = visit_services.visit_join_on_demand(patient=newcomer, reason="Burn")
    board(first)
    events = reads(object_type="queue_entry")
    assert events.filter(object_id=str(waiting.pk)).count() == 3  # admin, admin2, other address
    assert events.get(object_id=str(later.pk)).patient == newcomer
    assert events.get(actor=admin_user, ip_address="127.0.0.1", object_id=waiting.pk).count == 3
    # Past the window from the first event: a new one.
    reads().update(created_at=AuditEvent.objects.earliest("created_at").created_at - timedelta(6))
    board(first)
    mine = events.filter(actor=admin_user, ip_address="127.0.0.1", object_id=str(waiting.pk))
    assert sorted(mine.values_list("count", flat=True)) == [1, 3]


def test_writes_and_exports_are_never_folded(patient):
    for _ in range(2):
        audit_record(actor=patient, action="export", object_type="note_fhir", object_id=1)
        audit_record(actor=patient, action="write", object_type="note", object_id=1)
    assert AuditEvent.objects.filter(count=1).count() == 4


# --- The patient's page: words, not codes ---------------------------------------------------------

CODE_WRITTEN = re.compile(r"""object_type\s*=\s*(f?)["']([^"']+)["']""")


def test_every_object_type_written_in_the_code_has_plain_words():
    from telehealth.audit import OBJECT_WORDS
    from triage.photos.views import VARIANTS

    root = Path(__file__).resolve().parents[1]
    written = set()
    for path in [
        *root.glob("telehealth/**/*.py"),
        *root.glob("consults/**/*.py"),
        *root.glob("triage/**/*.py"),
    ]:
        for is_f, code in CODE_WRITTEN.findall(path.read_text()):
            if not is_f:
                written.add(code)
            elif code == "photo_{variant}":
                written.update(f"photo_{variant}" for variant in VARIANTS)
            else:
                pytest.fail(
                    f"{path}: object_type={code!r} is built at run time; name its values here"
                )
    assert {"visit", "note_fhir", "queue_entry", "photo_heatmap", "intake"} <= written
    assert written - OBJECT_WORDS.keys() == set()


def at(day: datetime, hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return day.replace(hour=hour, minute=minute)


@pytest.fixture
def december_3():
    return datetime(timezone.localdate().year, 12, 3, tzinfo=UTC)


@pytest.fixture
def seen_visit(patient, waiting, december_3):
    Visit.objects.filter(pk=waiting.pk).update(scheduled_start=at(december_3, "09:00"))
    return waiting


def record_access(client, patient, page=""):
    response = login(client, patient).get(reverse("record_access") + page)
    assert response.status_code == 200
    return response.content.decode()


def test_record_access_page_speaks_in_words_grouped_by_day_and_person(
    client, patient, physician, admin_user, seen_visit, december_3
):
    admin_user.first_name, admin_user.last_name = "Lisa", "Cuddy"
    admin_user.save()
    physician.first_name, physician.last_name = "Gregory", "House"
    physician.save()
    for _ in range(12):  # the board, polled every 30 s
        audit_record(
            actor=admin_user,
            action="read",
            object_type="queue_entry",
            object_id=seen_visit.pk,
            patient=patient,
        )
    reads(object_type="queue_entry").update(
        created_at=at(december_3, "10:02"), last_seen_at=at(december_3, "10:31")
    )
    for agent in ("phone", "laptop"):  # two events, one line
        audit_record(
            actor=physician,
            action="read",
            object_type="note",
            object_id=seen_visit.pk,
            patient=patient,
            request=RequestFactory(HTTP_USER_AGENT=agent).get("/"),
        )
    audit_record(
        actor=physician,
        action="export",
        object_type="note_fhir",
        object_id=seen_visit.pk,
        patient=patient,
    )
    audit_record(
        actor=patient,
        action="read",
        object_type="summary",
        object_id=seen_visit.pk,
        patient=patient,
    )  # the patient's own read: not listed
    AuditEvent.objects.exclude(object_type="queue_entry").update(created_at=at(december_3, "11:15"))

    page = record_access(client, patient)

    assert "3 December" in page and page.count("<h2") == 1
    assert "Dr Gregory House" in page and "Lisa Cuddy" in page and "(administrator)" in page
    assert (
        "Saw your visit of 3 December on the waiting list, 12 times between 10:02 and 10:31."
        in page
    )
    assert "Read your clinical note from your visit of 3 December, twice at 11:15." in page
    assert (
        "Exported your clinical note from your visit of 3 December, as a file for other health"
        " systems, at 11:15." in page
    )
    assert "after-visit summary" not in page
    text = re.sub(r"<[^>]+>", " ", page[page.index("<main") :])
    assert re.findall(r"\b[a-z]+_[a-z_]+\b", text) == []  # no code such as queue_entry
    assert page.count("<li>") == 3  # 16 reads and exports


def test_the_patients_own_export_is_listed_as_theirs(client, patient, seen_visit):
    audit_record(
        actor=patient,
        action="export",
        object_type="note_fhir",
        object_id=seen_visit.pk,
        patient=patient,
    )
    page = record_access(client, patient)
    assert "<h3>You</h3>" in page and "Exported your clinical note" in page


def test_record_access_is_paginated_by_days(client, patient, physician, seen_visit, december_3):
    for back in range(9):
        event = audit_record(
            actor=physician,
            action="read",
            object_type="visit",
            object_id=seen_visit.pk,
            patient=patient,
        )
        AuditEvent.objects.filter(pk=event.pk).update(created_at=december_3 - timedelta(days=back))
    first = record_access(client, patient)
    assert first.count("<h2") == 7 and "Older days" in first and "3 December" in first
    second = record_access(client, patient, "?page=2")
    assert second.count("<h2") == 2 and "25 November" in second and "Newer days" in second


def test_nobody_yet(client, patient):
    assert "Nobody else has opened your record." in record_access(client, patient)
