"""A listed examination is checked finding by finding; repeated and copied sentences go."""

from __future__ import annotations

from consults.notes.grounding import GENERATED, ground_note
from consults.notes.llm import parse_sentences, without_repeats
from consults.notes.transcript import parse_transcript
from consults.notes.types import DraftNote, NoteFacts, NoteItem

EXAM = parse_transcript(
    text=(
        "[doctor] have you lost any weight ?\n"  # 0
        "[patient] no , i have gained some .\n"  # 1
        "[doctor] let me examine your ankle .\n"  # 2
        "[doctor] there is bruising over the lateral malleolus and some swelling .\n"  # 3
        "[doctor] i do not appreciate any laxity in the joint .\n"  # 4
        "[doctor] on the skin i see no rash and no lesion .\n"  # 5
        "[doctor] capillary refill is brisk .\n"  # 6
        "[doctor] i will prescribe ibuprofen six hundred milligrams .\n"  # 7
    )
)


def _objective(text: str, evidence: list[int]) -> DraftNote:
    note = DraftNote({"objective": [NoteItem(text, evidence, kind=GENERATED)]}, NoteFacts(), "")
    grounded, _ = ground_note(note=note, utterances=EXAM)
    return grounded


def test_a_listed_examination_keeps_the_findings_its_lines_say() -> None:
    # As one sentence it fails: "left" is said nowhere, and the negation runs over the list.
    note = _objective(
        "Bruising over the lateral malleolus, swelling, no laxity in the joint, left ankle "
        "effusion, capillary refill brisk.",
        [3],
    )
    kept = [i.text for i in note.sections["objective"]]
    assert kept == [
        "Bruising over the lateral malleolus, swelling, capillary refill brisk, no laxity in "
        "the joint."
    ]
    assert note.sections["objective"][0].evidence == [3, 4, 6]
    assert [d["text"] for d in note.dropped] == ["Left ankle effusion."]


def test_a_finding_its_lines_never_mention_is_not_kept() -> None:
    # "Weight loss." passes the usual checks on a line that never mentions weight.
    note = _objective("Swelling, weight loss, bruising over the lateral malleolus, rash.", [3])
    assert [i.text for i in note.sections["objective"]] == [
        "Swelling, bruising over the lateral malleolus."
    ]
    dropped = {d["text"]: d["reasons"] for d in note.dropped}
    assert set(dropped) == {"Weight loss.", "Rash."}


def test_a_finding_after_a_denial_that_the_lines_deny_is_left_out() -> None:
    # "no rash, lesion": read alone, "Lesion." would affirm what the doctor denied.
    note = _objective("No rash, lesion, swelling, bruising over the lateral malleolus.", [5])
    assert [i.text for i in note.sections["objective"]] == [
        "Swelling, bruising over the lateral malleolus, no rash."
    ]
    assert [d["text"] for d in note.dropped] == ["Lesion."]


def test_a_medicine_in_the_examination_is_left_out() -> None:
    note = _objective("Swelling, capillary refill brisk, ibuprofen 600 mg.", [3])
    assert [d["text"] for d in note.dropped] == ["Ibuprofen 600 mg."]
    assert "medicine" in note.dropped[0]["reasons"][0]


def test_a_sentence_that_lists_nothing_is_dropped_as_before() -> None:
    note = _objective("There is left ankle swelling.", [3])
    assert note.sections["objective"] == []
    assert note.dropped[0]["text"] == "There is left ankle swelling."


def test_the_fuller_of_two_sentences_saying_the_same_is_kept_where_the_first_stood() -> None:
    items = parse_sentences(
        "Meloxicam 15 mg daily. [3]\n"
        "Order a blood test for hemoglobin A1C. [6]\n"
        "Prescribe meloxicam 15 mg daily for swelling and bruising. [5]\n"
        "Order a blood test for fasting blood sugar. [7]\n"
        "Chest pain. [8]\n"
        "No chest pain. [9]\n"
    )
    assert [(i.text, i.evidence) for i in without_repeats(items)] == [
        ("Prescribe meloxicam 15 mg daily for swelling and bruising.", [5]),
        ("Order a blood test for hemoglobin A1C.", [6]),
        ("Order a blood test for fasting blood sugar.", [7]),
        ("Chest pain.", [8]),
        ("No chest pain.", [9]),
    ]


def test_the_prompts_facts_list_copied_as_sentences_is_no_sentence() -> None:
    items = parse_sentences(
        "Metformin 500 mg twice daily, current. [3]\n"
        "Motrin, stopped. [4]\n"
        "No symptoms reported. [1]\n"
        "Medications started. [2]\n"
        "Start metformin 500 mg twice daily. [3]\n"
        "Document the visit. [9]\n"
        "Thank the patient and the doctor. [10]\n"
        "Good-bye. [11]\n"
        "Gloria's allergies were none stated. [12]\n"
        "Vital signs were not stated. [12]\n"
    )
    assert [i.text for i in items] == ["Start metformin 500 mg twice daily."]


def test_an_assessment_line_that_is_a_decision_is_left_out() -> None:
    from consults.notes.llm import _ground_section

    items = parse_sentences(
        "Lateral ankle sprain. [3]\nSurgery recommended. [3]\nFollow up in two weeks. [3]\n"
        "Ibuprofen. [7]\nIbuprofen 600 mg three times a day. [7]\n"
        "Ankle sprain, ibuprofen 600 mg. [3, 7]\n"
    )
    kept, dropped = _ground_section("assessment", items, EXAM)
    assert [i.text for i in kept] == ["Lateral ankle sprain.", "Ankle sprain, ibuprofen 600 mg."]
    assert {d["text"] for d in dropped} == {
        "Surgery recommended.",
        "Follow up in two weeks.",
        "Ibuprofen.",
        "Ibuprofen 600 mg three times a day.",
    }


def test_an_assessment_line_that_is_an_examination_finding_is_left_out() -> None:
    from consults.notes.llm import _ground_section

    items = parse_sentences(
        "Lateral ankle sprain. [3]\nBrisk capillary refill. [6]\n"
        "No laxity, no rash and no lesion, skin intact. [4, 5]\n"
        "Bruising and swelling of the lateral malleolus. [3]\n"
    )
    kept, dropped = _ground_section("assessment", items, EXAM)
    # A finding with no manoeuvre or normal result in it stays: it may be the problem.
    assert [i.text for i in kept] == [
        "Lateral ankle sprain.",
        "Bruising and swelling of the lateral malleolus.",
    ]
    assert {d["text"]: d["reasons"] for d in dropped} == {
        "Brisk capillary refill.": ["an examination finding, not a diagnosis"],
        "No laxity, no rash and no lesion, skin intact.": [
            "an examination finding, not a diagnosis"
        ],
    }


def test_the_same_advice_in_another_tense_is_one_sentence() -> None:
    items = parse_sentences(
        "Encouraged to eat slowly and chew food more thoroughly. [3]\n"
        "Encourage to eat slowly and chew food more thoroughly. [4]\n"
        "Continue lisinopril for hypertension. [5]\n"
        "Continue lisinopril for hyperlipidemia. [6]\n"
    )
    assert [i.evidence for i in without_repeats(items)] == [[3], [5], [6]]


def test_a_list_going_round_in_circles_is_a_loop() -> None:
    from consults.notes.llm import _stuck

    loop = "Back pain, diabetes, high blood pressure, hypertension, " + (
        "diabetes, high blood pressure, hypertension, " * 3
    )
    assert _stuck(loop.strip())
    assert not _stuck("Back pain, diabetes, high blood pressure, hypertension, obesity.")


def test_a_dose_or_a_decision_alone_is_no_finding() -> None:
    note = _objective("Swelling, 600 milligrams twice a day, start, capillary refill brisk.", [3])
    assert [i.text for i in note.sections["objective"]] == ["Swelling, capillary refill brisk."]
    assert {d["text"] for d in note.dropped} == {"600 milligrams twice a day.", "Start."}
    # D2N062's examination: its Carafate dose and "Scheduled." (the endoscopy).
    note = _objective("One gram four times a day for one month, scheduled, swelling.", [3])
    assert [i.text for i in note.sections["objective"]] == ["Swelling."]


def test_a_finding_the_lines_state_somewhere_or_that_denies_is_kept() -> None:
    lines = parse_transcript(
        text=(
            "[doctor] there is tenderness of the left paraspinal area but no pain on flexion .\n"
            "[doctor] negative straight leg raise no rash no lesion .\n"
        )
    )
    note = DraftNote(
        {
            "objective": [
                NoteItem(
                    "Tenderness on left paraspinal area, straight leg raise test negative, lesion.",
                    [0],
                    kind=GENERATED,
                ),
                NoteItem("Start. [1]", [1], kind=GENERATED),
            ]
        },
        NoteFacts(),
        "",
    )
    from consults.notes.llm import _ground_section

    kept, dropped = _ground_section("objective", note.sections["objective"], lines)
    assert [i.text for i in kept] == [
        "Tenderness on left paraspinal area, straight leg raise test negative."
    ]
    assert {d["text"] for d in dropped} == {"Lesion.", "Start. [1]"}


def test_an_acronym_inside_the_rejoined_list_keeps_its_capitals() -> None:
    from consults.notes.grounding import _lowered

    assert _lowered("Swelling") == "swelling"
    assert _lowered("MRI shows no fracture") == "MRI shows no fracture"


def test_a_line_copied_as_said_reads_as_a_note() -> None:
    items = parse_sentences(
        "I'm going to prescribe oxycodone five milligrams as needed for pain. [6]\n"
        "You can continue to alternate that with some tylenol. [6]\n"
        "I'm also gon na give you a strainer for your urine. [7]\n"
        "I will see you back in two weeks. [8]\n"
        "I can't lift my arm. [2]\n"
    )
    assert [i.text for i in items] == [
        "Prescribe oxycodone five milligrams as needed for pain.",
        "Continue to alternate that with some tylenol.",
        "Give the patient a strainer for the patient's urine.",
        "See the patient back in two weeks.",
        "I can't lift my arm.",
    ]


def test_the_same_words_twice_over_are_written_once() -> None:
    items = parse_sentences(
        "He has a slight cough and a slight cough. [1]\nThe pain got worse and worse. [2]\n"
    )
    assert [i.text for i in items] == ["He has a slight cough.", "The pain got worse and worse."]


def test_a_chief_complaint_cut_in_a_word_keeps_its_whole_items() -> None:
    from consults.notes.llm import _ground_section

    lines = parse_transcript(
        text=(
            "[doctor] what brings you in ?\n"
            "[patient] i'm tired all the time , bloated , short of breath , i have chest pain and "
            "a slight cough .\n"
        )
    )
    # The grammar stops a chief complaint at 60 characters, in a word.
    cut = parse_sentences("Fatigue, bloating, shortness of breath, chest pain, cough, d. [1]\n")
    kept, _ = _ground_section("chief_complaint", cut, lines)
    assert [i.text for i in kept] == ["Fatigue, bloating, shortness of breath."]
    # Every symptom listed, one twice: the first three, once each.
    listed = parse_sentences("Fatigue, bloating, fatigue, chest pain, cough. [1]\n")
    kept, _ = _ground_section("chief_complaint", listed, lines)
    assert [i.text for i in kept] == ["Fatigue, bloating, chest pain."]
    whole = parse_sentences("Fatigue, bloating and a slight cough. [1]\n")
    kept, _ = _ground_section("chief_complaint", whole, lines)
    assert [i.text for i in kept] == ["Fatigue, bloating and a slight cough."]
