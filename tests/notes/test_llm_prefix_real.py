"""The real model: the work done during the call is reused at hang-up, in this process or,
through the saved prefix, in another one; the note is the same as without it."""

from __future__ import annotations

import time

import pytest

from consults.notes.llm import SECTIONS, LlmDrafter, numbered_lines, section_grammar
from consults.notes.transcript import parse_transcript

pytestmark = pytest.mark.slow

VISIT = parse_transcript(
    text=(
        "[doctor] what brings you in today ?\n"
        "[patient] i've had a cough and a fever for three days .\n"
        "[doctor] any chest pain ?\n"
        "[patient] no .\n"
        "[doctor] are you taking any medications ?\n"
        "[patient] i take lisinopril ten milligrams once a day for my blood pressure .\n"
        "[doctor] i'll start you on azithromycin five hundred milligrams once daily .\n"
    )
)


@pytest.fixture(scope="session")
def drafter() -> LlmDrafter:
    pytest.importorskip("llama_cpp")
    from django.conf import settings

    from consults.notes.llm_weights import packaged_model_installed

    if not packaged_model_installed():
        pytest.skip("the packaged note model is not installed (requirements/notes-llm.txt)")
    # The model cache the app uses: the parts are joined once, not per test run.
    model = LlmDrafter(cache_dir=settings.NOTES_MODEL_CACHE_DIR, timeout_s=600)
    model.generator()
    return model


def _chief_complaint(drafter: LlmDrafter) -> tuple[str, dict]:
    model = drafter.generator()
    model.stats = dict.fromkeys(model.stats, 0)
    messages = drafter._messages(  # noqa: SLF001 - the exact prompt the draft sends
        numbered_lines(VISIT), part="", facts_text="", section=SECTIONS[0]
    )
    text = model.complete(
        messages=messages,
        grammar=section_grammar(SECTIONS[0]),
        max_tokens=SECTIONS[0].max_tokens,
        deadline=time.monotonic() + 300,
    )
    return text, dict(model.stats)


def test_prefix_read_during_the_call_is_reused_after_it_and_changes_nothing(drafter) -> None:
    model = drafter.generator()
    model._llm.n_tokens = 0  # noqa: SLF001 - a cold cache
    cold, cold_stats = _chief_complaint(drafter)
    assert cold_stats["cached_tokens"] == 0

    # During the call, in steps; then the prefix is saved for another worker process.
    assert drafter.prepare(utterances=VISIT[:3], key="test-prefix") > 0
    assert drafter.prepare(utterances=VISIT, key="test-prefix") > 0
    saved = drafter._prefix_file("test-prefix")  # noqa: SLF001
    assert saved is not None and saved.stat().st_size > 0
    assert saved.stat().st_mode & 0o077 == 0  # it encodes the transcript: owner only

    warm, warm_stats = _chief_complaint(drafter)
    assert warm == cold
    # Only the request after the transcript is read at hang-up.
    assert warm_stats["cached_tokens"] > 5 * warm_stats["prompt_tokens"]

    # Another process: its cache holds something else; it takes the saved prefix over.
    model._llm.n_tokens = 0  # noqa: SLF001
    model.prefill(messages=[{"role": "user", "content": "unrelated"}], through="unrelated")
    messages = drafter._messages(  # noqa: SLF001
        numbered_lines(VISIT), part="", facts_text="", section=SECTIONS[0]
    )
    assert model.load_prefix(saved, messages=messages) > 0
    taken_over, stats = _chief_complaint(drafter)
    saved.unlink()
    assert taken_over == cold
    assert stats["cached_tokens"] > 5 * stats["prompt_tokens"]


def test_greedy_decoding_writes_what_the_full_grammar_check_writes(drafter) -> None:
    """The grammar is checked on the model's choice first, every candidate only when it is
    refused: the text is llama_cpp's own, with the grammar run over the whole vocabulary."""
    from llama_cpp import LlamaGrammar

    from consults.notes.llm import HPI

    model = drafter.generator()
    messages = drafter._messages(  # noqa: SLF001
        numbered_lines(VISIT), part="", facts_text="", section=HPI
    )
    grammar = section_grammar(HPI)
    # Both from an empty cache: the prompt read in the same batches, so that the logits are the
    # same to the last bit (AVX-512 kernels round a prompt read in other pieces differently).
    model._llm.reset()  # noqa: SLF001
    ours = model.complete(
        messages=messages, grammar=grammar, max_tokens=80, deadline=time.monotonic() + 300
    )
    model._llm.reset()  # noqa: SLF001
    stream = model._llm.create_completion(  # noqa: SLF001
        prompt=model._tokens(model._format(messages)),  # noqa: SLF001
        grammar=LlamaGrammar.from_string(grammar, verbose=False),
        max_tokens=80,
        temperature=0.0,
        stream=True,
    )
    theirs = "".join(chunk["choices"][0]["text"] for chunk in stream)
    assert ours.startswith(("The patient", "Mr.", "Ms.", "Mrs."))
    assert ours == theirs


def test_a_line_written_again_starts_differently_and_keeps_the_grammar(drafter) -> None:
    """A line the drafter refuses (a loop) is written again from the line's start: the model
    and the grammar go back there, and the refused line's first token is not taken again."""
    from consults.notes.llm import _CITED, HPI

    model = drafter.generator()
    messages = drafter._messages(  # noqa: SLF001
        numbered_lines(VISIT), part="", facts_text="", section=HPI
    )
    refused: list[str] = []

    def judge(text: str) -> str:
        if text.endswith("\n") and not refused:
            refused.append(text)
            return "redo"
        return "go"

    text, generated, _ = model._greedy(  # noqa: SLF001
        model._tokens(model._format(messages)),  # noqa: SLF001
        gbnf=section_grammar(HPI),
        max_tokens=80,
        deadline=time.monotonic() + 300,
        judge=judge,
    )
    first_refused = refused[0].splitlines()[0]
    first_kept = text.splitlines()[0]
    assert first_kept.split()[0] != first_refused.split()[0]
    assert generated > len(model._llm.tokenize(text.encode(), add_bos=False))  # noqa: SLF001
    assert all(_CITED.match(line) for line in text.splitlines()[:-1])
