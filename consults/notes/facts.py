"""Grounded fact extraction from a dialogue: findings, medications, allergies, vitals."""

from __future__ import annotations

import re

from consults.notes import meds
from consults.notes.context import (
    answer_polarity,
    assert_span,
    preceding_question,
    question_sentence,
    sentences,
)
from consults.notes.lexicon import ALLERGENS, CONDITIONS, REACTIONS, SYMPTOMS, compile_lexicon
from consults.notes.numbers import TEMPERATURE_SAID, words_to_digits
from consults.notes.types import Allergy, Finding, Medication, NoteFacts, Utterance, Vital

_SYMPTOMS = compile_lexicon(SYMPTOMS)
_CONDITIONS = compile_lexicon(CONDITIONS)
_ALLERGEN = re.compile(r"\b(?:" + "|".join(ALLERGENS) + r")\b", re.IGNORECASE)
_CANT_TAKE_SAID = r"(?:can'?t|ca n't|can ?not) take"
_ALLERGY_CUE = re.compile(
    r"\b(?:allergic (?:to|reaction to)|allergy to|allergies to|reactions? to|react(?:s|ed)? to|"
    rf"react(?:s|ed)? (?:poorly|badly) to|{_CANT_TAKE_SAID}|"
    r"intoleran\w+ to|sensitive to)\b",
    re.IGNORECASE,
)
_ALLERGY_QUESTION = re.compile(
    r"\b(?:(?:any|have|known|drug|medication|food)\s+(?:\w+\s+)?allerg\w*|"
    r"allergic to (?:any|anything)|allergies to|(?:how|what) about (?:any |your )?allerg\w*|"
    r"adverse (?:drug )?reactions?|react(?:ed|ion)?s? (?:poorly|badly)|"
    r"reactions? to (?:any )?(?:medications?|medicines?|drugs?|meds)|intoleran\w+)",
    re.IGNORECASE,
)
_REACTION_ASKED = re.compile(
    r"\b(?:what happens when you (?:take|took|use|have|had)|what (?:kind of |sort of )?reactions?|"
    r"how do you react)\b",
    re.IGNORECASE,
)
_BESIDES = re.compile(
    r"\b(?:besides|other than|apart from|aside from|except(?: for)?)\b", re.IGNORECASE
)
_CANT_TAKE = re.compile(rf"\b{_CANT_TAKE_SAID}\b", re.IGNORECASE)
_GOES_ON = re.compile(r"^\W*(?:(?:yes|yeah|yep|oh|right)\W+)*(?:and|also|plus)\b", re.IGNORECASE)
_LIST_WORDS = frozenset(
    [
        "yes",
        "yeah",
        "yep",
        "oh",
        "right",
        "and",
        "also",
        "plus",
        "or",
        "too",
        "as",
        "well",
        "some",
        "the",
        "to",
    ]
)
_ALSO = re.compile(r"\b(?:also|and another|and one more)\b", re.IGNORECASE)
_ALLERGY_WORD = re.compile(r"\ballerg(?:y|ies|ic)\b", re.IGNORECASE)
# A drug given for the allergies is a treatment, not an allergen: "maybe we can try some
# singulair", "i take claritin for my allergies". Read only where the cue is the bare word.
_TREATMENT_BEFORE = re.compile(
    r"\b(?:try|trying|start|started|starting|prescrib\w*|take|taking|took|use|using|used|"
    r"give|giving|gave|recommend\w*|put (?:you|him|her|them) on|(?:you'?re|i'?m|he'?s|she'?s) on)"
    r"\s+(?:\w+\s+){0,3}$",
    re.IGNORECASE,
)
_SEASONAL = re.compile(r"\b(?:seasonal|hay fever|pollen|environmental)\b", re.IGNORECASE)
_DURATION = re.compile(
    r"\b(?:for (?:about |around |almost |over |the (?:past|last) |a good )?"
    r"(?:\d+(?:\.\d+)?|a|an|a couple(?: of)?|a few|few|several|couple(?: of)?) "
    r"(?:hours?|days?|weeks?|months?|years?)|"
    r"(?:\d+|a|a couple(?: of)?|a few|several) (?:hours?|days?|weeks?|months?|years?) (?:ago|now)|"
    r"since (?:last (?:night|week|month|year|\w+day)|yesterday|this morning|\w+day|labor day|"
    r"christmas|thanksgiving|the weekend|january|february|march|april|may|june|july|august|"
    r"september|october|november|december)|"
    r"(?:started|began) (?:yesterday|last (?:night|week|month)|this morning|\w+ days? ago))\b",
    re.IGNORECASE,
)
_HOW_LONG = re.compile(r"\bhow long|when did (?:it|this|that|they|the \w+) (?:start|begin)\b", re.I)
_BP = re.compile(r"\b(?P<sys>\d{2,3})\s*(?:over|/)\s*(?P<dia>\d{2,3})\b")
_VITALS = (
    (
        "heart_rate",
        re.compile(
            r"\b(?:heart rate|pulse)(?: rate)?(?: is| was| of| at)? (?:about |"
            r"around )?(?P<v>\d{2,3})\b",
            re.I,
        ),
        "bpm",
    ),
    (
        "temperature",
        re.compile(
            rf"\b{TEMPERATURE_SAID}(?: it| which)?(?: was| is| of| at| got up to|"
            r" went up to)? (?:about |around |up to |a )?(?P<v>\d{2,3}(?:\.\d)?)\b",
            re.I,
        ),
        "F",
    ),
    (
        "oxygen_saturation",
        re.compile(
            r"\b(?:oxygen(?: saturation| level| sat)?|o2 sat\w*|sats?|pulse ox)(?: was| is|"
            r" of| at)? (?:about |around )?(?P<v>\d{2,3})(?: ?%| percent)?",
            re.I,
        ),
        "%",
    ),
    (
        "weight",
        re.compile(
            r"\b(?:weigh(?:s|ed)?|weight(?: is| was| of)?) (?:about |"
            r"around )?(?P<v>\d{2,3}(?:\.\d)?) ?(?:pounds|lbs?|kilos?|kg)\b",
            re.I,
        ),
        "lb",
    ),
    (
        "blood_glucose",
        re.compile(
            r"\b(?:blood sugars?|sugars?|glucose)(?: levels?)?(?: have been| has been| are|"
            r" were| was| is| running| of)?(?: running)? (?:about |around |"
            r"in the )?(?P<v>\d{2,3}s?)\b",
            re.I,
        ),
        "mg/dL",
    ),
    (
        "a1c",
        re.compile(
            r"\b(?:a1c|hemoglobin a1c)(?: was| is| of| at)? (?:about |"
            r"around )?(?P<v>\d{1,2}(?:\.\d)?)\b",
            re.I,
        ),
        "%",
    ),
    (
        "respiratory_rate",
        re.compile(r"\brespiratory rate(?: is| was| of)? (?P<v>\d{1,2})\b", re.I),
        "/min",
    ),
)
_NKA = re.compile(
    r"\b(?:no (?:known )?(?:drug |medication )?allergies|nkda|not allergic to (?:anything|any)"
    r"|no allergies|do n't have any allergies|don'?t have any allergies)\b",
    re.IGNORECASE,
)


def _patient_side(u: Utterance) -> bool:
    return u.speaker != "doctor"


def _concepts(text: str, lexicon: list[tuple[str, re.Pattern[str]]]) -> list[tuple[str, int, int]]:
    found = []
    for name, pattern in lexicon:
        for m in pattern.finditer(text):
            found.append((name, m.start(), m.end()))
    # A longer, more specific concept wins over one it contains ("chest pain" over "pain").
    found.sort(key=lambda c: (c[1], -(c[2] - c[1])))
    kept: list[tuple[str, int, int]] = []
    for c in found:
        if kept and c[1] < kept[-1][2]:
            continue
        kept.append(c)
    return [c for c in kept if c[0] != "pain" or len(kept) == 1]


def _duration(text: str) -> str | None:
    m = _DURATION.search(words_to_digits(text))
    return m.group(0) if m else None


def extract_findings(*, utterances: list[Utterance]) -> list[Finding]:
    """Symptoms affirmed or denied by the patient, answering questions included."""
    findings: dict[tuple[str, bool, str], Finding] = {}

    def add(f: Finding) -> None:
        key = (f.name, f.negated, f.experiencer)
        old = findings.get(key)
        if old is None:
            findings[key] = f
        elif f.duration and not old.duration:
            findings[key] = Finding(
                old.name, old.evidence, old.negated, old.experiencer, old.temporality, f.duration
            )

    last_positive: list[str] = []
    for u in utterances:
        if not _patient_side(u):
            continue
        said: set[str] = set()
        duration = _duration(u.text)
        for sentence in sentences(u.text):
            for name, start, end in _concepts(sentence, _SYMPTOMS):
                a = assert_span(sentence=sentence, start=start, end=end)
                said.add(name)
                if a.hypothetical:
                    continue
                add(Finding(name, (u.index,), a.negated, a.experiencer, a.temporality, duration))
                if not a.negated and a.experiencer == "patient":
                    last_positive.append(name)
        question = preceding_question(utterances=utterances, index=u.index)
        if question is None:
            continue
        if duration and _HOW_LONG.search(question.text) and last_positive:
            name = last_positive[-1]
            key = (name, False, "patient")
            if key in findings and not findings[key].duration:
                old = findings[key]
                findings[key] = Finding(
                    name,
                    (*old.evidence, question.index, u.index),
                    False,
                    "patient",
                    old.temporality,
                    duration,
                )
        polarity = answer_polarity(u.text)
        if polarity is None:
            continue
        asked = question_sentence(question.text, answer=polarity)
        for name, start, end in _concepts(asked, _SYMPTOMS):
            if name in said or name == "pain":
                continue
            # A "no" to "any blood when you cough?" does not retract a cough already reported.
            if not polarity and (name, False, "patient") in findings:
                continue
            qa = assert_span(sentence=asked, start=start, end=end)
            if qa.experiencer != "patient" or qa.hypothetical:
                continue
            # "No fever, right?" answered "right" confirms the negative.
            negated = (not polarity) if not qa.negated else True
            add(Finding(name, (question.index, u.index), negated, "patient", qa.temporality))
            if not negated:
                last_positive.append(name)
    return list(findings.values())


def extract_conditions(*, utterances: list[Utterance]) -> list[Finding]:
    """Named conditions (history, family history) from either speaker's statements."""
    out: dict[tuple[str, str], Finding] = {}
    for u in utterances:
        question = preceding_question(utterances=utterances, index=u.index)
        for sentence in sentences(u.text):
            if u.speaker == "doctor" and ("?" in sentence):
                continue
            for name, start, end in _concepts(sentence, _CONDITIONS):
                a = assert_span(sentence=sentence, start=start, end=end)
                if a.hypothetical or a.negated:
                    continue
                out.setdefault(
                    (name, a.experiencer),
                    Finding(
                        name,
                        (u.index,),
                        False,
                        a.experiencer,
                        "historical",
                    ),
                )
        if question is None or answer_polarity(u.text) is not True:
            continue
        asked = question_sentence(question.text, answer=True)
        for name, start, end in _concepts(asked, _CONDITIONS):
            a = assert_span(sentence=asked, start=start, end=end)
            if not a.negated and not a.hypothetical:
                out.setdefault(
                    (name, a.experiencer),
                    Finding(
                        name,
                        (question.index, u.index),
                        False,
                        a.experiencer,
                        "historical",
                    ),
                )
    return list(out.values())


def _reaction(text: str) -> str | None:
    best: tuple[int, str] | None = None
    for pattern, value in REACTIONS.items():
        m = re.search(rf"\b(?:{pattern})\b", text, re.IGNORECASE)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), value)
    return best[1] if best else None


def _allergens_in(text: str) -> list[tuple[str, int, int]]:
    spans = [(m.group(0).lower(), m.start(), m.end()) for m in _ALLERGEN.finditer(text)]
    for _name, start, end in meds.find_drug_spans(text):
        if not any(s <= start < e for _, s, e in spans):
            spans.append((text[start:end].lower(), start, end))
    return sorted(spans, key=lambda s: s[1])


def _named_back(utterances: list[Utterance], u: Utterance) -> list[tuple[str, int, int]]:
    """The substances a doctor's question names back, when the next line is a patient's yes
    ("allergic to ... Napro-" / "Naprosyn?" / "Yes, Naprosyn.")."""
    if u.speaker != "doctor" or "?" not in u.text or u.index + 1 >= len(utterances):
        return []
    reply = utterances[u.index + 1]
    if not _patient_side(reply) or answer_polarity(reply.text) is not True:
        return []
    return _allergens_in(u.text)


def _list_going_on(text: str) -> list[str]:
    """The substances of a line that only goes on with a list ("Yeah, and Dilatrate and
    cyclobenzaprine."); none for a line that says anything else ("And he takes metformin.")."""
    if not _GOES_ON.match(text):
        return []
    spans = _allergens_in(text)
    rest = text
    for _, start, end in reversed(spans):
        rest = rest[:start] + " " + rest[end:]
    words = set(re.findall(r"[a-z']+", rest.lower()))
    return [name for name, _, _ in spans] if spans and words <= _LIST_WORDS else []


def extract_allergies(*, utterances: list[Utterance]) -> tuple[list[Allergy], tuple[int, ...]]:
    """Allergies (substance and reaction) and the lines that say there are none."""
    allergies: dict[str, Allergy] = {}
    none_lines: tuple[int, ...] = ()
    # A patient line telling an allergy without a name the dictionary knows ("I am allergic to
    # what you call Cipro-"): the doctor's question naming it back, answered yes, names it.
    untold: int | None = None
    told_in: int | None = None  # the last line that told an allergy
    for u in utterances:
        if told_in == u.index - 1 and (listed := _list_going_on(u.text)):
            # "He is allergic to Lamisil and Bactrim." "Yeah, and Dilatrate and cyclobenzaprine."
            for substance in listed:
                allergies.setdefault(substance, Allergy(substance, (told_in, u.index), None))
            told_in = u.index
        question = preceding_question(utterances=utterances, index=u.index)
        asked_allergy = question is not None and _ALLERGY_QUESTION.search(question.text) is not None
        if untold is not None and u.index - untold <= 2 and (named := _named_back(utterances, u)):
            reply = utterances[u.index + 1]
            for substance, _, _ in named:
                allergies.setdefault(
                    substance,
                    Allergy(substance, (untold, u.index, reply.index), _reaction(reply.text)),
                )
            # "Yes! And also, Asprin but that coated one": another is being told.
            untold = reply.index if _ALSO.search(reply.text) else None
            continue
        if question is not None and _patient_side(u):
            if _NKA.search(question.text) and answer_polarity(u.text) is True:
                # "You're not allergic to anything, right?" "That's right."
                none_lines = (question.index, u.index)
                continue
            besides = _BESIDES.search(question_sentence(question.text)) if asked_allergy else None
            if besides is not None:
                # "Any other allergies besides penicillin?" "No.": penicillin, and no other.
                for substance, _, _ in _allergens_in(besides.string[besides.end() :]):
                    allergies.setdefault(substance, Allergy(substance, (question.index,), None))
            if _REACTION_ASKED.search(question.text) and (reaction := _reaction(u.text)):
                # "What happens when you take sulfa drugs?" "I get a really ugly rash."
                for substance, _, _ in _allergens_in(question_sentence(question.text)):
                    allergies.setdefault(
                        substance, Allergy(substance, (question.index, u.index), reaction)
                    )
        if _NKA.search(u.text) and _patient_side(u):
            none_lines = (u.index,)
            continue
        for sentence in sentences(u.text):
            strong = _ALLERGY_CUE.search(sentence)
            cue = strong or _ALLERGY_WORD.search(sentence)
            told = False
            if cue is None and not (asked_allergy and _patient_side(u)):
                continue
            if u.speaker == "doctor" and "?" in sentence:
                continue
            for substance, start, end in _allergens_in(sentence):
                # "nothing that tylenol can't take care of": the substance must follow the cue.
                if strong is not None and start < strong.start():
                    continue
                if strong is None and _TREATMENT_BEFORE.search(sentence[:start]):
                    continue
                if strong is not None and _CANT_TAKE.search(strong.group(0)):
                    # "I cannot take sulfa drugs": the cue's own "not" negates nothing.
                    cut = strong.end()
                    a = assert_span(sentence=sentence[cut:], start=start - cut, end=end - cut)
                else:
                    a = assert_span(sentence=sentence, start=start, end=end)
                if a.negated or a.experiencer != "patient" or a.hypothetical:
                    continue
                if _SEASONAL.search(sentence) and substance in {"pollen", "dust"}:
                    pass
                told = True
                evidence = (u.index,) if cue else (question.index, u.index)  # type: ignore[union-attr]
                reaction = _reaction(sentence[end:]) or _reaction(sentence)
                if substance not in allergies or (reaction and not allergies[substance].reaction):
                    allergies[substance] = Allergy(substance, evidence, reaction)
                told_in = u.index
            if strong is not None and not told and _patient_side(u):
                a = assert_span(sentence=sentence, start=strong.start(), end=strong.end())
                if not a.negated and a.experiencer == "patient" and not a.hypothetical:
                    untold = u.index
        if (
            asked_allergy
            and _patient_side(u)
            and answer_polarity(u.text) is False
            and not allergies
        ):
            none_lines = (question.index, u.index)  # type: ignore[union-attr]
    return list(allergies.values()), none_lines


def extract_medications(*, utterances: list[Utterance], allergens: set[str]) -> list[Medication]:
    """Medications with dose/route/frequency/status; every one cites the line naming it."""
    found: dict[tuple[str, str], Medication] = {}
    for u in utterances:
        planning = u.speaker == "doctor"
        for _name, sentence, start, end in meds.mentions(text=u.text):
            surface = sentence[start:end].lower()
            if surface in allergens or _ALLERGY_CUE.search(sentence[:start]):
                continue
            if meds.is_negated_mention(sentence=sentence, start=start, end=end):
                continue
            if u.speaker == "doctor" and "?" in sentence:
                # Asked about, not yet known to be taken; the answer decides.
                nxt = utterances[u.index + 1] if u.index + 1 < len(utterances) else None
                if nxt is None or not _patient_side(nxt) or answer_polarity(nxt.text) is not True:
                    continue
                status = meds.med_status(sentence=nxt.text, speaker="patient", planning=False)
                evidence: tuple[int, ...] = (u.index, nxt.index)
                detail = f"{sentence} {nxt.text}"
            else:
                # "I take X, and I used to take Y": status words belong to their own clause.
                clause = _clause(sentence, start, end)
                status = meds.med_status(sentence=clause, speaker=u.speaker, planning=planning)
                evidence = (u.index,)
                # Frequency often follows in the next sentence ("... 800 mg. take it every 6
                # hours"), so the window runs on in the utterance.
                at = u.text.find(sentence)
                detail = u.text[at + start :] if at >= 0 else sentence[start:]
            # Dose words follow the drug name; read a short window so the next drug's dose is not
            # taken.
            window = _window_after(detail, sentence[start:end])
            dose = meds.parse_dose(window) or meds.parse_dose_before(sentence[:start])
            unitless = (
                None if dose else meds.parse_unitless_dose_before(sentence[:start], drug=surface)
            )
            med = Medication(
                name=surface,
                evidence=evidence,
                dose=dose or unitless,
                route=meds.parse_route(window),
                frequency=meds.parse_frequency(window),
                status=status,  # type: ignore[arg-type]
                unit_assumed=unitless is not None,
            )
            key = (surface, med.status)
            old = found.get(key)
            if old is None or _richer(med, old):
                found[key] = med
    return list(found.values())


_CLAUSE_BREAK = re.compile(r",?\s*\b(?:and|but|though|although|whereas)\b|;|,\s*(?=i\b)", re.I)


def _clause(sentence: str, start: int, end: int) -> str:
    """The clause of sentence that holds the span [start, end)."""
    left = 0
    for m in _CLAUSE_BREAK.finditer(sentence, 0, start):
        left = m.end()
    right_match = _CLAUSE_BREAK.search(sentence, end)
    right = right_match.start() if right_match else len(sentence)
    return sentence[left:right]


def _window_after(detail: str, surface: str) -> str:
    i = detail.lower().find(surface.lower())
    tail = detail[i:] if i >= 0 else detail
    nxt = meds.find_drug_spans(tail[len(surface) :])
    if nxt:
        tail = tail[: len(surface) + nxt[0][1]]
    return tail[:150]


def _richer(new: Medication, old: Medication) -> bool:
    def score(m: Medication) -> float:
        # A dose with its unit said beats one whose unit is assumed.
        return sum(x is not None for x in (m.dose, m.route, m.frequency)) - 0.5 * m.unit_assumed

    return score(new) > score(old)


def extract_vitals(*, utterances: list[Utterance]) -> list[Vital]:
    """Patient-reported or read-out vitals: "128 over 82" is a blood pressure."""
    out: dict[str, Vital] = {}
    for u in utterances:
        text = words_to_digits(u.text)
        for m in _BP.finditer(text):
            sys_, dia = int(m.group("sys")), int(m.group("dia"))
            if 70 <= sys_ <= 260 and 30 <= dia <= 160 and sys_ > dia:
                out.setdefault(
                    f"bp:{sys_}/{dia}",
                    Vital("blood_pressure", f"{sys_}/{dia}", (u.index,), "mmHg"),
                )
        for kind, pattern, unit in _VITALS:
            for m in pattern.finditer(text):
                value = m.group("v")
                if kind == "temperature" and not 90 <= float(value) <= 110:
                    continue
                out.setdefault(f"{kind}:{value}", Vital(kind, value, (u.index,), unit))
    return list(out.values())


def extract_facts(*, utterances: list[Utterance]) -> NoteFacts:
    """All structured facts of a transcript; each cites the lines it was read from."""
    allergies, none_lines = extract_allergies(utterances=utterances)
    allergens = {a.substance for a in allergies}
    findings = extract_findings(utterances=utterances) + extract_conditions(utterances=utterances)
    return NoteFacts(
        medications=extract_medications(utterances=utterances, allergens=allergens),
        allergies=allergies,
        findings=findings,
        vitals=extract_vitals(utterances=utterances),
        no_known_allergies=none_lines if not allergies else (),
    )
