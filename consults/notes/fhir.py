"""FHIR export of a signed note: a document Bundle led by a Composition.

Built from the signed note's items only (what the physician signed), validated with
fhir.resources against FHIR R4B (4.3.0, the R4 technical correction).
"""

import uuid
from datetime import UTC

from django.utils import timezone

from consults.models import ClinicalNote

LOINC = "http://loinc.org"
SOAP_SECTIONS = {
    "subjective": ("61150-9", "Subjective Narrative"),
    "objective": ("61149-1", "Objective Narrative"),
    "assessment": ("51848-0", "Evaluation note"),
    "plan": ("18776-5", "Plan of care note"),
}


class FhirExportError(Exception):
    """The note cannot be exported (not signed, or the resources failed validation)."""


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _iso(value) -> str:
    return timezone.localtime(value, UTC).isoformat()


def _div(lines: list[str]) -> dict:
    from django.utils.html import escape

    body = "".join(f"<p>{escape(line)}</p>" for line in lines) or "<p>None recorded.</p>"
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'}


def note_to_fhir(*, note: ClinicalNote) -> dict:
    """The signed note as a validated FHIR document Bundle (JSON-ready dict)."""
    from consults.notes.types import SOAP_GROUPS, stored_sections

    if note.status != ClinicalNote.Status.SIGNED:
        raise FhirExportError("Only a signed note can be exported.")
    visit, sections = note.visit, note.content.get("sections", {})
    ids = {name: _urn() for name in ("patient", "practitioner", "encounter", "composition")}
    patient = {
        "resourceType": "Patient",
        "name": [{"family": visit.patient.last_name, "given": [visit.patient.first_name]}],
        **(
            {"birthDate": visit.patient.date_of_birth.isoformat()}
            if visit.patient.date_of_birth
            else {}
        ),
    }
    practitioner = {
        "resourceType": "Practitioner",
        "name": [{"family": note.signed_by.last_name, "given": [note.signed_by.first_name]}],
    }
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "VR",
            "display": "virtual",
        },
        "subject": {"reference": ids["patient"]},
        "participant": [{"individual": {"reference": ids["practitioner"]}}],
        "period": {
            k: _iso(v) for k, v in (("start", visit.started_at), ("end", visit.ended_at)) if v
        },
        "reasonCode": [{"text": visit.reason}],
    }
    subject = {"reference": ids["patient"]}
    context = {"reference": ids["encounter"]}
    extra: list[tuple[str, dict]] = []
    for item in sections.get("medications", []):
        extra.append(
            (
                _urn(),
                {
                    "resourceType": "MedicationStatement",
                    "status": "active",
                    "medicationCodeableConcept": {"text": item["text"]},
                    "subject": subject,
                    "context": context,
                },
            )
        )
    for item in sections.get("allergies", []):
        extra.append(
            (
                _urn(),
                {
                    "resourceType": "AllergyIntolerance",
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "code": {"text": item["text"]},
                    "patient": subject,
                    "encounter": context,
                },
            )
        )
    for item in sections.get("objective", []):
        extra.append(
            (
                _urn(),
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "vital-signs",
                                }
                            ]
                        }
                    ],
                    "code": {"text": "Patient-reported observation"},
                    "subject": subject,
                    "encounter": context,
                    "valueString": item["text"],
                    "effectiveDateTime": _iso(visit.ended_at or note.signed_at),
                },
            )
        )
    composition_sections = []
    titled = list(stored_sections(sections))
    for group in SOAP_GROUPS:
        lines = [
            f"{title}: {item['text']}"
            for in_group, key, title in titled
            if in_group == group
            for item in sections.get(key, [])
        ]
        code, display = SOAP_SECTIONS[group]
        entries = [
            {"reference": urn}
            for urn, res in extra
            if (group == "subjective" and res["resourceType"] != "Observation")
            or (group == "objective" and res["resourceType"] == "Observation")
        ]
        composition_sections.append(
            {
                "title": group.title(),
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                "text": _div(lines),
                **({"entry": entries} if entries else {}),
            }
        )
    composition = {
        "resourceType": "Composition",
        "status": "final",
        "type": {"coding": [{"system": LOINC, "code": "11506-3", "display": "Progress note"}]},
        "subject": subject,
        "encounter": context,
        "date": _iso(note.signed_at),
        "author": [{"reference": ids["practitioner"]}],
        "title": f"Telehealth consult note: {visit.reason}",
        "attester": [
            {
                "mode": "legal",
                "time": _iso(note.signed_at),
                "party": {"reference": ids["practitioner"]},
            }
        ],
        "section": composition_sections,
    }
    entries = [
        (ids["composition"], composition),
        (ids["patient"], patient),
        (ids["practitioner"], practitioner),
        (ids["encounter"], encounter),
        *extra,
    ]
    bundle = {
        "resourceType": "Bundle",
        "type": "document",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": _urn()},
        "timestamp": _iso(timezone.now()),
        "entry": [{"fullUrl": urn, "resource": resource} for urn, resource in entries],
    }
    return validate_bundle(bundle)


def validate_bundle(bundle: dict) -> dict:
    """Validate with fhir.resources; return the JSON-ready dict or raise FhirExportError."""
    from fhir.resources.R4B.bundle import Bundle
    from pydantic import ValidationError

    try:
        return Bundle.model_validate(bundle).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        raise FhirExportError(f"FHIR validation failed: {exc.errors()[:3]}") from exc
