"""Forms of the photo pages: upload, review, scale."""

from django import forms

from consults.urgency import Urgency
from triage.models import PhotoAnalysis, PhotoKind
from triage.photos.services import MAX_PHOTO_BYTES, MAX_PHOTOS_PER_CONCERN


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class PhotoFilesField(forms.FileField):
    """One to three photo files, each under the size limit (content is checked by the service)."""

    def __init__(self, *args, max_files: int, max_bytes: int, **kwargs):
        self.max_files, self.max_bytes = max_files, max_bytes
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data]
        cleaned = [super(PhotoFilesField, self).clean(item, initial) for item in files]
        if not 1 <= len(cleaned) <= self.max_files:
            raise forms.ValidationError(f"Choose between 1 and {self.max_files} photos.")
        if any(item.size > self.max_bytes for item in cleaned):
            raise forms.ValidationError(
                f"Each photo must be under {self.max_bytes // (1024 * 1024)} MB."
            )
        return cleaned


class PhotoUploadForm(forms.Form):
    kind = forms.ChoiceField(
        label="What is it?", choices=PhotoKind.choices, widget=forms.RadioSelect
    )
    body_site = forms.CharField(
        max_length=100, label="Where on your body?", help_text="For example: left forearm."
    )
    duration = forms.CharField(max_length=100, required=False, label="How long have you had it?")
    stated_area_cm2 = forms.FloatField(
        required=False,
        min_value=0.01,
        max_value=2000,
        label="Wound size in cm², if a nurse measured it (optional)",
    )
    photos = PhotoFilesField(
        max_files=MAX_PHOTOS_PER_CONCERN,
        max_bytes=MAX_PHOTO_BYTES,
        widget=MultipleFileInput(
            attrs={"accept": "image/jpeg,image/png,image/webp", "capture": "environment"}
        ),
        label="Photos (1 to 3)",
        help_text="Good light, in focus, the spot in the middle and filling much of the photo.",
    )
    ai_consent = forms.TypedChoiceField(
        required=False,
        label="May an AI model assess these photos to help your physician prioritise?",
        choices=[("yes", "Yes"), ("no", "No")],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
    )


class PhotoReviewForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[
            (PhotoAnalysis.Review.CONFIRMED, "Confirm"),
            (PhotoAnalysis.Review.OVERRULED, "Overrule"),
        ]
    )
    note = forms.CharField(max_length=300, required=False)
    level = forms.ChoiceField(choices=[("", "Keep urgency"), *Urgency.choices], required=False)


class PhotoScaleForm(forms.Form):
    """Two points on the photo (in the photo's own pixels) and the known length between them."""

    x1 = forms.FloatField(min_value=0)
    y1 = forms.FloatField(min_value=0)
    x2 = forms.FloatField(min_value=0)
    y2 = forms.FloatField(min_value=0)
    length_cm = forms.FloatField(min_value=0.1, max_value=50, initial=1, label="Known length (cm)")
