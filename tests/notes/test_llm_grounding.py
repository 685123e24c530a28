"""The grounding check drops generated sentences that change what their cited lines say."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consults.notes.context import answer_polarity
from consults.notes.grounding import GENERATED, check_item, ground_note
from consults.notes.transcript import parse_transcript
from consults.notes.types import DraftNote, NoteFacts, NoteItem

LINES = parse_transcript(
    text=(
        "[doctor] so what brings you in today ?\n"  # 0
        "[patient] my right knee has been hurting for about two weeks .\n"  # 1
        "[doctor] any fever or chills ?\n"  # 2
        "[patient] no .\n"  # 3
        "[patient] i have had a cough though and some chest pain .\n"  # 4
        "[doctor] are you taking anything for the knee ?\n"  # 5
        "[patient] ibuprofen , four hundred milligrams twice a day .\n"  # 6
        "[doctor] on exam there is one plus pitting edema in both legs .\n"  # 7
        "[doctor] i do hear a three over six systolic ejection murmur .\n"  # 8
        "[doctor] let 's increase the lisinopril to twenty milligrams and send a refill .\n"  # 9
        "[doctor] your diabetes is out of control so we will raise the metformin .\n"  # 10
        "[patient] i am allergic to penicillin , it gives me a rash .\n"  # 11
        "[doctor] your blood pressure today is one forty over ninety .\n"  # 12
        "[doctor] what kind of surgery was it ?\n"  # 13
        "[patient] i do n't know , they told me they fixed the whole knee .\n"  # 14
        "[doctor] any hospitalizations or other surgeries ?\n"  # 15
        "[patient] no .\n"  # 16
    )
)


def sentence(text: str, evidence: list[int]) -> NoteItem:
    return NoteItem(text, evidence, kind=GENERATED)


@pytest.mark.parametrize(
    ("text", "evidence"),
    [
        ("Right knee pain for 2 weeks.", [1]),
        ("She denies fever or chills.", [2, 3]),
        ("She denies fever and chills.", [3]),  # the bare "no" brings its question along
        ("She reports a cough and chest pain.", [4]),
        ("She takes ibuprofen 400 mg twice a day for the knee.", [5, 6]),
        ("She takes 400 mg twice a day.", [6]),
        ("Lisinopril dose increased to 20 mg.", [9]),
        ("There is 1+ pitting edema of both legs.", [7]),
        ("A 3/6 systolic ejection murmur is heard.", [8]),
        ("Increase lisinopril to 20 mg and send a refill.", [9]),
        ("Her diabetes is uncontrolled; metformin will be increased.", [10]),
        ("She is allergic to penicillin, which causes a rash.", [11]),
        ("Blood pressure is 140/90.", [12]),
        ("She has had no hospitalizations or other surgeries.", [15, 16]),
    ],
)
def test_faithful_sentences_pass(text: str, evidence: list[int]) -> None:
    assert check_item(item=sentence(text, evidence), utterances=LINES) == []


@pytest.mark.parametrize(
    ("text", "evidence", "reason"),
    [
        # an invented dose
        ("She takes ibuprofen 800 mg twice a day.", [6], "800"),
        ("Increase lisinopril to 40 mg.", [9], "40"),
        # an invented drug
        ("She takes naproxen for the knee.", [5, 6], "naproxen"),
        # ... one the drug dictionary does not know, dosed (D2N085: oxycodone said)
        ("Oxytocin four hundred milligrams twice a day.", [5, 6], "'oxytocin' is dosed"),
        # a flipped negation
        ("No pitting edema.", [7], "negation"),
        ("No systolic ejection murmur.", [8], "negation"),
        ("She does not have any chest pain or cough.", [4], "chest pain"),
        ("She reports fever.", [2, 3], "fever"),
        ("She does not need a refill.", [9], "negation"),
        # "I don't know" is not a no, and every denied word must have been said
        ("She has never had knee surgery.", [13, 14], "negation"),
        ("She has not had any hospitalizations or surgeries.", [13, 14], "negation"),
        ("She has had no other surgeries or falls.", [15, 16], "'falls' is denied"),
        # an invented denial
        ("She denies shortness of breath.", [4], "shortness of breath"),
        # a changed side
        ("Left knee pain for 2 weeks.", [1], "left"),
        ("Bilateral knee pain.", [1], "bilateral"),
        # a changed direction or state
        ("Decrease lisinopril to 20 mg.", [9], "a decrease"),
        ("Her diabetes is under control with metformin.", [10], "'controlled'"),
        ("Metformin is lowered.", [10], "a decrease"),
        # an invented allergen or a changed number
        ("She is allergic to sulfa.", [11], "sulfa"),
        ("She is allergic to penicillin and peanuts.", [11], "peanut"),
        ("Blood pressure is 150/90.", [12], "150"),
        # no citation at all
        ("Right knee pain.", [], "cites no"),
    ],
)
def test_unfaithful_sentences_are_rejected(text: str, evidence: list[int], reason: str) -> None:
    problems = check_item(item=sentence(text, evidence), utterances=LINES)
    assert any(reason in p for p in problems), problems


def test_right_as_a_discourse_word_does_not_ground_a_side() -> None:
    lines = parse_transcript(text="[patient] my left hip hurts , all right ? right .\n")
    assert check_item(item=sentence("Right hip pain.", [0]), utterances=lines)
    assert check_item(item=sentence("Left hip pain.", [0]), utterances=lines) == []


def test_ground_note_keeps_what_it_dropped_with_reasons() -> None:
    note = DraftNote(
        sections={
            "hpi": [
                sentence("Right knee pain for 2 weeks.", [1]),
                sentence("Left knee pain for 2 weeks.", [1]),
            ],
            "plan": [sentence("Start naproxen 500 mg.", [9])],
        },
        facts=NoteFacts(),
        engine_version="test",
    )
    grounded, problems = ground_note(note=note, utterances=LINES)
    assert [i.text for i in grounded.sections["hpi"]] == ["Right knee pain for 2 weeks."]
    assert grounded.sections["plan"] == []
    assert [d["text"] for d in grounded.dropped] == [
        "Left knee pain for 2 weeks.",
        "Start naproxen 500 mg.",
    ]
    assert all(d["reasons"] for d in grounded.dropped)
    assert len(problems) >= 2


def test_a_sentence_citing_the_line_next_to_its_claim_cites_that_line_too() -> None:
    """The model cited the question (2) but the answer's line states the side (1)."""
    from consults.notes.grounding import widen_citation

    item = sentence("Right knee pain for 2 weeks.", [0])
    widened = widen_citation(item=item, utterances=LINES)
    assert widened is not None and widened.evidence == [0, 1]
    note, _ = ground_note(note=DraftNote({"hpi": [item]}, NoteFacts(), "x"), utterances=LINES)
    assert [(i.text, i.evidence) for i in note.sections["hpi"]] == [
        ("Right knee pain for 2 weeks.", [0, 1])
    ]
    assert note.dropped == []


@pytest.mark.parametrize(
    ("text", "evidence"),
    [
        ("The left knee hurts.", [1]),  # no line says left
        ("She takes ibuprofen 800 mg.", [6]),  # no line says 800
        ("Blood pressure is 140/90.", [2]),  # stated, but 10 lines away
        ("Rest the knee.", []),  # cites nothing: nothing to widen
    ],
)
def test_a_claim_no_nearby_line_states_is_still_dropped(text: str, evidence: list[int]) -> None:
    from consults.notes.grounding import widen_citation

    item = sentence(text, evidence)
    assert widen_citation(item=item, utterances=LINES) is None
    note, _ = ground_note(note=DraftNote({"plan": [item]}, NoteFacts(), "x"), utterances=LINES)
    assert note.sections["plan"] == [] and note.dropped[0]["text"] == text


ONE_SIDED = parse_transcript(
    text=(
        "[patient] i slipped on the ice and hurt my right ankle .\n"  # 0
        "[doctor] any numbness ?\n"  # 1
        "[patient] no .\n"  # 2
        "[doctor] let me examine it .\n"  # 3
        "[doctor] there is some bruising .\n"  # 4
        "[doctor] the x-ray shows no fracture .\n"  # 5
        "[doctor] all right .\n"  # 6
        "[doctor] so this is a sprain , i'd say moderate .\n"  # 7
    )
)


def test_a_side_the_visit_names_and_never_contradicts_is_cited_from_afar() -> None:
    """The impression (7) is more than 4 lines from where the side was said (0)."""
    from consults.notes.grounding import widen_citation

    widened = widen_citation(item=sentence("Right ankle sprain.", [7]), utterances=ONE_SIDED)
    assert widened is not None and widened.evidence == [0, 7]


@pytest.mark.parametrize(
    "said",
    [
        "[doctor] no fracture so that's a good thing right so let me talk about the plan .",
        "[doctor] i think you're headed in the right direction .",
    ],
)
def test_right_said_in_passing_does_not_contradict_a_left_side(said: str) -> None:
    from consults.notes.grounding import widen_citation

    left = [replace(u, text=u.text.replace("right ankle", "left ankle")) for u in ONE_SIDED]
    extra = replace(parse_transcript(text=said)[0], index=len(left))
    widened = widen_citation(item=sentence("Left ankle sprain.", [7]), utterances=[*left, extra])
    assert widened is not None and widened.evidence == [0, 7]


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        # The visit names the other side somewhere: no side is taken from afar.
        ("Right ankle sprain.", ["[patient] my left wrist is fine though ."]),
        # A side and another failing claim: still dropped.
        ("Right ankle sprain for 3 weeks.", []),
        # The side the visit never names.
        ("Left ankle sprain.", []),
    ],
)
def test_a_side_is_not_taken_from_afar_when_the_visit_contradicts_it(
    text: str, lines: list[str]
) -> None:
    from consults.notes.grounding import widen_citation

    extra = parse_transcript(text="\n".join(lines)) if lines else []
    visit = [*ONE_SIDED, *(replace(u, index=len(ONE_SIDED) + k) for k, u in enumerate(extra))]
    assert widen_citation(item=sentence(text, [7]), utterances=visit) is None


def test_an_examination_sentence_citing_only_the_plan_is_left_out_with_why() -> None:
    from consults.notes.llm import _ground_section

    lines = parse_transcript(
        text=(
            "[doctor] what happened to your ankle ?\n"  # 0
            "[patient] i slipped on the ice yesterday and it hurts .\n"  # 1
            "[doctor] does it hurt when you walk ?\n"  # 2
            "[patient] yes it does .\n"  # 3
            "[doctor] did you take anything for it ?\n"  # 4
            "[patient] just some ice .\n"  # 5
            "[doctor] on exam there is bruising over the lateral malleolus .\n"  # 6
            "[doctor] i'm gon na give you an air cast to stabilize the ankle .\n"  # 7
            "[patient] okay that's alright with me .\n"  # 8
            "[doctor] your x-ray showed no fracture .\n"  # 9
        )
    )
    written = [
        sentence("Air cast applied to stabilize the ankle.", [7]),
        sentence("Alright with the cast.", [8]),
        sentence("Bruising over the lateral malleolus.", [6]),
        sentence("X-ray showed no fracture.", [9]),
    ]
    kept, dropped = _ground_section("objective", written, lines)
    assert [i.text for i in kept] == [
        "Bruising over the lateral malleolus.",
        "X-ray showed no fracture.",  # a result, even said after the plan began
    ]
    assert [d["text"] for d in dropped] == [i.text for i in written[:2]]
    assert "plan" in dropped[0]["reasons"][0]
    # In the plan the same sentence stands.
    kept, _ = _ground_section("plan", written[:1], lines)
    assert kept


def test_an_age_the_visit_never_says_is_taken_out_not_the_whole_sentence() -> None:
    from consults.notes.llm import _ground_section

    lines = parse_transcript(
        text=(
            "[doctor] hi anna what brings you in ?\n"  # 0
            "[patient] i slipped on ice and hurt my right ankle .\n"  # 1
            "[patient] i'm eighty years old and i still walk every day .\n"  # 2
            "[doctor] my daughter is almost sixteen and she plays soccer .\n"  # 3
        )
    )
    kept, dropped = _ground_section(
        "hpi",
        [
            sentence("The patient is Anna, a 25-year-old female who hurt her right ankle.", [0, 1]),
            sentence("She is an 80-year-old woman who walks every day.", [2]),
            # Sixteen is said, but not as the patient's age.
            sentence("Anna is a 16-year-old girl who plays soccer.", [3]),
        ],
        lines,
    )
    assert [i.text for i in kept] == [
        "The patient is Anna, a female who hurt her right ankle.",
        "She is an 80-year-old woman who walks every day.",
        "Anna is a girl who plays soccer.",
    ]
    assert dropped == []


@pytest.mark.parametrize(
    ("reply", "polarity"),
    [
        ("i do n't know , they told me they fixed it .", None),
        ("I'm not sure.", None),
        ("i don't remember .", None),
        ("I don't know of any.", False),
        ("i don't think so .", False),
        ("no .", False),
    ],
)
def test_a_patient_who_cannot_say_has_not_said_no(reply: str, polarity: bool | None) -> None:
    assert answer_polarity(reply) is polarity


def test_a_chief_complaint_cites_the_lines_that_say_it_however_far() -> None:
    # Citing line 12: "two weeks" is said only 11 lines before, past the 4 lines any other
    # sentence may widen to.
    note = DraftNote(
        {"chief_complaint": [sentence("Knee pain for 2 weeks.", [12])]}, NoteFacts(), "test"
    )
    grounded, problems = ground_note(note=note, utterances=LINES)
    assert problems == []
    assert 1 in grounded.sections["chief_complaint"][0].evidence


ASKED_TOGETHER = parse_transcript(
    text=(
        "[doctor] any nausea vomiting or diarrhea or anything like that are you peeing a whole "
        "lot or anything like that\n"  # 0
        "[patient] yeah i'm peeing like crazy\n"  # 1
        "[doctor] any fever any chills\n"  # 2
        "[patient] no\n"  # 3
        "[doctor] do you have chest pain or are you short of breath\n"  # 4
        "[patient] yes\n"  # 5
    )
)


@pytest.mark.parametrize(
    ("text", "evidence", "faithful"),
    [
        # A "yes" to questions asked together answers the last one (D2N063).
        ("She reports nausea, vomiting and diarrhea.", [0, 1], False),
        ("She denies nausea.", [0, 1], False),
        # ... and one asked on with "or" is the same question.
        ("She reports chest pain.", [4, 5], True),
        # A "no" answers them all.
        ("She denies fever and chills.", [2, 3], True),
        ("She reports chills.", [2, 3], False),
    ],
)
def test_a_yes_answers_the_last_of_questions_asked_together(
    text: str, evidence: list[int], faithful: bool
) -> None:
    problems = check_item(item=sentence(text, evidence), utterances=ASKED_TOGETHER)
    assert (problems == []) is faithful, problems
