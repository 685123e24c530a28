"""Context biasing: the hint is bounded, reaches the decoder, and never speaks into silence."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from consults.speech import SAMPLE_RATE, get_transcriber
from consults.speech.correct import correct_transcript
from consults.speech.faster_whisper_backend import FasterWhisperTranscriber
from consults.speech.vocabulary import (
    DEFAULT_HINT_CHARS,
    FormularyError,
    SpeechContext,
    load_formulary,
)
from tests.speech.audio_helpers import noises

FORMULARY = load_formulary()
LONG_VISIT = SpeechContext(
    terms=("lisinopril", "penicillin", "sertraline"),
    reason="blood pressure review and a cough that will not go away",
    previous_text="I have been coughing at night for three weeks and the inhaler helps a bit " * 10,
    formulary=FORMULARY,
)


def test_shipped_formulary_lists_common_primary_care_drugs() -> None:
    assert len(FORMULARY) > 100
    assert {"lisinopril", "doxycycline", "metformin", "atorvastatin"} <= set(FORMULARY)
    assert not any(name.startswith("#") for name in FORMULARY)


def test_a_clinic_formulary_file_replaces_the_shipped_one(tmp_path: Path) -> None:
    path = tmp_path / "formulary.txt"
    path.write_text("# our list\nNewdrugumab\n\nolderdrug  # comment\nNewdrugumab\n")
    assert load_formulary(path) == ("Newdrugumab", "olderdrug")


@pytest.mark.parametrize("content", [None, "# only comments\n\n", b"\xff\xfe\x00bad"])
def test_an_unreadable_or_empty_formulary_is_a_clear_error(tmp_path: Path, content) -> None:
    path = tmp_path / "formulary.txt"
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(FormularyError, match="formulary"):
        load_formulary(path)


def test_hint_is_bounded_and_puts_the_visit_first_and_its_last_words_last() -> None:
    hint = LONG_VISIT.hotwords()

    assert hint is not None
    assert len(hint) <= DEFAULT_HINT_CHARS
    assert hint.startswith("lisinopril, penicillin, sertraline, atorvastatin")
    assert hint.endswith("and the inhaler helps a bit")
    assert "cough that will not go away" in hint
    assert SpeechContext(formulary=FORMULARY, hint_chars=0).hotwords() is None
    assert SpeechContext().hotwords() is None


def test_lexicon_holds_intake_then_formulary_without_duplicates() -> None:
    ctx = SpeechContext(terms=("Lisinopril", "Zzzdrug"), formulary=("lisinopril", "metformin"))
    assert ctx.lexicon == ("Lisinopril", "Zzzdrug", "metformin")


def test_hotwords_reach_the_unbatched_decoder() -> None:
    seen = {}

    class Model:
        def transcribe(self, samples, **options):
            seen.update(options)
            return iter(()), SimpleNamespace(language="en")

    backend = FasterWhisperTranscriber(model="tiny.en")
    backend._model = Model()
    speech = 0.1 * np.sin(np.arange(SAMPLE_RATE) / 5).astype(np.float32)

    backend.transcribe_array(samples=speech, hotwords=LONG_VISIT.hotwords())

    assert seen["hotwords"] == LONG_VISIT.hotwords()
    assert seen["vad_filter"] is True
    assert seen["condition_on_previous_text"] is False
    backend.transcribe_array(samples=speech)
    assert "hotwords" not in seen or seen["hotwords"] == LONG_VISIT.hotwords()


@pytest.mark.parametrize("kind", list(noises()))
def test_silence_and_noise_with_the_full_hint_give_no_text(tiny, kind: str) -> None:
    transcript = tiny.transcribe_array(samples=noises()[kind], hotwords=LONG_VISIT.hotwords())
    fixed = correct_transcript(transcript, lexicon=LONG_VISIT.lexicon)

    assert transcript.status == "no_speech", transcript.text
    assert fixed.text == ""


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(noises()))
def test_base_with_the_full_hint_says_nothing_on_silence_and_noise(kind: str) -> None:
    base = get_transcriber(model="base", language="en")
    transcript = base.transcribe_array(samples=noises()[kind], hotwords=LONG_VISIT.hotwords())
    assert transcript.status == "no_speech", transcript.text
    assert transcript.text == ""
