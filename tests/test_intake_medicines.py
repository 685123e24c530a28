"""The intake asks for the patient's medicines and allergies: stored with the booking, shown to
the visit's physician and to the patient, and handed to the transcriber as what to listen for."""

from django.urls import reverse

from consults.booking import services
from consults.models import Visit
from consults.room import services as room_services
from consults.speech.vocabulary import SpeechContext
from consults.transcripts.selectors import speech_known_terms, speech_patient_words
from tests.test_permissions import login

FORMULARY = ("lisinopril", "metformin", "penicillin", "amoxicillin")


def test_on_demand_intake_stores_medicines_and_allergies_and_both_sides_see_them(
    client, patient, physician
):
    login(client, patient)
    response = client.post(
        reverse("consults:book_on_demand"),
        {
            "reason": "Cough",
            "medicines": "Lisinopril 10 mg once a day\nEliquis 5mg twice daily",
            "allergies": "Penicillin (hives)",
        },
    )
    assert response.status_code == 302
    visit = Visit.objects.get(patient=patient)
    assert visit.intake.medicines.startswith("Lisinopril 10 mg")
    assert visit.intake.allergies == "Penicillin (hives)"

    page = client.get(reverse("consults:visit_detail", args=[visit.pk])).content.decode()
    assert "Eliquis 5mg twice daily" in page and "Penicillin (hives)" in page

    room_services.visit_admit(visit=visit, physician=physician)  # "Admit" on the queue
    login(client, physician)
    page = client.get(reverse("consults:visit_detail", args=[visit.pk])).content.decode()
    assert "Medicines" in page and "Lisinopril 10 mg once a day" in page
    assert "Penicillin (hives)" in page


def test_the_transcriber_listens_for_the_intake_medicines(patient, physician, slots):
    visit = services.visit_book(
        patient=patient,
        physician=physician,
        start=slots[0],
        reason="Blood pressure check",
        medicines="lisinopril 10mg, Eliquis 5 mg and my water pill",
        allergies="Penicillin - rash; peanuts",
    )
    # Formulary names the patient wrote are names to hear and to correct towards...
    assert speech_known_terms(visit=visit, formulary=FORMULARY) == ("lisinopril", "penicillin")
    # ...and every name they wrote is a hint, doses cut off, but never a correction target.
    words = speech_patient_words(visit=visit)
    assert words == ("lisinopril", "Eliquis", "my water pill", "Penicillin", "peanuts")
    context = SpeechContext(
        terms=speech_known_terms(visit=visit, formulary=FORMULARY),
        patient_words=words,
        formulary=FORMULARY,
    )
    assert "Eliquis" in context.hotwords()
    assert "Eliquis" not in context.lexicon


def test_a_visit_without_intake_answers_has_no_patient_words(patient, physician, slots):
    visit = services.visit_book(patient=patient, physician=physician, start=slots[0], reason="Rash")
    assert speech_patient_words(visit=visit) == ()
    assert speech_known_terms(visit=visit, formulary=FORMULARY) == ()
