"""The grounding check every backend's output passes before a clinician sees it."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

from consults.notes.context import (
    answer_polarity,
    assert_span,
    is_question,
    preceding_question,
    sentences,
    yes_answers_from,
)
from consults.notes.facts import _ALLERGEN, _SYMPTOMS, _concepts
from consults.notes.meds import find_drug_spans
from consults.notes.numbers import numbers_in, words_to_digits
from consults.notes.types import DraftNote, NoteItem, Utterance

_SIDE = {"left": re.compile(r"\bleft\b", re.I), "right": re.compile(r"\bright\b", re.I)}
# "right" as a discourse word ("all right", "right?", "right now") is not a side.
_NOT_A_SIDE = re.compile(
    r"\ball right\b|\bright\s*[?,.!]|\bright (?:now|away|there|here|off|back|after|before)\b|"
    r"\bthat 's right\b|\bthat'?s right\b|"
    r"\bthe right (?:thing|way|time|dose|place|direction|track|decision|choice|one)\b|"
    # Unpunctuated transcripts: "that's a good thing right so let me ..."
    r"\bright (?:so|okay|ok|um|uh|yeah)\b|^\W*right\b",
    re.I,
)
_BOTH_SIDES = re.compile(
    r"\b(?:bilateral(?:ly)?|both (?:sides|legs|arms|knees|feet|hands|eyes|ears))\b", re.I
)
_BOTH_SAID = re.compile(r"\b(?:bilateral(?:ly)?|both|left and right|right and left)\b", re.I)
_WORD = re.compile(r"[a-z][a-z'-]{2,}")
# Direction of a change and state of a condition: a generated sentence that says the dose went up
# (or that a condition is controlled) needs a cited line that says so in some words.
_DIRECTIONS = {
    "an increase": re.compile(
        r"\b(?:increas\w*|rais(?:e|ed|ing)|higher|up-?titrat\w*|doubl\w+|bump\w*|go(?:ing)? up)\b",
        re.I,
    ),
    "a decrease": re.compile(
        r"\b(?:decreas\w*|lower\w*|reduc\w*|taper\w*|cut (?:back|down)|halv\w+|go(?:ing)? down)\b",
        re.I,
    ),
}
_UNCONTROLLED = re.compile(
    r"\b(?:uncontrolled|out of control|not (?:well |very well )?controlled|poorly controlled|"
    r"not under (?:good )?control)\b",
    re.I,
)
_CONTROLLED = re.compile(r"\b(?:well[- ]controlled|controlled|under (?:good )?control)\b", re.I)
# Words that carry no finding of their own in "she denies any ..." sentences.
_GENERIC_WORDS = (
    "the and any other was were has have had been being his her their she he they patient "
    "reports reported denies denied notes noted states stated experiencing experienced having "
    "currently recently also further additional significant signs symptoms symptom history "
    "issues problems concerns changes episodes time today does did not with for from that this "
    "there such like well some much more at all yet since ever "
)
_GENERIC = frozenset(_GENERIC_WORDS.split())


@dataclass(frozen=True, slots=True)
class GroundingProblem:
    section: str
    item: str
    reason: str


def _mentions(text: str) -> set[str]:
    found = {text[s:e].lower() for _, s, e in find_drug_spans(text)}
    found |= {m.group(0).lower() for m in _ALLERGEN.finditer(text)}
    return found


GENERATED = "sentence"  # NoteItem.kind of a sentence a language model wrote
# A generated sentence whose claim is not in the lines it cites may cite a line this close to
# them that states it (a small model cites the question next to the answer, or the line after).
WIDEN_LINES = 4


def check_item(*, item: NoteItem, utterances: list[Utterance]) -> list[str]:
    """Reasons an item is not grounded; empty when every claim is in its cited lines.

    Every item: each drug, allergen and number must be in the cited lines. Generated sentences
    (kind ``sentence``) also: each side (left/right/bilateral), and each negation ("no
    edema", "denies chest pain") or symptom stated with the same polarity as in the lines.
    """
    if not item.evidence:
        return ["cites no transcript line"]
    bad = [i for i in item.evidence if not 0 <= i < len(utterances)]
    if bad:
        return [f"cites missing line(s) {bad}"]
    cited = " ".join(utterances[i].text for i in item.evidence)
    cited_lower = cited.lower()
    problems = []
    for name in sorted(_mentions(item.text)):
        if not _names(cited_lower, name):
            problems.append(f"'{name}' is not in the cited lines")
    missing = numbers_in(item.text) - numbers_in(cited)
    if missing:
        problems.append(f"number(s) {sorted(missing)} not in the cited lines")
    if item.kind == GENERATED:
        lines = _with_questions(item.evidence, utterances)
        said = " ".join(utterances[i].text for i in lines)
        problems += _laterality(item.text, said)
        problems += _direction(item.text, said)
        problems += _polarity(item.text, lines, utterances)
        problems += _unnamed_medicine(item.text, said)
    return problems


# The word before a dose names what is dosed ("Oxytocin 5 mg"); these words name no medicine.
_DOSE_SLOT = re.compile(
    r"\b([a-z][a-z-]{3,})\s+\d[\d.,/]*\s*(?:mg|mcg|g|grams?|milligrams?|micrograms?|units?|ml|"
    r"milliliters?)\b",
    re.IGNORECASE,
)
_NOT_A_NAME_WORDS = (
    "take takes taking took start started starting continue continued increase increased "
    "decrease decreased dose doses dosage daily prescribe prescribed give given with from about "
    "reduce reduced raise raised lower lowered change changed switch switched total additional "
    "another extra only than plus every each receive received gave once twice from into onto "
    "over under around approximately roughly"
)
_NOT_A_NAME = frozenset(_NOT_A_NAME_WORDS.split())


def _unnamed_medicine(text: str, said: str) -> list[str]:
    """A word dosed in the sentence that its lines never say, and the drug dictionary does not
    know: the 1.5B model wrote "Oxytocin five milligrams every six to eight hours" where the
    doctor prescribed oxycodone (D2N085), and the dictionary has no oxytocin."""
    said_lower = said.lower()
    problems = []
    for m in _DOSE_SLOT.finditer(words_to_digits(text)):
        word = m.group(1).lower()
        if word in _NOT_A_NAME or find_drug_spans(word):
            continue  # a known drug is checked by name (check_item)
        if not _names(said_lower, word):
            problems.append(f"'{word}' is dosed here but not said in the cited lines")
    return problems


def _names(lowered: str, name: str) -> bool:
    """Whether lower-cased text says ``name``; singular/plural ("peanut" vs "peanuts") is the
    same claim."""
    return re.search(rf"\b{re.escape(name.rstrip('s'))}", lowered) is not None


def _with_questions(evidence: list[int], utterances: list[Utterance]) -> list[int]:
    """Cited lines plus the question a cited bare "yes"/"no" answers (it means nothing alone)."""
    lines = set(evidence)
    for i in evidence:
        u = utterances[i]
        if u.speaker != "doctor" and answer_polarity(u.text) is not None:
            question = preceding_question(utterances=utterances, index=i)
            if question is not None:
                lines.add(question.index)
    return sorted(lines)


_SIDE_MISSING = r"side '(left|right)' is not in the cited lines"


def _laterality(text: str, cited: str) -> list[str]:
    sides = _NOT_A_SIDE.sub(" ", cited)
    problems = [
        _SIDE_MISSING.replace("(left|right)", side)
        for side, rx in _SIDE.items()
        if rx.search(text) and not rx.search(sides)
    ]
    if _BOTH_SIDES.search(text) and not _BOTH_SAID.search(cited):
        problems.append("'bilateral' is not in the cited lines")
    return problems


def _direction(text: str, cited: str) -> list[str]:
    """A change (increase/decrease) or a control state the cited lines do not state."""
    problems = [
        f"{name} is not in the cited lines"
        for name, rx in _DIRECTIONS.items()
        if rx.search(text) and not rx.search(cited)
    ]
    claims_controlled = _CONTROLLED.search(_UNCONTROLLED.sub(" ", text))
    if _UNCONTROLLED.search(text) and not _UNCONTROLLED.search(cited):
        problems.append("'not controlled' is not in the cited lines")
    elif claims_controlled and not _CONTROLLED.search(_UNCONTROLLED.sub(" ", cited)):
        problems.append("'controlled' is not in the cited lines")
    return problems


def _stem(word: str) -> str:
    return word.lower().replace("'", "")[:5]


def _said(lines: list[int], utterances: list[Utterance]) -> tuple[dict, set, set, set]:
    """What the lines state, as {symptom: {negated? (None: asked, not answered)}}, the stems of
    negated words, the stems of every word and the stems of words said without a negation.

    A doctor's question takes the polarity of the patient's yes/no answer that follows it.
    """
    concepts: dict[str, set[bool | None]] = {}
    negated_stems: set[str] = set()
    said_stems: set[str] = set()
    stated_stems: set[str] = set()
    for i in lines:
        u = utterances[i]
        answer = None
        if u.speaker == "doctor":
            reply = next((v for v in utterances[i + 1 : i + 3] if v.speaker != "doctor"), None)
            answer = reply.text if reply is not None else None
        line_concepts, negated, said, stated = _line_said(u.text, u.speaker == "doctor", answer)
        for name, states in line_concepts:
            concepts.setdefault(name, set()).update(states)
        negated_stems |= negated
        said_stems |= said
        stated_stems |= stated
    return concepts, negated_stems, said_stems, stated_stems


@functools.lru_cache(maxsize=4096)
def _line_said(
    text: str, doctor: bool, reply: str | None
) -> tuple[tuple[tuple[str, frozenset[bool]], ...], frozenset, frozenset, frozenset]:
    """`_said` for one line (and the reply after a doctor's line): ConText over every word of
    a long unpunctuated turn is slow, and the checks ask about the same lines many times."""
    asked = doctor and is_question(text)
    answer = answer_polarity(reply) if asked and reply is not None else None
    # A concept's states: True denied, False had, None asked and left unanswered.
    concepts: dict[str, set[bool | None]] = {}
    negated_stems: set[str] = set()
    said_stems: set[str] = set()
    stated_stems: set[str] = set()
    pieces = sentences(text) or [text]
    for n, piece in enumerate(pieces):
        # The answer answers the question: the end of the turn, not the examination the
        # doctor called out before asking "does that sound like a plan?".
        last = asked and n == len(pieces) - 1
        asks_from = _question_start(piece) if last else len(piece)
        # What a "yes" answers: the last of the questions asked together.
        answered_from = yes_answers_from(piece, asks_from) if last and answer is True else asks_from
        for name, start, end in _concepts(piece, _SYMPTOMS):
            a = assert_span(sentence=piece, start=start, end=end)
            # A question states nothing; its answer does.
            if start >= answered_from:
                if answer is not None:
                    concepts.setdefault(name, set()).add(not answer)
            elif start >= asks_from:
                # Asked, and the answer answered another question: neither had nor denied.
                concepts.setdefault(name, set()).add(None)
            elif not a.hypothetical:
                concepts.setdefault(name, set()).add(a.negated)
        for m in _WORD.finditer(piece.lower()):
            said_stems.add(_stem(m.group(0)))
            if asks_from <= m.start() < answered_from:
                continue  # asked, and not what the answer answers
            if (answer is False and m.start() >= asks_from) or assert_span(
                sentence=piece, start=m.start(), end=m.end()
            ).negated:
                negated_stems.add(_stem(m.group(0)))
            else:
                stated_stems.add(_stem(m.group(0)))
    return (
        tuple((name, frozenset(states)) for name, states in concepts.items()),
        frozenset(negated_stems),
        frozenset(said_stems),
        frozenset(stated_stems),
    )


QUESTION_WORDS = 20  # an unpunctuated turn's question is at most its last 20 words


def _question_start(piece: str) -> int:
    """Where the question of a doctor's sentence begins: its last `QUESTION_WORDS` words."""
    starts = [m.start() for m in re.finditer(r"\S+", piece)]
    return starts[-QUESTION_WORDS] if len(starts) > QUESTION_WORDS else 0


def _polarity(text: str, lines: list[int], utterances: list[Utterance]) -> list[str]:
    concepts, negated_stems, said_stems, _ = _said(lines, utterances)
    problems = []
    for piece in sentences(text) or [text]:
        for name, start, end in _concepts(piece, _SYMPTOMS):
            a = assert_span(sentence=piece, start=start, end=end)
            if a.hypothetical or a.experiencer != "patient":
                continue
            said = concepts.get(name, set())
            if a.negated and not said:
                problems.append(f"denies '{name}', which the cited lines do not mention")
            elif said and a.negated not in said:
                state = "denied" if a.negated else "affirmed"
                problems.append(f"'{name}' is {state} here but not in the cited lines")
        negated = [
            w.group(0)
            for w in _WORD.finditer(piece.lower())
            if w.group(0) not in _GENERIC
            and assert_span(sentence=piece, start=w.start(), end=w.end()).negated
        ]
        unsaid = [w for w in negated if _stem(w) not in said_stems]
        if negated and not any(_stem(w) in negated_stems for w in negated):
            problems.append(f"negation of '{' '.join(negated)}' is not in the cited lines")
        elif unsaid:
            # "She has not had any hospitalizations or surgeries" needs both words said.
            problems.append(f"'{' '.join(unsaid)}' is denied here but not in the cited lines")
    return problems


def widen_citation(
    *, item: NoteItem, utterances: list[Utterance], window: int = WIDEN_LINES
) -> NoteItem | None:
    """The sentence citing, besides its own lines, the nearby lines that state what they lack.

    Lines within ``window`` of the cited ones are tried nearest first; one is added when it
    removes a reason the sentence fails, until none is left. None when some claim is in none
    of them: then the sentence is dropped. Every claim of a widened sentence is in its cited
    lines, checked exactly as any sentence is.
    """
    reasons = check_item(item=item, utterances=utterances)
    if not reasons or not item.evidence:
        return None
    if any(not 0 <= i < len(utterances) for i in item.evidence):
        return None
    near = {
        j
        for i in item.evidence
        for j in range(i - window, i + window + 1)
        if 0 <= j < len(utterances) and j not in item.evidence
    }
    evidence, left = list(item.evidence), len(reasons)
    for j in sorted(near, key=lambda j: (min(abs(j - i) for i in item.evidence), j)):
        trial = replace(item, evidence=sorted([*evidence, j]))
        now = len(check_item(item=trial, utterances=utterances))
        if now < left:
            evidence, left = trial.evidence, now
            if not left:
                return trial
    return _cite_the_only_side(item=replace(item, evidence=evidence), utterances=utterances)


def _cite_the_only_side(*, item: NoteItem, utterances: list[Utterance]) -> NoteItem | None:
    """When all that a sentence still lacks is its side, and the visit names that side and never
    the other ("Right ankle sprain." citing the impression, said lines after "my right ankle"),
    the sentence cites, besides its lines, the nearest line that names the side.

    A side the visit contradicts anywhere is never widened this way: a sentence that says "right"
    in a visit where "left" is said (even as a verb: "I left work") stays dropped.
    """
    reasons = check_item(item=item, utterances=utterances)
    claimed = [m.group(1) for r in reasons if (m := re.fullmatch(_SIDE_MISSING, r))]
    if not reasons or len(claimed) != len(reasons) or len(claimed) != 1:
        return None
    side, other = claimed[0], "left" if claimed[0] == "right" else "right"
    said = [(u.index, _NOT_A_SIDE.sub(" ", u.text)) for u in utterances]
    named = [i for i, text in said if _SIDE[side].search(text)]
    if not named or any(_SIDE[other].search(text) for _, text in said):
        return None
    nearest = min(named, key=lambda j: (min(abs(j - i) for i in item.evidence), j))
    trial = replace(item, evidence=sorted({*item.evidence, nearest}))
    return None if check_item(item=trial, utterances=utterances) else trial


# A written examination is a list of findings; a small model puts a whole examination in one
# sentence citing one line, and one unsupported finding would drop all of them.
EXAM_WIDEN_LINES = 20  # an examination is told over many lines; its findings may cite any
_LIST_SEPARATOR = re.compile(r"(?<!\d),(?!\d)|;")
_JOINER = re.compile(r"^(?:and|or|with)\s+", re.I)
_NEGATION_CUE = re.compile(r"^(?:no|not|without|negative for|absent|denies)\b", re.I)


# Words that make no finding alone: a dose ("10 mg twice a day"), a time, a decision ("Start.").
_NO_FINDING_WORDS = (
    "mg mcg milligrams gram grams units once twice one two three four five six times day daily "
    "week weekly month hour hours days weeks months per start stop continue take prescribe "
    "needed tablet tablets capsule capsules puff puffs scheduled ordered prescribed started "
    "stopped continued recommended"
)
_NO_FINDING = frozenset(_NO_FINDING_WORDS.split())
_DENIES = re.compile(r"\b(?:no|not|negative|without|absent|denies|normal|unremarkable)\b", re.I)


def _list_parts(text: str) -> list[str]:
    """The findings of a sentence that lists 3 or more ("Swelling, no laxity, brisk refill.")."""
    parts = [_JOINER.sub("", p.strip()) for p in _LIST_SEPARATOR.split(text.strip().rstrip("."))]
    parts = [p for p in parts if p]
    return parts if len(parts) >= 3 else []


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _lowered(text: str) -> str:
    """A finding inside a sentence: "Swelling" -> "swelling", but "MRI" stays "MRI"."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _checked(
    item: NoteItem, utterances: list[Utterance], window: int
) -> tuple[NoteItem, list[str]]:
    """The item, its citation widened where that grounds it, and the reasons it still fails."""
    reasons = check_item(item=item, utterances=utterances)
    if reasons and item.kind == GENERATED:
        widened = widen_citation(item=item, utterances=utterances, window=window)
        if widened is not None:
            return widened, []
    return item, reasons


def _finding_problems(item: NoteItem, utterances: list[Utterance]) -> list[str]:
    """What a finding cut from a list lacks beyond the usual checks: most of its words said in
    its lines (a fragment such as "Weight loss." must not pass on lines that never mention it),
    no medicine (that is the plan), and none of the words it states only denied in the lines
    ("no rash, lesion": read alone, "Lesion." affirms what the doctor denied)."""
    text = item.text.lower()
    found = [w for w in _WORD.finditer(text) if w.group(0) not in _GENERIC]
    words = [w.group(0) for w in found]
    # The words it states: "pain on dorsiflexion but not on plantar flexion" states the pain.
    stated = [
        w.group(0)
        for w in found
        if not assert_span(sentence=text, start=w.start(), end=w.end()).negated
    ]
    _, negated_stems, said_stems, stated_stems = _said(item.evidence, utterances)
    problems = []
    if not words or sum(_stem(w) in said_stems for w in words) * 3 < len(words) * 2:
        problems.append("most of its words are not in the cited lines")
    if finds_nothing(item.text):
        problems.append("finds nothing: a dose, a time or a decision alone")
    if find_drug_spans(item.text):
        problems.append("names a medicine: that belongs to the plan, not the examination")
    # Said only in a denial ("no rash no lesion"), and not denied here ("negative", "no", ...).
    heard = [w for w in stated if _stem(w) in said_stems]
    if (
        heard
        and not _DENIES.search(text)
        and all(_stem(w) in negated_stems - stated_stems for w in heard)
    ):
        problems.append("stated, where the cited lines deny it")
    return problems


def finds_nothing(text: str) -> bool:
    """A written finding that is a dose, a time or a decision alone ("Start.", "10 mg daily.")."""
    words = [w.group(0) for w in _WORD.finditer(text.lower()) if w.group(0) not in _GENERIC]
    return not [w for w in words if w not in _NO_FINDING]


def _finding(
    item: NoteItem, utterances: list[Utterance], window: int
) -> tuple[NoteItem, list[str]]:
    """A finding cut from a list, citing besides its lines the nearest line within `window`
    that says it when its own lines do not (the model cites one line for the whole list)."""
    reasons = _finding_problems(item, utterances)
    if not reasons:
        return item, []
    near = sorted(
        {j for i in item.evidence for j in range(i - window, i + window + 1)} - set(item.evidence),
        key=lambda j: (min(abs(j - i) for i in item.evidence), j),
    )
    for j in near:
        if not 0 <= j < len(utterances):
            continue
        trial = replace(item, evidence=sorted([*item.evidence, j]))
        if not _finding_problems(trial, utterances) and not check_item(
            item=trial, utterances=utterances
        ):
            return trial, []
    return item, reasons


def ground_list(
    *, item: NoteItem, utterances: list[Utterance], window: int = EXAM_WIDEN_LINES
) -> tuple[list[NoteItem], list[tuple[NoteItem, list[str]]]]:
    """A listed examination, checked finding by finding.

    Each finding is checked (and its citation widened) on its own, and must also have most of
    its words in its lines (`_finding_problems`); those that pass are kept, as one sentence
    again (what was found, then what was not) when that sentence passes too, else one each.
    Returns the kept items and each failed finding with its reasons; nothing when the sentence
    lists nothing.
    """
    kept: list[NoteItem] = []
    failed: list[tuple[NoteItem, list[str]]] = []
    for part in _list_parts(item.text):
        trial, reasons = _checked(
            replace(item, text=_sentence(part)), utterances=utterances, window=window
        )
        if not reasons:
            trial, reasons = _finding(trial, utterances, window)
        if reasons:
            failed.append((trial, reasons))
        else:
            kept.append(trial)
    if len(kept) > 1:
        # What was found, then what was not: a denial at the front would read over the list.
        texts = [k.text.rstrip(".") for k in kept if not _NEGATION_CUE.match(k.text)]
        texts += [k.text.rstrip(".") for k in kept if _NEGATION_CUE.match(k.text)]
        joined = NoteItem(
            _sentence(", ".join([texts[0]] + [_lowered(t) for t in texts[1:]])),
            sorted({i for k in kept for i in k.evidence}),
            item.needs_review,
            item.kind,
            item.confidence,
        )
        if not check_item(item=joined, utterances=utterances):
            kept = [joined]
    return kept, failed


def left_out(*, section: str, item: NoteItem, reasons: list[str]) -> dict:
    """What a note keeps of an item it left out (``DraftNote.dropped``), for the review page."""
    return {
        "section": section,
        "text": item.text,
        "evidence": list(item.evidence),
        "kind": item.kind,
        "reasons": reasons,
    }


def ground_note(
    *, note: DraftNote, utterances: list[Utterance]
) -> tuple[DraftNote, list[GroundingProblem]]:
    """Drop every item, medication and allergy that its cited lines do not support.

    The dropped items are kept on the returned note (``dropped``) with their reasons, so that
    the review page can show what was left out and why.
    """
    problems: list[GroundingProblem] = []
    dropped = list(note.dropped)
    sections: dict[str, list[NoteItem]] = {}
    for key, items in note.sections.items():
        kept = []
        # The chief complaint sums up the visit: its words may be anywhere in it.
        window = {"chief_complaint": len(utterances), "objective": EXAM_WIDEN_LINES}
        for item in items:
            item, reasons = _checked(item, utterances, window.get(key, WIDEN_LINES))
            if key == "objective" and item.kind == GENERATED and _list_parts(item.text):
                # Each listed finding is checked, also when the list passes as a whole: an
                # affirmed fragment ("weight loss") passes on lines that never mention it.
                findings, failed = ground_list(item=item, utterances=utterances)
                if findings or not reasons:
                    kept += findings if failed else [item]
                    for part, why in failed:
                        problems.extend(GroundingProblem(key, part.text, r) for r in why)
                        dropped.append(left_out(section=key, item=part, reasons=why))
                    continue
            problems.extend(GroundingProblem(key, item.text, r) for r in reasons)
            if reasons:
                dropped.append(left_out(section=key, item=item, reasons=reasons))
            else:
                kept.append(item)
        sections[key] = kept
    facts = note.facts
    meds = []
    for med in facts.medications:
        text = " ".join(filter(None, (med.name, med.dose)))
        reasons = check_item(item=NoteItem(text, list(med.evidence)), utterances=utterances)
        problems.extend(GroundingProblem("facts.medications", text, r) for r in reasons)
        if not reasons:
            meds.append(med)
    allergies = []
    for allergy in facts.allergies:
        reasons = check_item(
            item=NoteItem(allergy.substance, list(allergy.evidence)), utterances=utterances
        )
        problems.extend(GroundingProblem("facts.allergies", allergy.substance, r) for r in reasons)
        if not reasons:
            allergies.append(allergy)
    new_facts = replace(facts, medications=meds, allergies=allergies)
    return replace(note, sections=sections, facts=new_facts, dropped=dropped), problems
