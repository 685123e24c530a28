"""The HPI written during the call, the examination's "None." and the title-cut sentences."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consults.notes.llm import (
    EXAM,
    HPI,
    SECTIONS,
    LlmDrafter,
    _stuck,
    exam_start,
    parse_sentences,
    section_grammar,
)
from consults.notes.transcript import parse_transcript
from tests.notes.test_llm_drafter import VISIT, ScriptedModel, texts

OTHER_VISIT = parse_transcript(
    text=(
        "[doctor] good morning , what can i do for you ?\n"  # 0
        "[patient] i have had a cough for three days .\n"  # 1
        "[doctor] any fever ?\n"  # 2
        "[patient] no .\n"  # 3
        "[doctor] any shortness of breath ?\n"  # 4
        "[patient] no , just the cough .\n"  # 5
        "[doctor] let me listen to your lungs .\n"  # 6
        "[doctor] your lungs are clear . it is a viral cough , rest and fluids .\n"  # 7
    )
)


def hpi_prompts(model: ScriptedModel) -> list[str]:
    return [p for p in model.prompts if f"Write the {HPI.title} section" in p]


def test_the_exam_ends_the_history_after_some_lines_of_it() -> None:
    assert exam_start(VISIT) == 6  # "on exam the right knee is swollen"
    assert exam_start(OTHER_VISIT) == 6  # "let me listen to your lungs"
    # An examination word in the first lines is not the end of the history.
    assert exam_start(VISIT[:6]) is None
    early = parse_transcript(text="[doctor] on exam you look well .\n[patient] thanks .\n")
    assert exam_start(early) is None
    history = "[patient] it hurts .\n[doctor] okay .\n" * 3
    for said, examined in [
        ("i'll examine you in a second , but first your sugars .", False),
        ("i'm gon na go ahead and start my examination .", True),
        ("on your skin exam i do appreciate some mild swelling .", True),
        ("let me listen to your heart .", True),
    ]:
        visit = parse_transcript(text=history + f"[doctor] {said}\n")
        assert (exam_start(visit) == 6) is examined, said


def test_hpi_is_written_during_the_call_once_the_exam_began_and_not_again_at_hang_up() -> None:
    model = ScriptedModel()
    drafter = LlmDrafter(generator=model)
    drafter.prepare(utterances=VISIT[:5])
    assert hpi_prompts(model) == []  # still the history: nothing written
    drafter.prepare(utterances=VISIT[:7])
    assert len(hpi_prompts(model)) == 1
    # From the history: the lines before the examination.
    assert "[5] Patient: no" in hpi_prompts(model)[0]
    assert "[6] Doctor: on exam" not in hpi_prompts(model)[0]
    drafter.prepare(utterances=VISIT)  # written once per visit
    assert len(hpi_prompts(model)) == 1
    note = drafter.draft(utterances=VISIT)
    assert len(hpi_prompts(model)) == 1
    assert len(model.prompts) == len(SECTIONS)
    # Grounded against the whole visit, as if written at hang-up.
    assert "She denies fever." in texts(note, "hpi")
    assert "The left knee is also painful." in {d["text"] for d in note.dropped}


def test_an_hpi_written_from_another_visits_lines_is_not_used() -> None:
    model = ScriptedModel()
    drafter = LlmDrafter(generator=model)
    drafter.prepare(utterances=OTHER_VISIT)
    drafter.draft(utterances=VISIT)
    assert len(hpi_prompts(model)) == 2
    assert "[1] Patient: my right knee" in hpi_prompts(model)[1]


@pytest.mark.parametrize("streamed", [False, True])
def test_the_hpi_written_during_the_call_reaches_another_worker_and_is_then_removed(
    tmp_path, streamed: bool
) -> None:
    during = ScriptedModel()
    LlmDrafter(generator=during, cache_dir=str(tmp_path)).prepare(utterances=VISIT, key="visit-7")
    saved = tmp_path / "note-prefixes" / "visit-7.hpi.json"
    assert saved.exists() and saved.stat().st_mode & 0o077 == 0
    after = ScriptedModel()
    # The worker streams the sections (on_section): the visit's key must still find the HPI.
    note = LlmDrafter(generator=after, cache_dir=str(tmp_path)).draft(
        utterances=VISIT, key="visit-7", on_section=(lambda *_: None) if streamed else None
    )
    assert hpi_prompts(after) == []
    assert "She denies fever." in texts(note, "hpi")
    assert not saved.exists()


class CutShortModel(ScriptedModel):
    """Opens the HPI written during the call with a title the grammar's period ends."""

    def complete(self, *, messages, grammar, max_tokens, deadline) -> str:
        out = super().complete(
            messages=messages, grammar=grammar, max_tokens=max_tokens, deadline=deadline
        )
        first_hpi = hpi_prompts(self) == [self.prompts[-1]]
        return "Dr. [2]\nDr. [2]\n" if first_hpi else out


def test_an_hpi_cut_short_during_the_call_is_written_again_at_hang_up() -> None:
    model = CutShortModel()
    drafter = LlmDrafter(generator=model)
    drafter.prepare(utterances=VISIT)
    note = drafter.draft(utterances=VISIT)
    assert len(hpi_prompts(model)) == 2
    assert "She denies fever." in texts(note, "hpi")


def test_the_chief_complaint_is_written_during_the_call_too_and_read_at_hang_up() -> None:
    model = ScriptedModel()
    drafter = LlmDrafter(generator=model)
    drafter.prepare(utterances=VISIT[:7])
    assert [p.rsplit("Write the ", 1)[1].split(" section")[0] for p in model.prompts] == [
        "CHIEF COMPLAINT",
        HPI.title,
    ]
    seen = []
    note = drafter.draft(
        utterances=VISIT, on_section=lambda key, items, lost: seen.append((key, len(model.prompts)))
    )
    # At hang-up both are there before the model writes anything more.
    assert ("chief_complaint", 2) in seen and ("hpi", 2) in seen
    assert texts(note, "chief_complaint") == ["Right knee pain."]
    assert len(model.prompts) == len(SECTIONS)


def test_history_not_written_during_the_call_is_written_from_the_lines_before_the_exam() -> None:
    """The examination began in the last lines (D2N060: one 612-word final turn), so nothing was
    written during the call: at hang-up the chief complaint and HPI are written from what the
    call's prompt already read, and the examination, assessment and plan from every line."""
    model = ScriptedModel()
    drafter = LlmDrafter(generator=model)
    drafter.prepare(utterances=VISIT[:6])
    assert model.prompts == []  # still the history: nothing written
    note = drafter.draft(utterances=VISIT)
    by_section = {p.rsplit("Write the ", 1)[1].split(" section")[0]: p for p in model.prompts}
    for title in ("CHIEF COMPLAINT", HPI.title):
        assert "[5] " in by_section[title] and "[6] " not in by_section[title], title
    for title in (EXAM.title, "ASSESSMENT", "PLAN"):
        assert "[6] Doctor: on exam" in by_section[title], title
    # The history's prompt is where the others start: what the call read serves them all.
    history = by_section["CHIEF COMPLAINT"].split("\n\nWrite the ")[0]
    assert by_section[EXAM.title].startswith(history)
    assert texts(note, "chief_complaint") == ["Right knee pain."]
    assert "She denies fever." in texts(note, "hpi")


def test_a_chief_complaint_kept_while_the_hpi_is_tried_again() -> None:
    model = CutShortModel()
    drafter = LlmDrafter(generator=model)
    drafter.prepare(utterances=VISIT[:7])
    drafter.prepare(utterances=VISIT)
    written = [p.rsplit("Write the ", 1)[1].split(" section")[0] for p in model.prompts]
    # The plan began with the last lines: the examination is written then too.
    assert written == ["CHIEF COMPLAINT", HPI.title, HPI.title, EXAM.title]


def test_lone_titles_and_none_are_not_sentences() -> None:
    items = parse_sentences("Ms. [1]\nDr. [2]\nMs. Lee reports knee pain. [1]\nNone. [3]\n")
    assert [i.text for i in items] == ["Ms. Lee reports knee pain."]


def test_examination_grammar_offers_none_only_when_asked() -> None:
    objective = next(s for s in SECTIONS if s.key == "objective")
    assert '"None.' in section_grammar(objective)
    assert '"None.' not in section_grammar(objective, allow_none=False)
    # The HPI opens as a note does, so a title cannot be its whole first sentence.
    assert '"The patient "' in section_grammar(HPI)


def test_grammars_without_none_compile_in_llama_cpp() -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    for section in SECTIONS:
        grammar = section_grammar(section, allow_none=False)
        assert llama_cpp.LlamaGrammar.from_string(grammar, verbose=False)


def test_an_hpi_cut_short_is_tried_again_during_the_call_once_more_lines_are_final() -> None:
    model = CutShortModel()
    drafter = LlmDrafter(generator=model)
    drafter.prepare(utterances=VISIT[:7])
    drafter.prepare(utterances=VISIT[:7])  # nothing new said: not tried again yet
    assert len(hpi_prompts(model)) == 1
    drafter.prepare(utterances=VISIT)
    assert len(hpi_prompts(model)) == 2
    note = drafter.draft(utterances=VISIT)
    assert len(hpi_prompts(model)) == 2 and drafter.last_hpi_early
    assert "She denies fever." in texts(note, "hpi")


def written_titles(model: ScriptedModel) -> list[str]:
    return [p.rsplit("Write the ", 1)[1].split(" section")[0] for p in model.prompts]


def test_the_examination_is_written_during_the_call_once_the_plan_began() -> None:
    model = ScriptedModel()
    drafter = LlmDrafter(generator=model)
    drafter.prepare(utterances=VISIT[:7])  # the examination began: the history is told
    assert EXAM.title not in written_titles(model)
    drafter.prepare(utterances=VISIT)  # "this is likely a sprain ...": the plan began
    assert written_titles(model)[-1] == EXAM.title
    note = drafter.draft(utterances=VISIT)
    # At hang-up only the assessment and plan remain to be written.
    assert written_titles(model).count(EXAM.title) == 1
    assert len(model.prompts) == len(SECTIONS)
    assert texts(note, "objective") == ["The right knee is swollen without redness."]


def test_an_examination_written_during_the_call_is_written_again_after_a_later_result() -> None:
    model = ScriptedModel()
    drafter = LlmDrafter(generator=model)
    drafter.prepare(utterances=VISIT[:7])
    drafter.prepare(utterances=VISIT)
    later = parse_transcript(text="[doctor] and your x-ray shows no fracture .\n[patient] good .\n")
    visit = VISIT + [replace(u, index=len(VISIT) + u.index) for u in later]
    drafter.draft(utterances=visit)
    exams = [p for p in model.prompts if f"Write the {EXAM.title} section" in p]
    assert len(exams) == 2 and "x-ray shows no fracture" in exams[1]


def test_a_lone_answer_is_no_sentence() -> None:
    items = parse_sentences("The ankle is swollen. [6]\nYes. [7]\nOkay. [8]\n")
    assert [i.text for i in items] == ["The ankle is swollen."]


@pytest.mark.parametrize(
    ("text", "stuck"),
    [
        (
            "Ibuprofen 400 mg, current; continued 400 mg, 300 mg, 400 mg, 300 mg, 400 mg, 300 mg,",
            True,
        ),
        ("Done. [1]\nrest rest rest rest rest rest", True),
        ("Ibuprofen 400 mg twice a day and Tylenol 500 mg as needed for pain. [3, 4]", False),
        ("Left, right, left, then right again.", False),
    ],
)
def test_a_line_going_round_in_circles_stops_the_model(text: str, stuck: bool) -> None:
    assert _stuck(text) is stuck
