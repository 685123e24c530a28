"""End-to-end transcription with the real tiny.en model on synthesized clinical speech."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from consults.speech import (
    SAMPLE_RATE,
    CorruptAudio,
    Transcriber,
    UnsupportedAudio,
    decode_audio,
    get_transcriber,
)
from consults.speech.faster_whisper_backend import FasterWhisperTranscriber
from tests.speech.audio_helpers import FIXTURES, encode

REPO = Path(__file__).resolve().parents[2]
KEY_WORDS = ("allergic", "penicillin", "pain")


def test_tiny_model_transcribes_clinical_sentence(
    tiny: FasterWhisperTranscriber, penicillin_ogg: bytes
) -> None:
    transcript = tiny.transcribe(audio=penicillin_ogg)

    assert isinstance(tiny, Transcriber)
    assert transcript.status == "ok"
    assert transcript.language == "en"
    assert all(word in transcript.text.lower() for word in KEY_WORDS), transcript.text
    assert 3.5 < transcript.duration_s < 4.5
    assert transcript.processing_s > 0
    first = transcript.segments[0]
    assert 0 <= first.start < first.end <= transcript.duration_s + 0.5
    assert first.no_speech_prob < 0.6


def test_chunk_offset_places_segments_on_the_consult_timeline(
    tiny: FasterWhisperTranscriber, penicillin_ogg: bytes
) -> None:
    samples = decode_audio(penicillin_ogg)
    transcript = tiny.transcribe_array(samples=samples, offset_s=120.0)
    assert transcript.segments
    assert all(120.0 <= s.start < s.end <= 125.0 for s in transcript.segments)


def test_webm_opus_chunk_transcribes(tiny: FasterWhisperTranscriber, penicillin_ogg: bytes) -> None:
    chunk = encode(decode_audio(penicillin_ogg), container="webm", codec="libopus")
    assert "penicillin" in tiny.transcribe(audio=chunk).text.lower()


@pytest.mark.parametrize("kind", ["digital silence", "room hiss", "white noise", "hum"])
def test_silence_and_noise_give_no_text(tiny: FasterWhisperTranscriber, kind: str) -> None:
    rng = np.random.default_rng(7)
    n = 8 * SAMPLE_RATE
    samples = {
        "digital silence": np.zeros(n),
        "room hiss": 0.003 * rng.standard_normal(n),
        "white noise": 0.2 * rng.standard_normal(n),
        "hum": 0.1 * np.sin(2 * np.pi * 50 * np.arange(n) / SAMPLE_RATE),
    }[kind].astype(np.float32)

    transcript = tiny.transcribe_array(samples=samples)

    assert transcript.status == "no_speech"
    assert transcript.text == ""
    assert transcript.segments == ()
    assert transcript.duration_s == pytest.approx(8.0)


def test_wav_of_silence_gives_no_speech(tiny: FasterWhisperTranscriber) -> None:
    wav = encode(np.zeros(3 * SAMPLE_RATE, np.float32), container="wav", codec="pcm_s16le")
    assert tiny.transcribe(audio=wav).status == "no_speech"


def test_bad_uploads_raise_clear_errors(tiny: FasterWhisperTranscriber) -> None:
    with pytest.raises(UnsupportedAudio):
        tiny.transcribe(audio=b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(CorruptAudio):
        tiny.transcribe(audio=b"OggS" + os.urandom(500))


def test_factory_caches_one_instance_per_options() -> None:
    a = get_transcriber(model="tiny.en", beam_size=1)
    assert get_transcriber(model="tiny.en", beam_size=1) is a
    assert get_transcriber(model="tiny.en", beam_size=2) is not a
    with pytest.raises(ImportError):
        get_transcriber(backend="NoDots")


def test_engine_import_loads_neither_django_nor_ctranslate2() -> None:
    code = (
        "import sys, consults.speech as s; s.get_transcriber(model='tiny.en');"
        "print([m for m in ('django', 'ctranslate2', 'faster_whisper', 'av') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_transcribes_with_hub_offline_and_network_blocked(tmp_path: Path) -> None:
    # A fresh process whose every socket connect fails: any hub download would raise.
    script = f"""
import json, socket
def refuse(*args, **kwargs):
    raise OSError("network disabled by test")
socket.socket.connect = refuse
socket.create_connection = refuse
from consults.speech import get_transcriber
t = get_transcriber(model="tiny.en", cache_dir={str(tmp_path)!r})
audio = open({str(FIXTURES / "penicillin.ogg")!r}, "rb").read()
print(json.dumps(t.transcribe(audio=audio).as_dict()))
"""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
        "HF_HOME": str(tmp_path / "hf"),
    }
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "penicillin" in result["text"].lower()
    assert not (tmp_path / "hf").exists()


def test_language_allow_list_picks_the_likeliest_allowed_language() -> None:
    class FakeModel:
        def detect_language(self, **kwargs):
            return "th", 0.4, [("th", 0.4), ("en", 0.3), ("es", 0.2), ("fr", 0.1)]

    backend = FasterWhisperTranscriber(model="base", languages=["fr", "es", "en"])
    samples = np.zeros(SAMPLE_RATE, np.float32)

    assert backend._pick_language(FakeModel(), samples, ("fr", "es", "en")) == "en"
    assert backend._pick_language(FakeModel(), samples, ("de",)) == "de"
