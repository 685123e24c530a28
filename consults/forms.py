from datetime import datetime

from django import forms

from consults.models import AvailabilityException, AvailabilityRule
from consults.urgency import RED_FLAGS


class IntakeForm(forms.Form):
    """The short intake a patient fills at booking."""

    reason = forms.CharField(
        max_length=200, label="Reason for visit", widget=forms.TextInput(attrs={"autofocus": True})
    )
    symptoms = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Your symptoms",
    )
    symptom_duration = forms.CharField(
        required=False,
        max_length=100,
        label="How long have you had them?",
        help_text="For example: 3 days, since last week.",
    )
    medicines = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Medicines you take",
        help_text="Names and doses if you know them, for example: metformin 500 mg twice a day.",
    )
    allergies = forms.CharField(
        required=False,
        max_length=500,
        label="Allergies",
        help_text="Medicines or other things you are allergic to, and what happens. "
        "Leave empty if none.",
    )
    red_flags = forms.MultipleChoiceField(
        required=False,
        choices=[(code, label) for code, (label, _level) in RED_FLAGS.items()],
        widget=forms.CheckboxSelectMultiple,
        label="Do you have any of these right now?",
    )


class SlotForm(forms.Form):
    """A slot chosen from the ones offered (validated against them, so no crafted times)."""

    slot = forms.ChoiceField(label="Choose a time", widget=forms.RadioSelect)

    def __init__(self, *args, slots: list[datetime], tz, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["slot"].choices = [
            (s.isoformat(), s.astimezone(tz).strftime("%H:%M")) for s in slots
        ]
        self.fields["slot"].error_messages["invalid_choice"] = (
            "That time is no longer available. Please choose another."
        )

    def clean_slot(self) -> datetime:
        return datetime.fromisoformat(self.cleaned_data["slot"])


class _AnySlotField(forms.ChoiceField):
    """Offers the free slots, but takes any well-formed time: visit_book says whether it is
    still free, so a slot lost since the page loaded (or booked already by this patient, via
    Back) gets the same clear answer as one lost mid-booking."""

    def valid_value(self, value) -> bool:
        try:
            return datetime.fromisoformat(str(value)).tzinfo is not None
        except ValueError:
            return False


class BookingForm(IntakeForm, SlotForm):
    slot = _AnySlotField(label="Choose a time", widget=forms.RadioSelect)
    field_order = [
        "slot",
        "reason",
        "symptoms",
        "symptom_duration",
        "medicines",
        "allergies",
        "red_flags",
    ]


class AvailabilityRuleForm(forms.ModelForm):
    class Meta:
        model = AvailabilityRule
        fields = ("weekday", "start_time", "end_time", "slot_minutes")
        widgets = {
            "start_time": forms.TimeInput(attrs={"type": "time"}),
            "end_time": forms.TimeInput(attrs={"type": "time"}),
        }

    def clean(self):
        data = super().clean()
        start, end = data.get("start_time"), data.get("end_time")
        if start and end and end <= start:
            raise forms.ValidationError("The end time must be after the start time.")
        return data


class AvailabilityExceptionForm(forms.ModelForm):
    class Meta:
        model = AvailabilityException
        fields = ("date", "kind", "start_time", "end_time", "slot_minutes", "note")
        widgets = {
            "date": forms.DateInput(attrs={"type": "date"}),
            "start_time": forms.TimeInput(attrs={"type": "time"}),
            "end_time": forms.TimeInput(attrs={"type": "time"}),
        }
        help_texts = {"start_time": "Leave both times empty to take the whole day off."}


class ConsentForm(forms.Form):
    """Consent per purpose; each can be given, refused, or later withdrawn."""

    def __init__(self, *args, current: dict[str, bool | None], **kwargs):
        super().__init__(*args, **kwargs)
        from consults.models import ConsentPurpose

        for purpose in ConsentPurpose:
            now = current.get(purpose.value)
            self.fields[purpose.value] = forms.TypedChoiceField(
                label=purpose.label,
                choices=[("yes", "Yes"), ("no", "No")],
                coerce=lambda value: value == "yes",
                widget=forms.RadioSelect,
                initial=None if now is None else ("yes" if now else "no"),
            )


class ChatForm(forms.Form):
    text = forms.CharField(required=False, max_length=2000)
    attachment = forms.FileField(required=False)


class AdmitForm(forms.Form):
    """Admit from the queue; a reason only when passing over a more urgent or overdue patient."""

    reason = forms.CharField(
        required=False,
        max_length=300,
        label="Your reason",
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": 300}),
    )
