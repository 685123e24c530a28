"""Queue pages for physicians and the administrators' board."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from consults.booking import services as visit_services
from consults.permissions import visit_or_404
from consults.selectors import visits_to_sign
from telehealth.audit import audit_reads
from telehealth.models import Role
from telehealth.permissions import role_required
from triage import services
from triage.forms import ReassignForm, UrgencyOverrideForm
from triage.queue.selectors import QueueEntry, queue_board, queue_for_physician, queue_stats


def _audit_queue_reads(request: HttpRequest, entries: list[QueueEntry]) -> None:
    # One batch per poll; a poll repeating the last within AUDIT_REPEAT_WINDOW only counts.
    reads = [(entry.visit.pk, entry.visit.patient_id) for entry in entries]
    audit_reads(request=request, object_type="queue_entry", reads=reads)


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(fallback)


def _row_forms(
    entries: list[QueueEntry], *, reassign: bool = False
) -> list[tuple[QueueEntry, UrgencyOverrideForm, ReassignForm | None]]:
    # Each row's "Change urgency" starts at that visit's level, so a hurried Save changes nothing.
    # Ids carry the visit's id: each row's labels must name that row's own controls.
    rows = []
    for e in entries:
        auto_id = f"id_%s_{e.visit.pk}"
        urgency = UrgencyOverrideForm(initial={"level": e.visit.urgency}, auto_id=auto_id)
        rows.append((e, urgency, ReassignForm(auto_id=auto_id) if reassign else None))
    return rows


@role_required(Role.PHYSICIAN)
def queue(request: HttpRequest) -> HttpResponse:
    context = {"visits": list(visits_to_sign(physician=request.user)[:50])}
    return render(request, "triage/queue.html", context)


@role_required(Role.PHYSICIAN)
def queue_partial(request: HttpRequest) -> HttpResponse:
    entries = queue_for_physician(physician=request.user)
    _audit_queue_reads(request, entries)
    return render(request, "triage/_queue_table.html", {"rows": _row_forms(entries)})


@role_required(Role.ADMIN)
def board(request: HttpRequest) -> HttpResponse:
    return render(request, "triage/board.html")


@role_required(Role.ADMIN)
def board_partial(request: HttpRequest) -> HttpResponse:
    queues = queue_board()
    for entries in queues.values():
        _audit_queue_reads(request, entries)
    context = {
        "queues": {name: _row_forms(entries, reassign=True) for name, entries in queues.items()},
        "stats": queue_stats(board=queues),
        "admin_view": True,
    }
    return render(request, "triage/_board.html", context)


@require_POST
@role_required(Role.PHYSICIAN, Role.ADMIN)
def urgency_override(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = visit_or_404(request, visit_id)
    form = UrgencyOverrideForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a level and give a reason for the change.")
    else:
        try:
            services.visit_urgency_override(visit=visit, actor=request.user, **form.cleaned_data)
        except services.TriageError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Urgency of visit #{visit.pk} updated.")
    return _back(request, "home")


@require_POST
@role_required(Role.ADMIN)
def reassign(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = visit_or_404(request, visit_id)
    form = ReassignForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a physician.")
    else:
        try:
            visit_services.visit_reassign(
                visit=visit, actor=request.user, physician=form.cleaned_data["physician"]
            )
        except visit_services.BookingError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Visit #{visit.pk} reassigned.")
    return _back(request, "triage:board")


@require_POST
@role_required(Role.PHYSICIAN, Role.ADMIN)
def no_show(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = visit_or_404(request, visit_id)
    try:
        visit_services.visit_mark_no_show(visit=visit, actor=request.user)
    except visit_services.BookingError as exc:
        messages.error(request, str(exc))
    return _back(request, "home")
