from django import forms

from consults.selectors import physicians
from consults.urgency import Urgency


class UrgencyOverrideForm(forms.Form):
    level = forms.ChoiceField(choices=Urgency.choices)
    reason = forms.CharField(max_length=300)


class ReassignForm(forms.Form):
    physician = forms.ModelChoiceField(queryset=physicians())
