from django import forms
from django.contrib.auth.forms import UserCreationForm

from telehealth.models import User


class SignupForm(UserCreationForm):
    """Patient self-registration."""

    class Meta:
        model = User
        fields = ("email", "first_name", "last_name", "date_of_birth", "time_zone")
        widgets = {"date_of_birth": forms.DateInput(attrs={"type": "date"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["first_name"].required = True
        self.fields["last_name"].required = True
        self.fields["time_zone"].help_text = "Appointment times are shown in this time zone."
        if not self.is_bound:
            # static/js/signup.js picks the browser's zone; a form sent back keeps the choice.
            self.fields["time_zone"].widget.attrs["data-browser-default"] = "true"

    def validate_unique(self) -> None:
        """Never say here whether the address has an account: patient_sign_up e-mails it."""
