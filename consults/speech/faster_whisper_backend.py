"""faster-whisper (CTranslate2) backend, loading only the verified weights from local packages."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from consults.speech.audio import SAMPLE_RATE, decode_audio
from consults.speech.guards import GuardOptions, filter_segments, is_silent
from consults.speech.types import Segment, TextScorer, Transcript, Word
from consults.speech.weights import custom_model_files, model_files

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

logger = logging.getLogger(__name__)

_VAD_PARAMETERS = {"min_silence_duration_ms": 500, "speech_pad_ms": 200}

ENCODER_WINDOWS = ("full", "fit")
# With encoder_window="fit" the encoder sees the window's speech plus at least this much of the
# zero padding Whisper was trained with, rounded up to whole steps (100 frames = 1 s).
_FIT_MIN_FRAMES = 1500  # 15 s: shorter, a long hint before a 2 s utterance threw the decoder off
_FIT_PAD_FRAMES = 200  # 2 s
_FIT_STEP_FRAMES = 100


def fitted_frames(features: np.ndarray, *, floor: int = _FIT_MIN_FRAMES) -> int:
    """How many mel frames of a padded Whisper window the encoder needs to see.

    faster-whisper pads every window to 30 s (3,000 frames) with exact zeros, and the encoder's
    cost is proportional to its input however little of it is speech: a 6 s utterance pays for
    30 s. Log-mel frames of real audio are never all zero (silence normalises to about -1.5),
    so the padding is found exactly. The window is cut to its speech plus 2 s of padding,
    rounded up to whole seconds, and never below 15 s or above the full window.
    """
    return _fitted(_content_frames(features), total=features.shape[-1], floor=floor)


def _fitted(content: int, *, total: int, floor: int) -> int:
    """``fitted_frames`` for a window whose frames of audio are already counted."""
    wanted = max(floor, content + _FIT_PAD_FRAMES)
    wanted = -(-wanted // _FIT_STEP_FRAMES) * _FIT_STEP_FRAMES
    return min(total, wanted)


# A window that starts after the first and holds less than this much audio is a tail: what is
# left after the last word of the window before (faster-whisper seeks to the last word's end
# when word timestamps are on). It is decoded without the hint, greedily and without the
# temperature fallback: with the hint, such a second of padding came back as formulary names
# ("biopropion, venlafaxine, venlafaxine, amitriptyline", "ciprofloxacin" at a log-probability
# of -0.99, just inside the guards), and the fallback's sampling spent 2-4 CPU s on it.
TAIL_FRAMES = 150  # 1.5 s
# What a tail may decode: 1.5 s holds a few words, and a tail is where Whisper invents text
# (a 223-word loop in the last 0.3 s of one clip; the guards drop it, but greedy decoding had
# already spent its 448 tokens on it). Words, punctuation and timestamps fit in this.
TAIL_MAX_TOKENS = 48
# text_scorer: audio kept on each side of the stretch it scores.
_SCORE_PAD_S = 0.3
# A tail has no hint before it, which is what the 15 s floor of the fitted window is for: its
# encoder sees the tail plus 2 s of padding, at least 5 s (0.05 CPU s here instead of 0.19).
_TAIL_MIN_FRAMES = 500


def _model_class(*, fit: bool, plain_tails: bool) -> type[WhisperModel]:
    """WhisperModel with the fitted encoder window (see fitted_frames) and plain tail windows."""
    from faster_whisper import WhisperModel

    class ClinicalWhisperModel(WhisperModel):
        _window = threading.local()

        def transcribe(self, *args: Any, **kwargs: Any):  # noqa: ANN202 - faster-whisper's tuple
            # The segments generator runs on the thread that iterates it, right after this.
            self._window.decoded = 0
            return super().transcribe(*args, **kwargs)

        def encode(self, features: np.ndarray):  # noqa: ANN201 - ctranslate2.StorageView
            content = self._window.content = _content_frames(features)
            if not fit:
                return super().encode(features)
            floor = _TAIL_MIN_FRAMES if self._is_tail() else _FIT_MIN_FRAMES
            frames = _fitted(content, total=features.shape[-1], floor=floor)
            return super().encode(features[..., :frames])

        def _is_tail(self) -> bool:
            # Windows are counted where they are decoded: language detection encodes too.
            window = self._window
            return (
                plain_tails
                and getattr(window, "decoded", 0) > 0
                and getattr(window, "content", TAIL_FRAMES) < TAIL_FRAMES
            )

        def generate_with_fallback(self, encoder_output, prompt, tokenizer, options):  # noqa: ANN001, ANN201
            if self._is_tail():
                prompt = prompt[prompt.index(tokenizer.sot) :]  # no hint
                options = dataclasses.replace(
                    options,
                    beam_size=1,
                    best_of=1,
                    temperatures=[0.0],
                    max_new_tokens=TAIL_MAX_TOKENS,
                )
            self._window.decoded = getattr(self._window, "decoded", 0) + 1
            return super().generate_with_fallback(encoder_output, prompt, tokenizer, options)

    return ClinicalWhisperModel


def _plain_encode(model: WhisperModel, features: np.ndarray):  # noqa: ANN202
    """The plain encoder, outside a transcription (no window counting, no tail rules)."""
    from faster_whisper import WhisperModel

    return WhisperModel.encode(model, features)


def _content_frames(features: np.ndarray) -> int:
    """Mel frames of a padded window that hold audio (faster-whisper pads with exact zeros)."""
    total = features.shape[-1]
    frames = features.reshape(-1, features.shape[-2], total)
    used = np.flatnonzero(np.any(frames != 0.0, axis=(0, 1)))
    return int(used[-1]) + 1 if used.size else 0


class FasterWhisperTranscriber:
    """Whisper on CTranslate2 with VAD and hallucination guards; the model loads on first use."""

    def __init__(
        self,
        *,
        model: str = "base",
        compute_type: str = "int8",
        beam_size: int = 5,
        cpu_threads: int = 0,
        cache_dir: str | Path | None = None,
        language: str | None = None,
        languages: tuple[str, ...] | list[str] | None = None,
        vad: bool = True,
        word_timestamps: bool = True,
        guards: GuardOptions | None = None,
        model_path: str | Path | None = None,
        model_sha256: str | None = None,
        encoder_window: str = "full",
        plain_tails: bool = True,
    ) -> None:
        if encoder_window not in ENCODER_WINDOWS:
            raise ValueError(f"encoder_window must be one of {ENCODER_WINDOWS}")
        self.model_name = model
        # "fit": the encoder runs on a window's speech (+2 s, at least 15 s), not always 30 s.
        self.encoder_window = encoder_window
        # Tail windows (see TAIL_FRAMES) decoded without the hint, greedily, no fallback.
        self.plain_tails = plain_tails
        # A clinic's own CTranslate2 directory (small, medium, large-v3, distil) in place of
        # the packaged weights; loaded only when its model.bin matches model_sha256.
        self.model_path = model_path
        self.model_sha256 = model_sha256
        self.compute_type = compute_type
        self.beam_size = beam_size
        self.cpu_threads = cpu_threads
        self.cache_dir = cache_dir
        self.language = language
        # Auto-detection over all 99 languages can pick a wrong one on a short clip (we saw
        # English TTS read as Thai); an allow-list keeps detection among the clinic's languages.
        self.languages = tuple(languages) if languages else None
        self.vad = vad
        # Word times let overlapping chunks be stitched without cutting a word (stitch.py).
        self.word_timestamps = word_timestamps
        self.guards = guards or GuardOptions()
        self._model: WhisperModel | None = None
        self._lock = threading.Lock()

    def transcribe(
        self, *, audio: bytes, offset_s: float = 0.0, hotwords: str | None = None
    ) -> Transcript:
        """Decode encoded audio and transcribe it; raises UnsupportedAudio or CorruptAudio."""
        self.load()  # load time is a one-off per process, not part of processing_s
        started = time.perf_counter()
        samples = decode_audio(audio)
        return self._run(samples=samples, offset_s=offset_s, started=started, hotwords=hotwords)

    def transcribe_array(
        self, *, samples: np.ndarray, offset_s: float = 0.0, hotwords: str | None = None
    ) -> Transcript:
        """Transcribe float32 mono 16 kHz samples; `offset_s` places segments on a timeline.

        `hotwords` (``SpeechContext.hotwords()``) go before every window as a hint; the VAD
        and the guards still decide whether anything was said.
        """
        self.load()
        started = time.perf_counter()
        return self._run(samples=samples, offset_s=offset_s, started=started, hotwords=hotwords)

    def text_scorer(
        self, *, samples: np.ndarray, offset_s: float = 0.0, language: str | None = None
    ) -> TextScorer:
        """A function that scores how well texts fit a stretch of ``samples``.

        ``score(start_s, end_s, texts, names)`` (times on the timeline ``offset_s`` starts)
        runs the encoder once per stretch (±0.3 s) and returns, per text, the sum of the
        log-probabilities Whisper gives its tokens (forced decoding, CTranslate2's ``align``)
        with ``names`` before them as a hint. Texts that differ in one span compare by how well
        that span, and what follows it, fits the audio: acoustic evidence for a correction.
        """
        samples = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        encoded_stretches: dict[tuple[float, float], tuple[np.ndarray, int]] = {}

        def encoded(start_s: float, end_s: float) -> tuple[np.ndarray, int]:
            """The encoder's output for a stretch, and its frames of audio (once a stretch)."""
            from faster_whisper.audio import pad_or_trim

            if (start_s, end_s) not in encoded_stretches:
                model = self.load()
                begin = max(0, int((start_s - offset_s - _SCORE_PAD_S) * SAMPLE_RATE))
                end = min(samples.size, int((end_s - offset_s + _SCORE_PAD_S) * SAMPLE_RATE))
                features = model.feature_extractor(samples[begin:end])
                frames = min(features.shape[-1], 3000)
                features = pad_or_trim(features)
                if self.encoder_window == "fit":
                    features = features[..., : fitted_frames(features)]
                output = np.array(_plain_encode(model, features))
                encoded_stretches[(start_s, end_s)] = (output, frames)
            return encoded_stretches[(start_s, end_s)]

        def score(start_s: float, end_s: float, texts: list[str], names: list[str]) -> list[float]:
            import ctranslate2
            from faster_whisper.tokenizer import Tokenizer

            model = self.load()
            output, frames = encoded(start_s, end_s)
            tokenizer = Tokenizer(
                model.hf_tokenizer,
                model.model.is_multilingual,
                task="transcribe",
                language=language or self.language or self._default_language() or "en",
            )
            start = [tokenizer.sot_prev, *tokenizer.encode(" " + ", ".join(names) + ".")]
            start += [*tokenizer.sot_sequence, tokenizer.no_timestamps]
            tokens = [tokenizer.encode(" " + text.strip()) for text in texts]
            batch = ctranslate2.StorageView.from_array(np.repeat(output, len(tokens), axis=0))
            results = model.model.align(batch, start, tokens, [frames] * len(tokens))
            return [
                float(np.sum(np.log(np.maximum(np.asarray(r.text_token_probs), 1e-9))))
                for r in results
            ]

        return score

    def load(self) -> WhisperModel:
        """Load (once per instance) and return the CTranslate2 model; never downloads."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> WhisperModel:
        # Belt and braces: even a code path we did not foresee must not reach a model hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")

        if self.model_path:
            files = custom_model_files(path=self.model_path, sha256=self.model_sha256)
        else:
            files = model_files(name=self.model_name, cache_dir=self.cache_dir)
        started = time.perf_counter()
        model_class = _model_class(fit=self.encoder_window == "fit", plain_tails=self.plain_tails)
        model = model_class(
            str(files.path),
            device="cpu",
            compute_type=self.compute_type,
            cpu_threads=self.cpu_threads or _available_cores(),
            local_files_only=True,
        )
        logger.info(
            "loaded whisper %s (%s, %s encoder window) in %.1fs",
            self.model_name,
            self.compute_type,
            self.encoder_window,
            time.perf_counter() - started,
        )
        return model

    def _run(
        self, *, samples: np.ndarray, offset_s: float, started: float, hotwords: str | None = None
    ) -> Transcript:
        samples = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        duration_s = samples.size / SAMPLE_RATE
        if is_silent(samples, peak=self.guards.silence_peak):
            return self._result([], [], self._default_language(), duration_s, started)
        model = self.load()
        options = self._decode_options()
        if hotwords:
            # WhisperModel.transcribe, not BatchedInferencePipeline: the batched pipeline
            # ignores hotwords (faster-whisper #1076).
            options["hotwords"] = hotwords
        if options["language"] is None and self.languages:
            options["language"] = self._pick_language(model, samples, self.languages)
        raw, info = model.transcribe(samples, **options)
        segments = [
            Segment(
                start=round(offset_s + s.start, 3),
                end=round(offset_s + s.end, 3),
                text=s.text.strip(),
                avg_logprob=s.avg_logprob,
                no_speech_prob=s.no_speech_prob,
                words=tuple(
                    Word(
                        start=round(offset_s + w.start, 3),
                        end=round(offset_s + w.end, 3),
                        text=w.word,
                        probability=round(float(w.probability), 4),
                    )
                    for w in s.words or ()
                ),
            )
            for s in raw  # a generator: decoding happens while we iterate
        ]
        kept, dropped = filter_segments(segments, options=self.guards)
        if dropped:
            logger.info("dropped %d untrusted segment(s): %s", len(dropped), dropped)
        return self._result(kept, dropped, info.language, duration_s, started)

    def _decode_options(self) -> dict[str, Any]:
        return {
            "language": self.language or self._default_language(),
            "beam_size": self.beam_size,
            "best_of": max(self.beam_size, 1),
            # Conditioning on earlier text is what lets one bad window poison the rest.
            "condition_on_previous_text": False,
            "vad_filter": self.vad,
            "vad_parameters": _VAD_PARAMETERS,
            "no_speech_threshold": self.guards.no_speech_prob,
            "log_prob_threshold": self.guards.min_avg_logprob,
            "compression_ratio_threshold": 2.4,
            "hallucination_silence_threshold": None,
            "word_timestamps": self.word_timestamps,
        }

    def _pick_language(
        self, model: WhisperModel, samples: np.ndarray, languages: tuple[str, ...]
    ) -> str:
        from faster_whisper.vad import VadOptions

        try:
            _, _, probs = model.detect_language(
                audio=samples, vad_filter=self.vad, vad_parameters=VadOptions(**_VAD_PARAMETERS)
            )
        except ValueError:  # VAD found no speech at all; decoding will come back empty
            return languages[0]
        allowed = [(p, lang) for lang, p in probs if lang in languages]
        return max(allowed)[1] if allowed else languages[0]

    def _default_language(self) -> str | None:
        # English-only checkpoints have no language token to detect.
        return "en" if self.model_name.endswith(".en") else None

    def _result(
        self,
        kept: list[Segment],
        dropped: list[str],
        language: str | None,
        duration_s: float,
        started: float,
    ) -> Transcript:
        return Transcript(
            segments=tuple(kept),
            language=language or "",
            duration_s=duration_s,
            processing_s=time.perf_counter() - started,
            status="ok" if kept else "no_speech",
            model=self.model_name,
            dropped=tuple(dropped),
        )


def _available_cores() -> int:
    # CTranslate2's own default is 4 threads whatever the box; on a small or shared CPU that
    # oversubscribes, so follow the cores this process may actually run on.
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 8))
    except AttributeError:
        return max(1, min(os.cpu_count() or 1, 8))
