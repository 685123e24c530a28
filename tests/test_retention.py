"""Retention periods (the daily purge) and patients' erasure requests: rows and files."""

import importlib
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from consults.models import (
    AudioChunk,
    ChatMessage,
    ChunkStatus,
    ClinicalNote,
    Consent,
    NoteRevision,
    Recording,
    TranscriptSegment,
    Visit,
    VisitStatus,
)
from telehealth import retention, tasks
from telehealth.models import AuditEvent, ErasureRequest
from telehealth.private_media import private_save, private_storage
from tests.factories import PatientFactory
from triage.models import Intake, Photo, PhotoAnalysis, PhotoConcern, UrgencyChange

SECRET = "secret"  # every free text below holds it; no audit event or report may


@dataclass
class Consult:
    visit: Visit
    files: dict[str, str] = field(default_factory=dict)

    def rows(self) -> dict[str, int]:
        """How many rows of each kind this consult has now."""
        visit = self.visit
        return {
            "chunks": AudioChunk.objects.filter(recording__visit=visit).count(),
            "recordings": Recording.objects.filter(visit=visit).count(),
            "segments": TranscriptSegment.objects.filter(visit=visit).count(),
            "notes": ClinicalNote.objects.filter(visit=visit).count(),
            "revisions": NoteRevision.objects.filter(note__visit=visit).count(),
            "photos": Photo.objects.filter(visit=visit).count(),
            "analyses": PhotoAnalysis.objects.filter(photo__visit=visit).count(),
            "concerns": PhotoConcern.objects.filter(photos__visit=visit).count(),
            "messages": ChatMessage.objects.filter(visit=visit).count(),
            "attachments": ChatMessage.objects.filter(visit=visit)
            .exclude(attachment_path="")
            .count(),
            "intakes": Intake.objects.filter(visit=visit).count(),
            "urgency_changes": UrgencyChange.objects.filter(visit=visit).count(),
            "consents": Consent.objects.filter(visit=visit).count(),
        }

    def files_left(self) -> set[str]:
        storage = private_storage()
        return {name for name, path in self.files.items() if storage.exists(path)}


FULL = {
    "chunks": 2,
    "recordings": 2,
    "segments": 1,
    "notes": 1,
    "revisions": 2,
    "photos": 1,
    "analyses": 1,
    "concerns": 1,
    "messages": 3,
    "attachments": 2,
    "intakes": 1,
    "urgency_changes": 1,
    "consents": 1,
}


def _file(category: str) -> str:
    return private_save(category=category, data=os.urandom(32), suffix=".bin")


def make_consult(
    *,
    patient,
    physician,
    age_days: float,
    signed: bool = False,
    status: str = VisitStatus.COMPLETED,
    now: datetime | None = None,
) -> Consult:
    """A visit ``age_days`` old with one item of every kind of data, each with its own file."""
    then = (now or timezone.now()) - timedelta(days=age_days)
    ended = status == VisitStatus.COMPLETED
    visit = Visit.objects.create(
        patient=patient,
        physician=physician,
        status=status,
        reason=f"{SECRET} rash",
        urgency_reason=f"{SECRET} red flag",
        scheduled_start=then,
        started_at=then if status != VisitStatus.BOOKED else None,
        ended_at=then if ended else None,
    )
    consult = Consult(visit)
    files = consult.files
    Intake.objects.create(visit=visit, reason=f"{SECRET} rash", symptoms=f"{SECRET} itch")
    UrgencyChange.objects.create(
        visit=visit, level="urgent", reason=f"{SECRET} flag", source="intake"
    )
    Consent.objects.create(
        patient=patient, visit=visit, purpose="recording", granted=True, version="1"
    )
    live = Recording.objects.create(visit=visit, speaker="patient", user=patient)
    upload = Recording.objects.create(
        visit=visit, speaker="physician", user=physician, source=Recording.Source.UPLOAD
    )
    files["live_audio"] = _file("audio")
    files["upload_audio"] = _file("audio")
    chunk = AudioChunk.objects.create(
        recording=live,
        index=0,
        start_s=0,
        path=files["live_audio"],
        content_type="audio/webm",
        sha256="0" * 64,
        size=32,
        status=ChunkStatus.DONE,
    )
    AudioChunk.objects.create(
        recording=upload,
        index=0,
        start_s=0,
        path=files["upload_audio"],
        content_type="audio/ogg",
        sha256="1" * 64,
        size=32,
        status=ChunkStatus.STORED,
    )
    TranscriptSegment.objects.create(
        visit=visit,
        chunk=chunk,
        speaker="patient",
        start_s=0,
        end_s=2,
        text=f"my {SECRET} symptom",
        avg_logprob=-0.1,
        no_speech_prob=0.0,
    )
    content = {"sections": {"plan": [{"text": f"{SECRET} plan", "evidence": [0]}]}, "lines": []}
    note = ClinicalNote.objects.create(
        visit=visit,
        status=ClinicalNote.Status.SIGNED if signed else ClinicalNote.Status.DRAFT,
        version=2,
        content=content,
        drafted_at=then,
        signed_by=physician if signed else None,
        signed_at=then if signed else None,
    )
    NoteRevision.objects.create(note=note, version=1, kind="drafted", content=content)
    NoteRevision.objects.create(
        note=note, version=2, kind="signed" if signed else "edited", content=content
    )
    concern = PhotoConcern.objects.create(patient=patient, kind="skin", body_site=f"{SECRET} arm")
    files["photo"] = _file("photos")
    files["heatmap"] = _file("heatmaps")
    files["mask"] = _file("wounds")
    photo = Photo.objects.create(
        visit=visit,
        concern=concern,
        uploaded_by=patient,
        file_path=files["photo"],
        sha256="0",
        width=32,
        height=32,
        quality_score=0.9,
        status=Photo.Status.ANALYSED,
    )
    PhotoAnalysis.objects.create(
        photo=photo,
        model_version="m",
        can_assess=True,
        urgency="standard",
        urgency_reason=f"{SECRET} benign",
        heatmap_path=files["heatmap"],
        mask_path=files["mask"],
    )
    files["attachment"] = _file("chat")
    files["attachment_only"] = _file("chat")
    for text, path in (
        (f"see {SECRET}", files["attachment"]),
        ("", files["attachment_only"]),
        (f"my {SECRET}", ""),
    ):
        ChatMessage.objects.create(
            visit=visit,
            sender=patient,
            text=text,
            attachment_path=path,
            attachment_name=f"{SECRET}.jpg" if path else "",
            attachment_type="image/jpeg" if path else "",
        )
    # auto_now_add stamps "now": age every row.
    Visit.objects.filter(pk=visit.pk).update(created_at=then)
    for model, lookup in (
        (Recording, "visit"),
        (AudioChunk, "recording__visit"),
        (Photo, "visit"),
        (ChatMessage, "visit"),
        (Intake, "visit"),
        (UrgencyChange, "visit"),
        (Consent, "visit"),
    ):
        model.objects.filter(**{lookup: visit}).update(created_at=then)
    PhotoConcern.objects.filter(pk=concern.pk).update(created_at=then)
    visit.refresh_from_db()
    return consult


def _snapshot(consult: Consult) -> tuple[dict, set, str]:
    consult.visit.refresh_from_db()
    return consult.rows(), consult.files_left(), consult.visit.reason


ALL_FILES = {
    "live_audio",
    "upload_audio",
    "photo",
    "heatmap",
    "mask",
    "attachment",
    "attachment_only",
}


PERIODS = {
    "audio": 30,
    "transcripts": 90,
    "unsigned_drafts": 90,
    "chat_attachments": 90,
    "photos": 365,
    "chat_messages": 365,
    "intakes": 365,
    "signed_notes": 3650,
    "audit_log": None,
}


@pytest.fixture(autouse=True)
def _periods(settings):
    """The shipped defaults, whatever this machine's environment says."""
    settings.RETENTION = dict(PERIODS)
    settings.RETENTION_AGE_OF_MAJORITY = 18


# --- Settings -----------------------------------------------------------------------------


def test_retention_periods_come_from_the_environment(monkeypatch):
    from telehealth.settings import base

    try:
        monkeypatch.setenv("RETENTION_AUDIO_DAYS", "7")
        monkeypatch.setenv("RETENTION_SIGNED_NOTES_DAYS", "never")
        importlib.reload(base)
        assert base.RETENTION["audio"] == 7
        assert base.RETENTION["signed_notes"] is None
        assert base.RETENTION["photos"] == 365  # not set: the default
        for bad in ("0", "-3", "ten"):
            monkeypatch.setenv("RETENTION_AUDIO_DAYS", bad)
            with pytest.raises(ValueError, match="retention period"):
                importlib.reload(base)
    finally:
        for name in [name for name in os.environ if name.startswith("RETENTION_")]:
            monkeypatch.delenv(name)
        importlib.reload(base)
    assert base.RETENTION == PERIODS  # the shipped defaults


def test_beat_runs_the_retention_task():
    entry = django_settings.CELERY_BEAT_SCHEDULE["enforce-retention"]
    assert entry["task"] == tasks.retention_enforce.name


# --- The daily purge ----------------------------------------------------------------------


def test_retention_removes_expired_items_and_their_files_and_keeps_recent_ones(patient, physician):
    old = make_consult(patient=patient, physician=physician, age_days=400)
    recent = make_consult(patient=patient, physician=physician, age_days=5)

    retention.retention_enforce()

    rows, files, reason = _snapshot(old)
    assert files == set()
    assert rows == {**{kind: 0 for kind in FULL}, "consents": 1}
    assert reason == retention.REMOVED_REASON
    assert old.visit.urgency_reason == ""
    assert _snapshot(recent) == (FULL, ALL_FILES, f"{SECRET} rash")


def test_each_kind_expires_after_its_own_period(patient, physician, settings):
    consult = make_consult(patient=patient, physician=physician, age_days=60)
    inside = make_consult(patient=patient, physician=physician, age_days=29)

    retention.retention_enforce()  # defaults: audio 30 days, the rest longer

    rows, files, _ = _snapshot(consult)
    assert files == ALL_FILES - {"live_audio", "upload_audio"}
    # The live chunk keeps its row (without its file) while its transcript line exists; the
    # upload had no line, so its chunk and recording are gone.
    assert rows == {**FULL, "chunks": 1, "recordings": 1}
    assert AudioChunk.objects.get(recording__visit=consult.visit).path == ""
    assert _snapshot(inside)[:2] == (FULL, ALL_FILES)

    settings.RETENTION = {**settings.RETENTION, "transcripts": 45}
    retention.retention_enforce()
    rows, files, _ = _snapshot(consult)
    assert rows == {**FULL, "chunks": 0, "recordings": 0, "segments": 0}

    settings.RETENTION = {**settings.RETENTION, "chat_attachments": 45}
    retention.retention_enforce()
    rows, files, _ = _snapshot(consult)
    assert files == {"photo", "heatmap", "mask"}
    # The attachment-only message is gone; the one with text keeps its text, not the file.
    assert (rows["messages"], rows["attachments"]) == (2, 0)
    assert set(ChatMessage.objects.filter(visit=consult.visit).values_list("text", flat=True)) == {
        f"see {SECRET}",
        f"my {SECRET}",
    }
    assert rows["notes"] == rows["photos"] == rows["intakes"] == 1
    assert _snapshot(inside)[:2] == (FULL, ALL_FILES)


def test_signed_note_is_kept_for_the_legal_period_with_its_visit_intake_and_chat(
    patient, physician
):
    now = timezone.now()
    consult = make_consult(patient=patient, physician=physician, age_days=400, signed=True)

    retention.retention_enforce(now=now)

    rows, files, reason = _snapshot(consult)
    assert files == set()
    assert rows == {
        **FULL,
        "chunks": 0,
        "recordings": 0,
        "segments": 0,
        "photos": 0,
        "analyses": 0,
        "concerns": 0,
        "messages": 2,
        "attachments": 0,
    }
    assert reason == f"{SECRET} rash"

    retention.retention_enforce(now=now + timedelta(days=3650 - 400 - 1))
    assert _snapshot(consult)[0]["notes"] == 1

    retention.retention_enforce(now=now + timedelta(days=3650 - 400 + 1))
    rows, _, reason = _snapshot(consult)
    assert rows == {**{kind: 0 for kind in FULL}, "consents": 1}
    assert reason == retention.REMOVED_REASON
    assert Visit.objects.filter(pk=consult.visit.pk).exists()


def test_minors_signed_note_counts_the_legal_period_from_the_age_of_majority(physician):
    today = timezone.localdate()
    child = PatientFactory(email="child@example.org", date_of_birth=date(today.year - 8, 1, 1))
    adult = PatientFactory(email="adult@example.org")
    childs = make_consult(patient=child, physician=physician, age_days=1, signed=True)
    adults = make_consult(patient=adult, physician=physician, age_days=1, signed=True)
    eleven_years_on = timezone.now() + timedelta(days=3650 + 2)

    retention.retention_enforce(now=eleven_years_on)

    assert _snapshot(adults)[0]["notes"] == 0
    assert _snapshot(childs)[0]["notes"] == 1
    eighteenth = datetime(today.year + 10, 1, 1, tzinfo=timezone.get_current_timezone())
    retention.retention_enforce(now=eighteenth + timedelta(days=3650 + 2))
    assert _snapshot(childs)[0]["notes"] == 0


def test_visits_in_progress_are_never_touched(patient, physician):
    consult = make_consult(
        patient=patient, physician=physician, age_days=400, status=VisitStatus.IN_CONSULT
    )
    retention.retention_enforce()
    assert _snapshot(consult) == (FULL, ALL_FILES, f"{SECRET} rash")


def test_retention_task_is_idempotent_and_audits_counts_without_health_data(
    patient, other_patient, physician
):
    make_consult(patient=patient, physician=physician, age_days=400)
    make_consult(patient=other_patient, physician=physician, age_days=400)

    first = tasks.retention_enforce()

    assert first["audio"] == {"items": 4, "files": 4}
    assert first["photos"] == {"items": 2, "files": 6}
    assert first["signed_notes"] == {"items": 0, "files": 0}
    events = AuditEvent.objects.filter(object_type="retention", action="delete")
    assert sorted(e.patient_id or 0 for e in events) == sorted([0, patient.pk, other_patient.pk])
    mine = events.get(patient=patient)
    assert "audio 2" in mine.detail and "photos 1" in mine.detail
    assert all(SECRET not in e.detail for e in events)

    second = tasks.retention_enforce()

    assert all(counts == {"items": 0, "files": 0} for counts in second.values())
    assert AuditEvent.objects.filter(object_type="retention").count() == 3


# --- Erasure requests ---------------------------------------------------------------------


@pytest.fixture
def erasure_world(patient, other_patient, physician, admin_user):
    """Patients A and B, each with a signed and an unsigned visit; A has filed a request."""
    a_signed = make_consult(patient=patient, physician=physician, age_days=10, signed=True)
    a_draft = make_consult(patient=patient, physician=physician, age_days=3)
    b_signed = make_consult(patient=other_patient, physician=physician, age_days=10, signed=True)
    b_draft = make_consult(patient=other_patient, physician=physician, age_days=3)
    erasure = retention.erasure_request_file(patient=patient)
    return {
        "a_signed": a_signed,
        "a_draft": a_draft,
        "b_signed": b_signed,
        "b_draft": b_draft,
        "erasure": erasure,
    }


def test_erasure_removes_patients_data_and_files_keeps_signed_record_and_other_patient(
    erasure_world, patient, admin_user
):
    w = erasure_world
    b_before = [_snapshot(w["b_signed"]), _snapshot(w["b_draft"])]
    audit_before = set(AuditEvent.objects.values_list("pk", flat=True))

    retention.erasure_process(erasure=w["erasure"], admin=admin_user)

    rows, files, reason = _snapshot(w["a_signed"])
    assert files == set()
    assert rows == {
        **{kind: 0 for kind in FULL},
        "notes": 1,
        "revisions": 2,
        "intakes": 1,
        "urgency_changes": 1,
        "messages": 2,
        "consents": 1,
    }
    assert reason == f"{SECRET} rash"
    rows, files, reason = _snapshot(w["a_draft"])
    assert files == set()
    assert rows == {**{kind: 0 for kind in FULL}, "consents": 1}
    assert reason == retention.REMOVED_REASON
    assert not PhotoConcern.objects.filter(patient=patient).exists()
    assert [_snapshot(w["b_signed"]), _snapshot(w["b_draft"])] == b_before
    assert b_before[0][1] == ALL_FILES
    assert audit_before <= set(AuditEvent.objects.values_list("pk", flat=True))
    event = AuditEvent.objects.get(object_type="erasure_request", action="delete")
    assert (event.actor, event.patient, event.object_id) == (
        admin_user,
        patient,
        str(w["erasure"].pk),
    )
    assert SECRET not in event.detail


def test_erasure_report_lists_what_was_removed_and_what_was_kept_and_why(
    erasure_world, patient, admin_user, client
):
    w = erasure_world
    erasure = retention.erasure_process(erasure=w["erasure"], admin=admin_user)

    assert erasure.status == ErasureRequest.Status.DONE
    assert erasure.processed_by == admin_user
    removed = {row["kind"]: (row["items"], row["files"]) for row in erasure.report["removed"]}
    assert removed == {
        "unsigned_drafts": (1, 0),
        "intakes": (1, 0),  # the unsigned visit's
        "chat_messages": (3, 2),  # the unsigned visit's, with their attachments
        "chat_attachments": (2, 2),  # the signed visit's
        "photos": (2, 6),
        "transcripts": (2, 0),
        "audio": (4, 4),
    }
    kept = {row["kind"]: row for row in erasure.report["kept"]}
    assert set(kept) == {"signed_notes", "audit_log", "consents", "visits", "account"}
    signed_on = timezone.localdate(w["a_signed"].visit.note.signed_at)
    assert kept["signed_notes"]["items"] == 1
    assert kept["signed_notes"]["until"] == (signed_on + timedelta(days=3650)).isoformat()
    assert "law" in kept["signed_notes"]["reason"]
    assert "1 intake(s) and 2 chat message(s)" in kept["signed_notes"]["extra"]
    assert kept["audit_log"]["items"] == AuditEvent.objects.filter(patient=patient).count()
    assert (kept["consents"]["items"], kept["visits"]["items"]) == (2, 2)
    assert all(row["reason"] for row in kept.values())
    assert SECRET not in str(erasure.report)

    client.force_login(patient)
    page = client.get(reverse("erasure_request", kwargs={"request_id": erasure.pk}))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Kept, and why" in text
    assert kept["signed_notes"]["until"] in text
    assert retention.POLICY["audio"].label in text


def test_erasure_waits_until_the_patients_visits_have_ended(
    erasure_world, patient, physician, admin_user, client
):
    w = erasure_world
    make_consult(patient=patient, physician=physician, age_days=-1, status=VisitStatus.BOOKED)

    with pytest.raises(retention.ErasureBlocked, match="1 visit booked"):
        retention.erasure_process(erasure=w["erasure"], admin=admin_user)

    client.force_login(admin_user)
    url = reverse("erasure_process", kwargs={"request_id": w["erasure"].pk})
    assert client.post(url).status_code == 302
    w["erasure"].refresh_from_db()
    assert w["erasure"].status == ErasureRequest.Status.PENDING
    assert _snapshot(w["a_draft"])[:2] == (FULL, ALL_FILES)


def test_processing_a_request_twice_keeps_the_first_report(erasure_world, admin_user):
    w = erasure_world
    first = retention.erasure_process(erasure=w["erasure"], admin=admin_user)
    again = retention.erasure_process(erasure=w["erasure"], admin=admin_user)
    assert again.report == first.report
    assert again.processed_at == first.processed_at
    assert AuditEvent.objects.filter(object_type="erasure_request", action="delete").count() == 1


# --- Who may do what ----------------------------------------------------------------------


def test_patient_files_their_own_request_from_the_privacy_page(patient, client, settings):
    settings.RETENTION = {**settings.RETENTION, "audio": 7}
    client.force_login(patient)
    url = reverse("privacy")

    page = client.get(url)
    assert page.status_code == 200
    assert "7 days" in page.content.decode()

    assert client.post(url, {}).status_code == 200  # not confirmed
    assert not ErasureRequest.objects.exists()

    response = client.post(url, {"confirm": "on"})
    erasure = ErasureRequest.objects.get()
    assert (erasure.patient, erasure.status) == (patient, ErasureRequest.Status.PENDING)
    assert response["Location"] == reverse("erasure_request", kwargs={"request_id": erasure.pk})
    assert AuditEvent.objects.filter(
        actor=patient, object_type="erasure_request", action="write"
    ).exists()

    assert "Your request is waiting for the clinic" in client.get(url).content.decode()
    client.post(url, {"confirm": "on"})
    assert ErasureRequest.objects.count() == 1  # one pending request at a time


def test_another_patient_cannot_see_the_request(erasure_world, other_patient, client):
    erasure = erasure_world["erasure"]
    detail = reverse("erasure_request", kwargs={"request_id": erasure.pk})
    client.force_login(other_patient)

    assert client.get(detail).status_code == 404
    assert AuditEvent.objects.filter(
        actor=other_patient, action="denied", object_type="erasure_request"
    ).exists()
    assert detail not in client.get(reverse("privacy")).content.decode()


def test_staff_cannot_file_and_only_admins_process(
    erasure_world, patient, physician, admin_user, client
):
    erasure = erasure_world["erasure"]
    process = reverse("erasure_process", kwargs={"request_id": erasure.pk})

    client.force_login(physician)
    assert client.post(reverse("privacy"), {"confirm": "on"}).status_code == 403
    assert client.post(process).status_code == 403
    client.force_login(patient)
    assert client.post(process).status_code == 403
    erasure.refresh_from_db()
    assert erasure.status == ErasureRequest.Status.PENDING
    assert ErasureRequest.objects.count() == 1

    client.force_login(admin_user)
    detail = reverse("erasure_request", kwargs={"request_id": erasure.pk})
    assert detail in client.get(reverse("erasure_requests")).content.decode()
    assert client.post(process).status_code == 302
    erasure.refresh_from_db()
    assert erasure.status == ErasureRequest.Status.DONE
    with pytest.raises(PermissionError):
        retention.erasure_request_file(patient=physician)


def test_django_admin_lists_requests_read_only(erasure_world, admin_user, client):
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    erasure = erasure_world["erasure"]
    listing = client.get(reverse("admin:telehealth_erasurerequest_changelist"))
    assert listing.status_code == 200
    assert escape(str(erasure.patient)) in listing.content.decode()
    assert client.get(reverse("admin:telehealth_erasurerequest_add")).status_code == 403
    delete = reverse("admin:telehealth_erasurerequest_delete", args=[erasure.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert ErasureRequest.objects.filter(pk=erasure.pk).exists()
