"""Patient booking pages and physician availability. Thin: forms in, one service, render out."""

import zoneinfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from consults import hooks
from consults.booking import services
from consults.forms import (
    AvailabilityExceptionForm,
    AvailabilityRuleForm,
    BookingForm,
    IntakeForm,
    SlotForm,
)
from consults.models import AvailabilityException, AvailabilityRule, ClinicalNote
from consults.notes.selectors import summary_is_ready
from consults.permissions import visit_or_404
from consults.selectors import (
    free_slots,
    patient_left_call,
    physicians,
    visits_for_patient,
)
from telehealth.audit import audit_read
from telehealth.models import Role
from telehealth.permissions import role_required


def _patient_tz(request: HttpRequest):
    return zoneinfo.ZoneInfo(request.user.time_zone)


def _slots_by_day(request: HttpRequest, *, physician, tz) -> dict:
    """The physician's free slots for the day the patient picked (in the patient's zone)."""
    slots = free_slots(physician=physician)
    days = sorted({slot.astimezone(tz).date() for slot in slots})
    wanted = request.POST.get("day") or request.GET.get("day") or ""
    day = next((d for d in days if d.isoformat() == wanted), days[0] if days else None)
    return {
        "days": days,
        "day": day,
        "slots": [slot for slot in slots if slot.astimezone(tz).date() == day],
    }


@role_required(Role.PATIENT)
def visit_list(request: HttpRequest) -> HttpResponse:
    upcoming, past = visits_for_patient(patient=request.user)
    return render(request, "consults/visit_list.html", {"upcoming": upcoming, "past": past})


@role_required(Role.PATIENT)
def book_start(request: HttpRequest) -> HttpResponse:
    return render(request, "consults/book_start.html", {"physicians": physicians()})


@role_required(Role.PATIENT)
def book_slot(request: HttpRequest, physician_id: int) -> HttpResponse:
    physician = get_object_or_404(physicians(), pk=physician_id)
    tz = _patient_tz(request)
    picked = _slots_by_day(request, physician=physician, tz=tz)
    form = BookingForm(
        request.POST if request.method == "POST" else None, slots=picked["slots"], tz=tz
    )
    if request.method == "POST" and form.is_valid():
        try:
            visit = services.visit_book(
                patient=request.user,
                physician=physician,
                start=form.cleaned_data["slot"],
                reason=form.cleaned_data["reason"],
                symptoms=form.cleaned_data["symptoms"],
                symptom_duration=form.cleaned_data["symptom_duration"],
                red_flags=form.cleaned_data["red_flags"],
                medicines=form.cleaned_data["medicines"],
                allergies=form.cleaned_data["allergies"],
                same_day_confirmed=request.POST.get("confirm_same_day") == "1",
            )
        except services.AlreadyBooked as exc:
            messages.info(request, str(exc))
            return redirect("consults:visit_detail", visit_id=exc.visit.pk)
        except services.SameDayVisit as exc:
            context = {"form": form, "physician": physician, "tz": tz, "visits": exc.visits}
            return render(request, "consults/book_confirm.html", {**context, **picked})
        except services.SlotTaken as exc:
            # Offer what is free now: the lost slot is gone from the list, so not selected;
            # the message goes above the list, where it is seen.
            picked = _slots_by_day(request, physician=physician, tz=tz)
            form = BookingForm(request.POST, slots=picked["slots"], tz=tz)
            form.is_valid()
            form.add_error(None, str(exc))
        except services.BookingError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Your visit is booked.")
            return redirect("consults:visit_detail", visit_id=visit.pk)
    context = {"form": form, "physician": physician, "tz": tz, **picked}
    return render(request, "consults/book_slot.html", context)


@role_required(Role.PATIENT)
def book_on_demand(request: HttpRequest) -> HttpResponse:
    form = IntakeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            visit = services.visit_join_on_demand(patient=request.user, **form.cleaned_data)
        except services.BookingError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "You are in the queue. A physician will see you soon.")
            return redirect("consults:visit_detail", visit_id=visit.pk)
    return render(request, "consults/book_on_demand.html", {"form": form})


def _patient_left_call(request: HttpRequest, visit) -> bool:
    # Only the patient's own page offers "rejoin" instead of taking them straight back in.
    return request.user.pk == visit.patient_id and patient_left_call(visit=visit)


@role_required(Role.PATIENT, Role.PHYSICIAN, Role.ADMIN)
def visit_detail(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = visit_or_404(request, visit_id)
    audit_read(request=request, object_type="visit", object_id=visit.pk, patient=visit.patient)
    staff = not request.user.is_patient
    note = ClinicalNote.objects.filter(visit=visit).first()
    context = {
        "visit": visit,
        "intake": getattr(visit, "intake", None),
        "place": hooks.waiting_place(visit=visit),
        "left_call": _patient_left_call(request, visit),
        "summary_ready": note is not None and note.status == ClinicalNote.Status.SIGNED,
        # Urgency (and its history) can come from the AI, the draft note too: staff only.
        "urgency_history": visit.urgency_changes.all()[:10] if staff else [],
        "note": note if staff else None,
        "tz": _patient_tz(request),
    }
    return render(request, "consults/visit_detail.html", context)


@role_required(Role.PATIENT, Role.PHYSICIAN, Role.ADMIN)
def visit_place(request: HttpRequest, visit_id: int) -> HttpResponse:
    """The live part of the waiting page, re-fetched when the queue changes."""
    visit = visit_or_404(request, visit_id)
    context = {
        "visit": visit,
        "place": hooks.waiting_place(visit=visit),
        "left_call": _patient_left_call(request, visit),
        "summary_ready": summary_is_ready(visit=visit),
    }
    return render(request, "consults/_visit_place.html", context)


@require_POST
@role_required(Role.PATIENT, Role.ADMIN)
def visit_cancel(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = visit_or_404(request, visit_id)
    try:
        services.visit_cancel(visit=visit, actor=request.user)
    except services.BookingError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "The visit is cancelled.")
    return redirect("consults:visit_detail", visit_id=visit.pk)


@require_POST
@role_required(Role.PATIENT)
def visit_check_in(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = visit_or_404(request, visit_id)
    try:
        services.visit_check_in(visit=visit, actor=request.user)
    except services.BookingError as exc:
        messages.error(request, str(exc))
    return redirect("consults:visit_detail", visit_id=visit.pk)


@role_required(Role.PATIENT)
def visit_reschedule(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = visit_or_404(request, visit_id)
    if visit.physician is None:
        messages.error(request, "On-demand visits have no slot to move.")
        return redirect("consults:visit_detail", visit_id=visit.pk)
    tz = _patient_tz(request)
    picked = _slots_by_day(request, physician=visit.physician, tz=tz)
    form = SlotForm(
        request.POST if request.method == "POST" else None, slots=picked["slots"], tz=tz
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.visit_reschedule(
                visit=visit, actor=request.user, start=form.cleaned_data["slot"]
            )
        except services.BookingError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Your visit has been moved.")
            return redirect("consults:visit_detail", visit_id=visit.pk)
    context = {"form": form, "visit": visit, "tz": tz, **picked}
    return render(request, "consults/reschedule.html", context)


@role_required(Role.PHYSICIAN)
def availability(request: HttpRequest) -> HttpResponse:
    physician = request.user
    rule_form = AvailabilityRuleForm(prefix="rule")
    exception_form = AvailabilityExceptionForm(prefix="exc")
    if request.method == "POST":
        try:
            if "add_rule" in request.POST:
                rule_form = AvailabilityRuleForm(request.POST, prefix="rule")
                if rule_form.is_valid():
                    services.availability_rule_add(physician=physician, **rule_form.cleaned_data)
                    return redirect("consults:availability")
            elif "add_exception" in request.POST:
                exception_form = AvailabilityExceptionForm(request.POST, prefix="exc")
                if exception_form.is_valid():
                    services.availability_exception_add(
                        physician=physician, **exception_form.cleaned_data
                    )
                    return redirect("consults:availability")
            elif "delete_rule" in request.POST:
                AvailabilityRule.objects.filter(
                    physician=physician, pk=request.POST.get("delete_rule", "0")
                ).delete()
                return redirect("consults:availability")
            elif "delete_exception" in request.POST:
                AvailabilityException.objects.filter(
                    physician=physician, pk=request.POST.get("delete_exception", "0")
                ).delete()
                return redirect("consults:availability")
        except services.BookingError as exc:
            messages.error(request, str(exc))
        except ValueError:
            messages.error(request, "That entry could not be found.")
    context = {
        "rules": physician.availability_rules.all(),
        "exceptions": physician.availability_exceptions.filter(date__gte=timezone.localdate()),
        "rule_form": rule_form,
        "exception_form": exception_form,
        "upcoming_slots": free_slots(physician=physician, days=7),
        "tz": zoneinfo.ZoneInfo(physician.time_zone),
    }
    return render(request, "consults/availability.html", context)
