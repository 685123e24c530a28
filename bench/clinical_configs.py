"""Decoding settings compared on the clinical set: term recall, WER, RTF and CPU per audio second.

Every setup decodes the same clip one after the other (round robin), so a swing in the load of
a shared machine hits all of them alike. Wall-time RTF depends on that load; CPU seconds per
audio second (the process's CPU time: all CTranslate2 threads) much less. ``est. idle RTF``
scales the idle RTF measured for base, beam 5, no hint (0.155, docs/transcription.md) by each
setup's CPU time relative to that one: an estimate, labelled as such.

    python bench/transcription.py --clinical-configs
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from bench.clinical_bench import (
    KINDS,
    Result,
    context_for,
    found,
    invented,
    norm,
    recall,
    result_of,
    silence_report,
    wer,
)
from bench.clinical_speech import clinical_set
from consults.speech.correct import DEFAULT_THRESHOLD, correct_transcript
from consults.speech.faster_whisper_backend import FasterWhisperTranscriber
from consults.speech.vocabulary import SpeechContext, load_formulary

IDLE_RTF_BASE_BEAM5_NO_HINT = 0.155  # docs/transcription.md, measured on the idle box


@dataclass(frozen=True)
class Setup:
    label: str
    beam: int
    hint_chars: int  # 0: no hint
    correct: bool = True
    options: tuple[tuple[str, Any], ...] = ()  # extra faster-whisper options
    window: str = "full"  # encoder window: "full" (always 30 s) or "fit" (the speech + 2 s)
    plain_tails: bool = True  # tail windows decoded without the hint (faster_whisper_backend)
    audio_check: bool = True  # corrections below the bar checked against the audio

    def engine(self) -> _Tuned:
        return _Tuned(
            dict(self.options),
            model="base",
            beam_size=self.beam,
            language="en",
            encoder_window=self.window,
            plain_tails=self.plain_tails,
        )


class _Tuned(FasterWhisperTranscriber):
    def __init__(self, options: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._extra = options

    def _decode_options(self) -> dict[str, Any]:
        return {**super()._decode_options(), **self._extra}


SETUPS = [
    Setup("beam 5, no hint, no correction (ref)", 5, 0, correct=False, window="fit"),
    Setup(
        "beam 5, hinted tails, no audio check",
        5,
        540,
        window="fit",
        plain_tails=False,
        audio_check=False,
    ),
    Setup("beam 5, plain tails, no audio check", 5, 540, window="fit", audio_check=False),
    Setup("beam 5, plain tails, audio check (default)", 5, 540, window="fit"),
]


def run_configs(
    setups: list[Setup] | None = None,
    *,
    show_misses: bool = True,
    real_clips: list | None = None,
    normalizer=None,
) -> None:
    setups = setups or SETUPS
    formulary = load_formulary()
    load_before = os.getloadavg()
    print(
        f"cpu cores: {len(os.sched_getaffinity(0))}; load average {load_before[0]:.1f} / "
        f"{load_before[1]:.1f} / {load_before[2]:.1f} (1/5/15 min) at start"
    )
    engines = {s: s.engine() for s in setups}
    splits = {name: clinical_set(split=name) for name in ("dev", "held-out")}
    for engine in engines.values():
        engine.load()
        engine.transcribe_array(samples=splits["dev"][0].samples)  # warm-up
    results: dict[tuple[Setup, str], tuple[Result, float]] = {}
    for name, clips in splits.items():
        out: dict[Setup, list] = {s: [] for s in setups}
        cpu: dict[Setup, float] = dict.fromkeys(setups, 0.0)
        wall: dict[Setup, float] = dict.fromkeys(setups, 0.0)
        for clip in clips:
            for s in setups:
                ctx = context_for(clip, formulary)
                ctx = SpeechContext(
                    terms=ctx.terms, reason=ctx.reason, formulary=formulary, hint_chars=s.hint_chars
                )
                c0, w0 = time.process_time(), time.perf_counter()
                t = engines[s].transcribe_array(samples=clip.samples, hotwords=ctx.hotwords())
                if s.correct:
                    scorer = engines[s].text_scorer(samples=clip.samples) if s.audio_check else None
                    t = correct_transcript(
                        t,
                        lexicon=ctx.lexicon,
                        preferred=ctx.terms,
                        threshold=DEFAULT_THRESHOLD,
                        scorer=scorer,
                    )
                cpu[s] += time.process_time() - c0
                wall[s] += time.perf_counter() - w0
                out[s].append(t)
        for s in setups:
            res = result_of(out[s], clips)
            res.seconds = wall[s]
            results[(s, name)] = (res, cpu[s])
    load_after = os.getloadavg()
    ref_cpu = {n: results[(setups[0], n)][1] for n in splits}
    for name, clips in splits.items():
        audio = sum(c.duration_s for c in clips)
        print(f"\nclinical {name} ({len(clips)} clips, {audio:.0f}s)")
        for s in setups:
            res, cpu_s = results[(s, name)]
            r = recall(res, clips)
            hit, total = sum(v[0] for v in r.values()), sum(v[1] for v in r.values())
            kinds = "  ".join(
                f"{k} {r.get(k, (0, 0))[0]:>2}/{r.get(k, (0, 0))[1]:<2}" for k in KINDS
            )
            w = wer([norm(c.reference) for c in clips], [norm(h) or "<empty>" for h in res.hyps])
            est = IDLE_RTF_BASE_BEAM5_NO_HINT * cpu_s / ref_cpu[name]
            print(
                f"  {s.label:44s} terms {hit / total:.2f} ({hit}/{total})  {kinds}  WER {w:.3f}  "
                f"RTF {res.seconds / audio:.3f}  CPU s/audio s {cpu_s / audio:.3f}  "
                f"est. idle RTF {est:.3f}  invented drugs {invented(res, clips, formulary)}  "
                f"drug fixes right {sum(ok for *_, ok in res.corrections)}/{len(res.corrections)}"
            )
    print(f"load average at end {load_after[0]:.1f} / {load_after[1]:.1f} / {load_after[2]:.1f}")
    if show_misses:
        for s in setups[1:]:
            res, _ = results[(s, "dev")]
            print(f"\ndev misses, {s.label}:")
            for hyp, clip in zip(res.hyps, splits["dev"], strict=True):
                h = norm(hyp)
                missed = [f"{t.kind}:{t.text}" for t in clip.terms if not found(t.text, h)]
                if missed:
                    print(f"  {clip.name}: missed {missed}\n      heard: {hyp}")
    if real_clips:
        real_speech_configs(setups, real_clips, formulary, normalizer)
    silence_configs(setups[1:], formulary)


def real_speech_configs(setups: list[Setup], clips: list, formulary, normalizer) -> None:
    """Word error rate on real speech (LibriSpeech + JFK) for each setting, with the hint of an
    empty visit (formulary only) where the setting has one."""
    import jiwer

    audio = sum(c.duration_s for c in clips)
    print(f"\nreal speech (LibriSpeech + JFK, {len(clips)} clips, {audio:.0f}s):")
    refs = [normalizer(c.reference) for c in clips]
    for s in setups:
        engine = s.engine()
        hint = SpeechContext(formulary=formulary, hint_chars=s.hint_chars).hotwords()
        hyps, cpu = [], 0.0
        for clip in clips:
            c0 = time.process_time()
            t = engine.transcribe_array(
                samples=clip.samples, hotwords=hint if s.hint_chars else None
            )
            if s.correct:
                scorer = engine.text_scorer(samples=clip.samples) if s.audio_check else None
                t = correct_transcript(
                    t, lexicon=formulary, threshold=DEFAULT_THRESHOLD, scorer=scorer
                )
            cpu += time.process_time() - c0
            hyps.append(normalizer(t.text) or "<empty>")
        print(f"  {s.label:44s} WER {jiwer.wer(refs, hyps):.4f}  CPU s/audio s {cpu / audio:.3f}")


def silence_configs(setups: list[Setup], formulary) -> None:
    silence_report(
        [(s.label, s.engine()) for s in setups],
        formulary,
        width=44,
    )
