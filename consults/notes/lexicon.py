"""Hand-written clinical vocabularies: symptoms, conditions, allergens, routes and frequencies."""

from __future__ import annotations

import re

# canonical name -> surface forms (regex fragments, matched on word boundaries, lower case).
SYMPTOMS: dict[str, tuple[str, ...]] = {
    "chest pain": (
        r"chest pains?",
        r"chest (?:tightness|pressure|discomfort)",
        r"pain in (?:my|the|your) chest",
    ),
    "shortness of breath": (
        r"short(?:ness)? of breath",
        r"trouble breathing",
        r"difficulty breathing",
        r"breathless(?:ness)?",
        r"dyspnea",
        r"winded",
    ),
    "fever": (r"fevers?", r"febrile", r"temperatures?"),
    "chills": (r"chills",),
    "night sweats": (r"night sweats?",),
    "cough": (r"cough(?:ing)?",),
    "wheezing": (r"wheez(?:e|ing)",),
    "sputum": (r"sputum", r"phlegm", r"coughing (?:anything )?up"),
    "hemoptysis": (
        r"coughing up blood",
        r"hemoptysis",
        r"blood in (?:the|your|my) (?:sputum|phlegm)",
    ),
    "nausea": (r"nause(?:a|ous|ated)",),
    "vomiting": (r"vomit(?:ing|ed)?", r"throw(?:ing)? up", r"threw up"),
    "diarrhea": (r"diarrh(?:e|o)a", r"loose stools?"),
    "constipation": (r"constipat(?:ion|ed)",),
    "abdominal pain": (
        r"(?:abdominal|belly|stomach|tummy) (?:pain|ache|cramps?)",
        r"stomach ?ache",
        r"pain in (?:my|the|your) (?:belly|stomach|abdomen)",
    ),
    "blood in stool": (
        r"blood in (?:the|your|my) stools?",
        r"bloody stools?",
        r"black(?:,)? tarry stools?",
        r"rectal bleeding",
    ),
    "heartburn": (r"heartburn", r"acid reflux", r"reflux"),
    "headache": (r"headaches?", r"migraines?"),
    "dizziness": (r"dizz(?:y|iness)", r"light ?headed(?:ness)?", r"vertigo"),
    "fainting": (r"faint(?:ed|ing)?", r"pass(?:ed|ing)? out", r"syncope", r"blacked out"),
    "palpitations": (r"palpitations?", r"heart racing", r"racing heart", r"heart (?:is )?pounding"),
    "fatigue": (
        r"fatigue(?:d)?",
        r"tired(?:ness)?",
        r"exhausted",
        r"lack of energy",
        r"low energy",
    ),
    "weight loss": (r"weight loss", r"lost (?:some |any )?weight", r"losing weight"),
    "weight gain": (r"weight gain", r"gained (?:some |any )?weight", r"gaining weight"),
    "swelling": (r"swelling", r"swollen", r"edema"),
    "rash": (r"rash(?:es)?", r"hives"),
    "itching": (r"itch(?:ing|y)",),
    "sore throat": (r"sore throat", r"throat pain"),
    "runny nose": (r"runny nose", r"congestion", r"stuffy nose", r"nasal congestion"),
    "ear pain": (r"ear ?ache", r"ear pain"),
    "back pain": (r"back pain", r"pain in (?:my|the|your) back", r"backache"),
    "joint pain": (r"joint pains?", r"(?:knee|hip|shoulder|elbow|wrist|ankle) pain"),
    "numbness": (r"numb(?:ness)?",),
    "tingling": (r"tingl(?:ing|y)", r"pins and needles"),
    "weakness": (r"weak(?:ness)?",),
    "vision changes": (
        r"blurr(?:y|ed) vision",
        r"vision (?:changes|problems)",
        r"double vision",
        r"vision loss",
    ),
    "confusion": (r"confus(?:ed|ion)",),
    "urinary symptoms": (
        r"burning (?:with|when) (?:urinat|peeing)\w*",
        r"painful urination",
        r"dysuria",
        r"urinary (?:frequency|urgency)",
        r"blood in (?:the|your|my) urine",
    ),
    "bleeding": (r"bleeding", r"bruis(?:ing|e)"),
    "anxiety": (r"anxi(?:ety|ous)",),
    "depression": (r"depress(?:ed|ion)", r"feeling down", r"low mood"),
    "sleep problems": (r"trouble sleeping", r"insomnia", r"can'?t sleep"),
    "loss of appetite": (r"(?:loss of|decreased|poor) appetite", r"not hungry"),
    "loss of smell or taste": (r"loss of (?:smell|taste)", r"(?:smell|taste) (?:changes|loss)"),
    "pain": (r"pain",),
}

# The review-of-systems heading of each symptom above, in the order a note lists the systems.
# "pain" alone is placed by the body site said with it (PAIN_SITES), else under OTHER_SYSTEM.
SYSTEMS: dict[str, tuple[str, ...]] = {
    "Constitutional": (
        "fever", "chills", "night sweats", "fatigue", "weight loss", "weight gain",
        "loss of appetite",
    ),
    "Eyes": ("vision changes",),
    "Ears, nose, mouth and throat": (
        "sore throat", "runny nose", "ear pain", "loss of smell or taste",
    ),
    "Cardiovascular": ("chest pain", "palpitations", "fainting"),
    "Respiratory": ("shortness of breath", "cough", "wheezing", "sputum", "hemoptysis"),
    "Gastrointestinal": (
        "nausea", "vomiting", "diarrhea", "constipation", "abdominal pain", "blood in stool",
        "heartburn",
    ),
    "Genitourinary": ("urinary symptoms",),
    "Musculoskeletal": ("back pain", "joint pain", "swelling"),
    "Skin": ("rash", "itching"),
    "Neurological": ("headache", "dizziness", "numbness", "tingling", "weakness", "confusion"),
    "Psychiatric": ("anxiety", "depression", "sleep problems"),
    "Hematologic": ("bleeding",),
}  # fmt: skip
OTHER_SYSTEM = "Other"
# A body site said right before "pain" ("my left ankle pain", "right knee pain"): the system
# it belongs to. The side, when said with it, is kept ("Endorses left ankle pain").
PAIN_SITES: dict[str, str] = {
    "ankle": "Musculoskeletal", "knee": "Musculoskeletal", "hip": "Musculoskeletal",
    "shoulder": "Musculoskeletal", "elbow": "Musculoskeletal", "wrist": "Musculoskeletal",
    "hand": "Musculoskeletal", "foot": "Musculoskeletal", "leg": "Musculoskeletal",
    "arm": "Musculoskeletal", "neck": "Musculoskeletal", "muscle": "Musculoskeletal",
    "heel": "Musculoskeletal", "toe": "Musculoskeletal", "finger": "Musculoskeletal",
    "thumb": "Musculoskeletal", "joint": "Musculoskeletal", "back": "Musculoskeletal",
    "chest": "Cardiovascular", "stomach": "Gastrointestinal", "belly": "Gastrointestinal",
    "abdominal": "Gastrointestinal", "throat": "Ears, nose, mouth and throat",
    "ear": "Ears, nose, mouth and throat", "eye": "Eyes", "head": "Neurological",
    "pelvic": "Genitourinary", "flank": "Genitourinary",
}  # fmt: skip

CONDITIONS: dict[str, tuple[str, ...]] = {
    "hypertension": (r"hypertension", r"high blood pressure"),
    "diabetes": (r"diabet(?:es|ic)", r"high blood sugars?", r"type (?:1|2|one|two) diabetes"),
    "high cholesterol": (r"high cholesterol", r"hyperlipidemia", r"cholesterol"),
    "asthma": (r"asthma",),
    "copd": (r"copd", r"emphysema", r"chronic bronchitis"),
    "heart failure": (r"heart failure", r"chf"),
    "heart attack": (r"heart attacks?", r"myocardial infarction"),
    "coronary artery disease": (r"coronary artery disease", r"heart disease", r"\bcad\b"),
    "atrial fibrillation": (r"atrial fibrillation", r"a-?fib"),
    "stroke": (r"strokes?",),
    "cancer": (r"cancer", r"tumou?r", r"lymphoma", r"leukemia"),
    "kidney disease": (r"kidney disease", r"kidney stones?", r"renal failure"),
    "thyroid disease": (r"thyroid", r"hypothyroidism", r"hyperthyroidism"),
    "depression": (r"depression",),
    "arthritis": (r"arthritis", r"osteoarthritis", r"rheumatoid"),
    "gerd": (r"\bgerd\b", r"acid reflux"),
    "migraine": (r"migraines?",),
    "blood clots": (r"blood clots?", r"\bdvt\b", r"pulmonary embol\w+"),
    "seizures": (r"seizures?", r"epilepsy"),
    "osteoporosis": (r"osteoporosis",),
}

# Allergen classes that a drug dictionary does not list by these words.
ALLERGENS: tuple[str, ...] = (
    r"sulfa(?: drugs?)?",
    r"penicillins?",
    r"amoxicillin",
    r"codeine",
    r"morphine",
    r"latex",
    r"peanuts?",
    r"tree nuts?",
    r"nuts",
    r"shellfish",
    r"seafood",
    r"eggs?",
    r"milk",
    r"dairy",
    r"soy",
    r"wheat",
    r"gluten",
    r"iodine",
    r"contrast(?: dye)?",
    r"bees?",
    r"bee stings?",
    r"wasps?",
    r"pollen",
    r"dust",
    r"cats?",
    r"dogs?",
    r"mold",
    r"aspirin",
    r"ibuprofen",
    r"nsaids?",
    r"cephalosporins?",
    r"adhesive(?: tape)?",
    r"tape",
    r"strawberries",
    r"sesame",
)

REACTIONS: dict[str, str] = {
    r"hives": "hives",
    r"rash(?:es)?": "rash",
    r"itch(?:ing|y)": "itching",
    r"swell(?:ing|s|ed)?(?: up)?|swollen": "swelling",
    r"anaphyla\w+": "anaphylaxis",
    r"throat (?:clos\w+|swell\w+|tight\w*)": "throat swelling",
    r"(?:trouble|difficulty) breathing|can'?t breathe": "difficulty breathing",
    r"nause\w+|vomit\w*|throw(?:ing)? up|upset stomach|stomach upset": "gastrointestinal upset",
    r"break(?:s)? (?:me )?out|broke out": "rash",
}

ROUTES: dict[str, str] = {
    r"by mouth|orally|\bpo\b|pills?|tablets?|capsules?": "oral",
    r"inhal(?:er|ed|ation)|puffs?|nebuli[sz]er": "inhaled",
    r"inject(?:ion|ed|ions)?|shots?|subcutaneous(?:ly)?|sub-?q": "injection",
    r"intravenous(?:ly)?|\biv\b": "intravenous",
    r"creams?|ointments?|topical(?:ly)?|gel": "topical",
    r"patch(?:es)?": "transdermal",
    r"eye drops?": "ophthalmic",
    r"nasal spray|nose spray": "intranasal",
    r"suppositor(?:y|ies)": "rectal",
}

FREQUENCIES: dict[str, str] = {
    (
        r"once (?:a|per) day|once daily|one time a day|(?:1|one) times? (?:a|per) day|every day|"
        r"daily|\bqd\b|a day"
    ): "daily",
    r"twice (?:a|per) day|twice daily|(?:2|two) times (?:a|per) day|\bbid\b": "twice daily",
    r"(?:3|three) times (?:a|per) day|\btid\b": "three times daily",
    r"(?:4|four) times (?:a|per) day|\bqid\b": "four times daily",
    r"every (?:\d+|\w+) hours|q\d+h": "every {n} hours",
    r"every morning|in the morning|each morning": "every morning",
    r"at night|at bedtime|before bed|every night|nightly|\bqhs\b": "at bedtime",
    r"as needed|when needed|if needed|\bprn\b|when i need (?:it|to)": "as needed",
    r"once (?:a|per) week|weekly|every week": "weekly",
    r"once (?:a|per) month|monthly|every month": "monthly",
    r"with meals": "with meals",
}

DOSE = re.compile(
    r"\b(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>milligrams?|mg|micrograms?|mcg|grams?|g|units?|"
    r"milliliters?|ml|cc|puffs?|tablets?|pills?|percent|%|international units|iu)\b",
    re.IGNORECASE,
)
UNIT_NORMAL = {
    "milligram": "mg",
    "milligrams": "mg",
    "mg": "mg",
    "microgram": "mcg",
    "micrograms": "mcg",
    "mcg": "mcg",
    "gram": "g",
    "grams": "g",
    "g": "g",
    "unit": "units",
    "units": "units",
    "milliliter": "mL",
    "milliliters": "mL",
    "ml": "mL",
    "cc": "mL",
    "puff": "puffs",
    "puffs": "puffs",
    "tablet": "tablets",
    "tablets": "tablets",
    "pill": "tablets",
    "pills": "tablets",
    "percent": "%",
    "%": "%",
    "international units": "IU",
    "iu": "IU",
}


def compile_lexicon(table: dict[str, tuple[str, ...]]) -> list[tuple[str, re.Pattern[str]]]:
    """One word-bounded pattern per canonical name, longest surface forms first."""
    out = []
    for name, forms in table.items():
        alt = "|".join(sorted(forms, key=len, reverse=True))
        out.append((name, re.compile(rf"\b(?:{alt})\b", re.IGNORECASE)))
    return out
