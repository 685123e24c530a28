"""The generative backend's plumbing with a scripted model: no model file is loaded here."""

from __future__ import annotations

import pytest

from consults.notes.backends import LLM_BACKEND, get_drafter, resolve_backend
from consults.notes.grounding import GENERATED
from consults.notes.llm import (
    NOTHING_TO_SUMMARIZE,
    SECTIONS,
    LlmDrafter,
    ModelError,
    parse_sentences,
    section_grammar,
)
from consults.notes.transcript import parse_transcript

VISIT = parse_transcript(
    text=(
        "[doctor] hi , what brings you in today ?\n"  # 0
        "[patient] my right knee has been hurting for about two weeks .\n"  # 1
        "[doctor] are you taking anything for it ?\n"  # 2
        "[patient] ibuprofen , four hundred milligrams twice a day .\n"  # 3
        "[doctor] any fever ?\n"  # 4
        "[patient] no .\n"  # 5
        "[doctor] on exam the right knee is swollen with no redness .\n"  # 6
        "[doctor] this is likely a sprain . keep the ibuprofen and use ice , see me in two "
        "weeks .\n"
    )
)

# What a model might write, one faithful and one unfaithful sentence per section.
SCRIPT = {
    "CHIEF COMPLAINT": "Right knee pain. [1]\n",
    "HISTORY OF PRESENT ILLNESS": (
        "The patient reports right knee pain for 2 weeks. [1]\n"
        "She takes ibuprofen 400 mg twice a day. [2, 3]\n"
        "She denies fever. [4, 5]\n"
        "She takes ibuprofen 800 mg at night. [3]\n"  # invented dose
        "The left knee is also painful. [1]\n"  # wrong side
    ),
    "PHYSICAL EXAMINATION AND RESULTS": "The right knee is swollen without redness. [6]\n",
    "ASSESSMENT": "Likely right knee sprain. [6, 7]\n",
    "PLAN": (
        "Continue ibuprofen and apply ice. [7]\n"
        "Start naproxen 500 mg. [7]\n"  # invented drug
        "Follow up in 2 weeks. [7]\n"
        "Rest the knee.\n"  # cites nothing
    ),
}


class ScriptedModel:
    name = "scripted"

    def __init__(self, *, context_tokens: int = 8192, fail: Exception | None = None) -> None:
        self.context_tokens = context_tokens
        self.prompts: list[str] = []
        self.systems: list[str] = []
        self.prefilled: list[tuple[str, str]] = []
        self.fail = fail

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def prefill(self, *, messages, through) -> int:
        prompt = messages[-1]["content"]
        self.prefilled.append(
            (messages[0]["content"], prompt[: prompt.index(through) + len(through)])
        )
        return len(self.prefilled[-1][1].split())

    def complete(self, *, messages, grammar, max_tokens, deadline) -> str:
        if self.fail is not None:
            raise self.fail
        prompt = messages[-1]["content"]
        self.prompts.append(prompt)
        self.systems.append(messages[0]["content"])
        title = prompt.rsplit("Write the ", 1)[1].split(" section", 1)[0]
        return SCRIPT[title]


def texts(note, key: str) -> list[str]:
    return [i.text for i in note.sections[key]]


def test_model_writes_sections_and_grounding_drops_what_lines_do_not_support() -> None:
    note = LlmDrafter(generator=ScriptedModel()).draft(utterances=VISIT)
    assert texts(note, "chief_complaint") == ["Right knee pain."]
    assert "She takes ibuprofen 400 mg twice a day." in texts(note, "hpi")
    assert "She denies fever." in texts(note, "hpi")
    assert "Follow up in 2 weeks." in texts(note, "plan")
    dropped = {d["text"] for d in note.dropped}
    assert dropped == {
        "She takes ibuprofen 800 mg at night.",
        "The left knee is also painful.",
        "Start naproxen 500 mg.",
        "Rest the knee.",
    }
    generated = [i for items in note.sections.values() for i in items if i.kind == GENERATED]
    assert generated and all(i.evidence for i in generated)
    # The structured facts stay the rules' own.
    assert [(m.name, m.dose) for m in note.facts.medications] == [("ibuprofen", "400 mg")]
    assert note.engine_version == "llm-scripted"
    assert note.to_dict()["dropped"]


def test_every_section_prompt_carries_the_numbered_transcript_and_the_history_the_facts() -> None:
    model = ScriptedModel()
    LlmDrafter(generator=model).draft(utterances=VISIT)
    assert len(model.prompts) == len(SECTIONS)
    for prompt in model.prompts:
        assert "[1] Patient: my right knee has been hurting" in prompt
    # The history sees the facts; the other sections are written from the lines alone (given the
    # facts list, the model copied it as the plan).
    assert "CHIEF COMPLAINT" in model.prompts[0]
    assert "HISTORY OF PRESENT ILLNESS" in model.prompts[1]
    assert "Medications: ibuprofen 400 mg" in model.prompts[1]
    assert all("Medications:" not in p for n, p in enumerate(model.prompts) if n != 1)


@pytest.mark.parametrize("text", ["", "[doctor] hello ?\n[patient] hi .\n", "[patient] \n"])
def test_empty_or_silent_transcript_gives_no_invented_note(text: str) -> None:
    model = ScriptedModel()
    note = LlmDrafter(generator=model).draft(utterances=parse_transcript(text=text))
    assert note.notices == [NOTHING_TO_SUMMARIZE]
    assert not any(note.sections.values())
    assert model.prompts == []


def test_long_transcript_is_chunked_and_no_line_is_left_out() -> None:
    lines = "".join(
        f"[patient] on day {n} the right knee pain was still there after walking .\n"
        for n in range(120)
    )
    visit = parse_transcript(text=lines)
    model = ScriptedModel(context_tokens=1200)
    note = LlmDrafter(generator=model).draft(utterances=visit)
    assert any("consecutive parts" in n for n in note.notices)
    sent = "\n".join(model.prompts)
    assert all(f"[{u.index}] Patient:" in sent for u in visit)
    # One chief complaint, the other sections once per part.
    parts = sum(1 for p in model.prompts if "CHIEF COMPLAINT" in p.rsplit("Write the", 1)[1])
    assert parts == 1 and len(model.prompts) > len(SECTIONS)
    assert texts(note, "chief_complaint") == ["Right knee pain."]


@pytest.mark.parametrize(
    "failure", [TimeoutError("note model deadline passed"), ModelError("no such file")]
)
def test_model_failure_falls_back_to_rules_with_a_notice(failure: Exception) -> None:
    note = LlmDrafter(generator=ScriptedModel(fail=failure)).draft(utterances=VISIT)
    assert note.engine_version.startswith("grounded-rules")
    assert len(note.notices) == 1 and "rules engine drafted it" in note.notices[0]
    assert note.facts.medications


def test_missing_model_file_falls_back_to_rules_and_does_not_retry_the_load(tmp_path) -> None:
    drafter = LlmDrafter(model_path=str(tmp_path / "missing.gguf"))
    first = drafter.draft(utterances=VISIT)
    assert "missing.gguf" in first.notices[0]
    assert drafter.draft(utterances=VISIT).notices == first.notices


def test_parse_sentences_reads_citations_and_keeps_uncited_lines_for_grounding() -> None:
    items = parse_sentences("Knee pain for 2 weeks. [1, 3]\n- Uses ice [7]\nNone.\nRests.\n")
    assert [(i.text, i.evidence) for i in items] == [
        ("Knee pain for 2 weeks.", [1, 3]),
        ("Uses ice.", [7]),
        ("Rests.", []),
    ]


def test_a_list_number_before_a_sentence_is_not_part_of_it() -> None:
    items = parse_sentences(
        "1) Meloxicam 15 mg daily. [30]\n2. Physical therapy. [31]\n"
        "3) Meloxicam 15 mg daily. [30]\n2.5 mg of amlodipine daily. [32]\n"
    )
    assert [i.text for i in items] == [
        "Meloxicam 15 mg daily.",
        "Physical therapy.",
        "2.5 mg of amlodipine daily.",
    ]


def test_a_citation_cut_by_the_token_limit_keeps_its_whole_numbers() -> None:
    # After a comma every number before it is whole; without one the last may be cut short.
    assert [i.evidence for i in parse_sentences("Right ankle pain. [1, 2, 3,")] == [[1, 2, 3]]
    assert [i.evidence for i in parse_sentences("Right ankle pain. [1, 2, 1")] == [[]]


def test_section_grammars_compile_in_llama_cpp() -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    for section in SECTIONS:
        assert llama_cpp.LlamaGrammar.from_string(section_grammar(section), verbose=False)


def test_backends_are_chosen_by_short_name_with_options() -> None:
    assert resolve_backend("llm") == LLM_BACKEND
    assert resolve_backend("rules").endswith("GroundedDrafter")
    drafter = get_drafter(path="llm", options=(("base_url", "http://127.0.0.1:9/v1"),))
    assert drafter.engine_version == "llm-server-default"


class SlowModel(ScriptedModel):
    """Finishes the first sections, then runs out of time."""

    def complete(self, *, messages, grammar, max_tokens, deadline) -> str:
        if len(self.prompts) == 2:
            raise TimeoutError("note model deadline passed")
        return super().complete(
            messages=messages, grammar=grammar, max_tokens=max_tokens, deadline=deadline
        )


def test_timeout_keeps_finished_sections_and_the_rules_write_the_rest() -> None:
    note = LlmDrafter(generator=SlowModel()).draft(utterances=VISIT)
    assert texts(note, "chief_complaint") == ["Right knee pain."]
    assert "She denies fever." in texts(note, "hpi")
    assert note.engine_version == "llm-scripted"
    assert len(note.notices) == 1
    assert "assessment" in note.notices[0] and "rules engine drafted those" in note.notices[0]
    # The plan comes from the rules: the doctor's line, quoted, with its line cited.
    assert any(i.kind == "narrative" and i.evidence == [7] for i in note.sections["plan"])


def test_work_during_the_call_is_the_start_of_every_section_prompt_at_hang_up() -> None:
    """What the model evaluates while the call goes on (the instructions and the final lines
    so far) is the exact start of each section's prompt after hang-up, so the model's cache
    keeps it and only the rest is evaluated then."""
    model = ScriptedModel()
    drafter = LlmDrafter(generator=model)
    for n in (3, 6, len(VISIT)):
        drafter.prepare(utterances=VISIT[:n])
    assert [p.count("] Patient:") + p.count("] Doctor:") for _, p in model.prefilled] == [3, 6, 8]
    # Each step extends the previous one: the cache is extended, never thrown away.
    for (_, before), (_, after) in zip(model.prefilled, model.prefilled[1:], strict=False):
        assert after.startswith(before)
    drafter.draft(utterances=VISIT)
    system, prefix = model.prefilled[-1]
    assert len(model.prompts) == len(SECTIONS)
    # The history's sections (written during the call) read the lines before the examination,
    # the start of what the call read; the others read it all.
    history, others = model.prompts[:2], model.prompts[2:]
    assert all(prefix.startswith(p.split("\n\n")[0]) for p in history)
    assert all(p.startswith(prefix) for p in others)
    assert set(model.systems) == {system}


def test_prepare_with_no_spoken_line_does_no_work() -> None:
    model = ScriptedModel()
    assert LlmDrafter(generator=model).prepare(utterances=[]) == 0
    assert model.prefilled == []


def test_sections_are_handed_over_one_by_one_as_they_are_written_and_grounded() -> None:
    heard: list[tuple[str, list[str], list[str]]] = []
    note = LlmDrafter(generator=ScriptedModel()).draft(
        utterances=VISIT,
        on_section=lambda key, items, dropped: heard.append(
            (key, [i.text for i in items], [d["text"] for d in dropped])
        ),
    )
    order = [key for key, _, _ in heard]
    written = [s.key for s in SECTIONS]
    # The rules' structured sections first (no model work), then the model's in note order.
    assert order[-len(written) :] == written
    assert set(order) == set(note.sections) and len(order) == len(set(order))
    by_key = {key: (texts_, dropped) for key, texts_, dropped in heard}
    # What a section hands over is already grounded: the invented dose and side never show.
    assert "She denies fever." in by_key["hpi"][0]
    assert set(by_key["hpi"][1]) == {
        "She takes ibuprofen 800 mg at night.",
        "The left knee is also painful.",
    }
    assert "Start naproxen 500 mg." in by_key["plan"][1]
    for key, texts_, _ in heard:
        assert texts_ == texts(note, key)


def test_fallback_hands_over_the_rules_sections_too() -> None:
    heard: list[str] = []
    LlmDrafter(generator=ScriptedModel(fail=TimeoutError("late"))).draft(
        utterances=VISIT, on_section=lambda key, items, dropped: heard.append(key)
    )
    assert set(heard) >= {s.key for s in SECTIONS}


def test_saved_call_prefixes_left_behind_are_deleted_after_hours(tmp_path) -> None:
    import os
    import time

    from consults.notes.llm import PREFIX_KEEP_S

    drafter = LlmDrafter(generator=ScriptedModel(), cache_dir=str(tmp_path))
    folder = tmp_path / "note-prefixes"
    folder.mkdir()
    stale, fresh = folder / "visit-1.kv", folder / "visit-2.kv"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    old = time.time() - PREFIX_KEEP_S - 60
    os.utime(stale, (old, old))
    assert drafter._prefix_file("visit-3") == folder / "visit-3.kv"  # noqa: SLF001
    assert not stale.exists() and fresh.exists()
    assert LlmDrafter(generator=ScriptedModel())._prefix_file("visit-3") is None  # noqa: SLF001


class HistoryAsPlanModel(ScriptedModel):
    """Writes the history as the plan unless the facts list is in the prompt (D2N063)."""

    def complete(self, *, messages, grammar, max_tokens, deadline) -> str:
        text = super().complete(
            messages=messages, grammar=grammar, max_tokens=max_tokens, deadline=deadline
        )
        if (
            "Write the PLAN" in messages[-1]["content"]
            and "Medications:" not in (messages[-1]["content"])
        ):
            return "The patient has had right knee pain for 2 weeks. [1]\nNo fever. [4, 5]\n"
        return text


def test_a_plan_of_history_sentences_is_written_again_with_the_facts() -> None:
    model = HistoryAsPlanModel()
    note = LlmDrafter(generator=model).draft(utterances=VISIT)
    plans = [p for p in model.prompts if "Write the PLAN" in p]
    assert len(plans) == 2
    assert "Medications:" not in plans[0] and "Medications: ibuprofen 400 mg" in plans[1]
    assert "Follow up in 2 weeks." in texts(note, "plan")
    assert "The patient has had right knee pain for 2 weeks." not in texts(note, "plan")


def test_a_plan_sentence_citing_only_the_history_is_left_out() -> None:
    from consults.notes.llm import _ground_section, parse_sentences

    items = parse_sentences("Knee pain for 2 weeks. [1]\nFollow up in 2 weeks. [1, 7]\n")
    kept, dropped = _ground_section("plan", items, VISIT)
    assert [i.text for i in kept] == ["Follow up in 2 weeks."]
    assert dropped[0]["reasons"] == ["cites only the history, not a decision of the plan"]
