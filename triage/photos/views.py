"""Photo pages: the patient adds photos; the physician sees the triage and reviews it."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from consults.booking.services import BookingError
from consults.models import ConsentPurpose
from consults.permissions import visit_or_404
from consults.room.services import consent_record
from consults.selectors import consent_state, visit_get_for_user
from telehealth.audit import audit_read
from telehealth.models import Role
from telehealth.permissions import not_found_and_audit, role_required
from telehealth.private_media import private_response
from triage.models import Photo, PhotoAnalysis
from triage.photos import services as photos
from triage.photos.forms import PhotoReviewForm, PhotoScaleForm, PhotoUploadForm
from triage.services import TriageError

VARIANTS = {"photo": "file_path", "heatmap": "heatmap_path", "mask": "mask_path"}


@role_required(Role.PATIENT, Role.PHYSICIAN)
def photo_add(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = visit_or_404(request, visit_id)
    ai_consent = consent_state(visit=visit)[ConsentPurpose.AI_PHOTOS]
    form = PhotoUploadForm(
        request.POST if request.method == "POST" else None, request.FILES or None
    )
    rejected = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if request.user.is_patient and data["ai_consent"] in (True, False):
                consent_record(
                    visit=visit,
                    patient=request.user,
                    choices={ConsentPurpose.AI_PHOTOS: data["ai_consent"]},
                )
            stored, rejected = photos.photos_submit(
                visit=visit,
                uploader=request.user,
                kind=data["kind"],
                body_site=data["body_site"],
                duration=data["duration"],
                stated_area_cm2=data["stated_area_cm2"],
                files=[(f.name, f.read()) for f in data["photos"]],
            )
        except (TriageError, BookingError) as exc:
            form.add_error(None, str(exc))
        else:
            if stored:
                messages.success(request, f"{len(stored)} photo(s) received.")
            if not rejected:
                return redirect("triage:photo_list", visit_id=visit.pk)
    context = {"visit": visit, "form": form, "rejected": rejected, "ai_consent": ai_consent}
    return render(request, "triage/photo_add.html", context)


@role_required(Role.PATIENT, Role.PHYSICIAN, Role.ADMIN)
def photo_list(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = visit_or_404(request, visit_id)
    audit_read(request=request, object_type="photos", object_id=visit.pk, patient=visit.patient)
    user = request.user
    context = {
        "visit": visit,
        # Nothing the AI produces reaches a patient: they see their photos and their status only.
        "groups": photos.photos_page(visit=visit, viewer=user),
        "show_ai": not user.is_patient,
        "review_form": PhotoReviewForm(),
        "can_review": user.pk == visit.physician_id,
        "can_measure": photos.photo_may_measure(user=user, visit=visit),
    }
    return render(request, "triage/photo_list.html", context)


@role_required(Role.PATIENT, Role.PHYSICIAN, Role.ADMIN)
def photo_image(request: HttpRequest, photo_id: int, variant: str) -> HttpResponse:
    photo = Photo.objects.select_related("visit").filter(pk=photo_id).first()
    visit = photo and visit_get_for_user(user=request.user, visit_id=photo.visit_id)
    field = VARIANTS.get(variant)
    if visit is None or field is None or (variant != "photo" and request.user.is_patient):
        raise not_found_and_audit(request=request, object_type="photo", object_id=photo_id)
    source = photo if variant == "photo" else getattr(photo, "analysis", None)
    relative = getattr(source, field, "") if source is not None else ""
    if not relative:
        raise not_found_and_audit(request=request, object_type="photo", object_id=photo_id)
    audit_read(
        request=request, object_type=f"photo_{variant}", object_id=photo.pk, patient=visit.patient
    )
    content_type = "image/jpeg" if variant == "photo" else "image/png"
    response = private_response(
        relative=relative, content_type=content_type, download_name=f"photo-{photo.pk}-{variant}"
    )
    response["Content-Disposition"] = "inline"
    return response


@require_POST
@role_required(Role.PHYSICIAN)
def photo_review(request: HttpRequest, photo_id: int) -> HttpResponse:
    analysis = (
        PhotoAnalysis.objects.select_related("photo__visit").filter(photo_id=photo_id).first()
    )
    if (
        analysis is None
        or visit_get_for_user(user=request.user, visit_id=analysis.photo.visit_id) is None
    ):
        raise not_found_and_audit(request=request, object_type="photo", object_id=photo_id)
    form = PhotoReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose confirm or overrule.")
    else:
        try:
            photos.photo_review(analysis=analysis, physician=request.user, **form.cleaned_data)
        except TriageError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Review saved.")
    return redirect("triage:photo_list", visit_id=analysis.photo.visit_id)


@require_POST
@role_required(Role.PHYSICIAN, Role.ADMIN)
def photo_scale(request: HttpRequest, photo_id: int) -> HttpResponse:
    photo = photos.photo_get_for_measuring(user=request.user, photo_id=photo_id)
    if photo is None:
        raise not_found_and_audit(request=request, object_type="photo", object_id=photo_id)
    form = PhotoScaleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Click two points on the photo and give the length between them.")
    else:
        data = form.cleaned_data
        try:
            photos.photo_scale_set(
                photo=photo,
                user=request.user,
                start=(data["x1"], data["y1"]),
                end=(data["x2"], data["y2"]),
                length_cm=data["length_cm"],
            )
        except TriageError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Scale saved: the wound is now measured in cm².")
    return redirect(f"{reverse('triage:photo_list', args=[photo.visit_id])}#photo-{photo.pk}")
