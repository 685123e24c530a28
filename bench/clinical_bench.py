"""The clinical table of bench/transcription.py: term recall by kind, WER and RTF per setup.

Setups, on the same clips in one run: base as shipped before biasing; base with the visit's
hint (intake + formulary); base with the hint and lexicon correction (the default now);
tiny.en with both; and the reference openai-whisper decoder on base weights. Each on the dev
half (the correction bar was calibrated there) and the held-out half (other sentences, voices
and drugs), plus the real-speech WER and the silence/noise/tone clips with the full hint.
"""

from __future__ import annotations

import os
import re
import time
from collections import defaultdict
from dataclasses import dataclass

from bench.clinical_speech import Clip, clinical_set
from consults.notes.numbers import words_to_digits
from consults.speech import get_transcriber
from consults.speech.correct import DEFAULT_THRESHOLD, correct_transcript
from consults.speech.types import Transcript
from consults.speech.vocabulary import SpeechContext, load_formulary
from tests.speech.audio_helpers import noises

KINDS = ("drug", "dose", "vital", "allergen", "duration")
_UNIT_WORDS = {"mg": "milligrams", "mcg": "micrograms", "ml": "milliliters", "mmhg": ""}


def norm(text: str) -> str:
    """Lower case, units spelled out, "128/82" as "128 over 82", number words as digits."""
    text = text.lower().replace("/", " over ")
    text = re.sub(r"(\d)(mg|mcg|ml)\b", r"\1 \2", text)
    text = re.sub(r"[^a-z0-9.' ]+", " ", text)
    text = re.sub(r"\.(?!\d)", " ", text)
    words = [_UNIT_WORDS.get(w, w) for w in text.split()]
    return " ".join(words_to_digits(" ".join(w for w in words if w)).split())


def wer(refs: list[str], hyps: list[str]) -> float:
    errors = total = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        r, h = ref.split(), hyp.split()
        row = list(range(len(h) + 1))
        for i, rw in enumerate(r, 1):
            prev, row[0] = row[0], i
            for j, hw in enumerate(h, 1):
                prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (rw != hw))
        errors += row[-1]
        total += len(r)
    return errors / max(total, 1)


def found(term_text: str, hyp_norm: str) -> bool:
    key = norm(term_text.replace(" drugs", ""))
    return re.search(rf"(?<![\w.]){re.escape(key)}(?![\w.])", hyp_norm) is not None


@dataclass
class Result:
    hyps: list[str]
    seconds: float
    audio_s: float
    corrections: list[tuple[str, str, str, bool]]  # clip, heard, corrected, right?


def context_for(clip: Clip | None, formulary: tuple[str, ...]) -> SpeechContext:
    if clip is None:
        return SpeechContext(formulary=formulary)
    return SpeechContext(terms=clip.intake, reason=clip.reason, formulary=formulary)


def decode(model: str, clips, *, formulary, hint: bool, beam: int = 5) -> list[Transcript]:
    # The production default's encoder window (settings.SPEECH_ENCODER_WINDOW).
    t = get_transcriber(
        model=model, beam_size=beam, compute_type="int8", language="en", encoder_window="fit"
    )
    t.load()
    t.transcribe_array(samples=clips[0].samples)  # warm-up
    out = []
    for clip in clips:
        hotwords = context_for(clip, formulary).hotwords() if hint else None
        out.append(t.transcribe_array(samples=clip.samples, hotwords=hotwords))
    return out


def corrected(
    transcripts: list[Transcript], clips, *, formulary, threshold: float, model: str = "base"
) -> tuple[list[Transcript], float]:
    """Lexicon correction with the audio check (the model's ``text_scorer``), timed."""
    engine = get_transcriber(
        model=model, beam_size=5, compute_type="int8", language="en", encoder_window="fit"
    )
    started = time.perf_counter()
    out = []
    for transcript, clip in zip(transcripts, clips, strict=True):
        ctx = context_for(clip, formulary)
        out.append(
            correct_transcript(
                transcript,
                lexicon=ctx.lexicon,
                preferred=ctx.terms,
                threshold=threshold,
                scorer=engine.text_scorer(samples=clip.samples),
            )
        )
    return out, time.perf_counter() - started


def result_of(transcripts: list[Transcript], clips, extra_s: float = 0.0) -> Result:
    fixes = []
    for transcript, clip in zip(transcripts, clips, strict=True):
        # A right fix names a drug or allergen the clip's speaker said.
        wanted = {t.text.lower() for t in clip.terms if t.kind in ("drug", "allergen")}
        for segment in transcript.segments:
            for c in segment.corrections:
                if c.kind == "drug":
                    name = c.corrected.lower().strip(".,;:?!")
                    right = any(name == w or name.endswith(f" {w}") for w in wanted)
                    fixes.append((clip.name, c.heard, c.corrected, right))
    return Result(
        hyps=[t.text for t in transcripts],
        seconds=sum(t.processing_s for t in transcripts) + extra_s,
        audio_s=sum(c.duration_s for c in clips),
        corrections=fixes,
    )


def recall(result: Result, clips: list[Clip]) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for hyp, clip in zip(result.hyps, clips, strict=True):
        h = norm(hyp)
        for term in clip.terms:
            counts[term.kind][1] += 1
            counts[term.kind][0] += found(term.text, h)
    return {k: (v[0], v[1]) for k, v in counts.items()}


def invented(result: Result, clips: list[Clip], formulary: tuple[str, ...]) -> int:
    """Formulary names in the transcripts that the clips' speakers never said."""
    count = 0
    for hyp, clip in zip(result.hyps, clips, strict=True):
        said, heard = f" {norm(clip.reference)} ", f" {norm(hyp)} "
        count += sum(
            1 for name in formulary if f" {norm(name)} " in heard and f" {norm(name)} " not in said
        )
    return count


def row(label: str, result: Result, clips: list[Clip]) -> str:
    r = recall(result, clips)
    hit = sum(v[0] for v in r.values())
    total = sum(v[1] for v in r.values())
    kinds = "  ".join(f"{k} {r.get(k, (0, 0))[0]:>2}/{r.get(k, (0, 0))[1]:<2}" for k in KINDS)
    w = wer([norm(c.reference) for c in clips], [norm(h) or "<empty>" for h in result.hyps])
    precision = ""
    if result.corrections:
        right = sum(1 for *_, ok in result.corrections if ok)
        precision = f"  fixes {right}/{len(result.corrections)} right"
    return (
        f"  {label:34s} terms {hit / total:.2f} ({hit}/{total})  {kinds}  "
        f"WER {w:.3f}  RTF {result.seconds / result.audio_s:.3f}{precision}"
    )


def run_clinical(
    *, real_clips, reference, normalizer, calibrate: bool = False, show_text: bool = False
) -> None:
    formulary = load_formulary()
    print(
        f"cpu cores: {len(os.sched_getaffinity(0))}; load average {os.getloadavg()[0]:.1f} "
        "(the machine is shared with other work: RTF is wall time on a loaded box)"
    )
    splits = {name: clinical_set(split=name) for name in ("dev", "held-out")}
    for name, clips in splits.items():
        n_terms = sum(len(c.terms) for c in clips)
        print(
            f"clinical {name}: {len(clips)} clips, {sum(c.duration_s for c in clips):.0f}s, "
            f"{n_terms} terms; formulary {len(formulary)} names; correction bar "
            f"{DEFAULT_THRESHOLD}"
        )
    setups: dict[str, dict[str, Result]] = defaultdict(dict)
    decoded: dict[str, list[Transcript]] = {}
    for name, clips in splits.items():
        plain = decode("base", clips, formulary=formulary, hint=False)
        hinted = decode("base", clips, formulary=formulary, hint=True)
        decoded[name] = hinted
        fixed, fix_s = corrected(hinted, clips, formulary=formulary, threshold=DEFAULT_THRESHOLD)
        fixed_plain, fix_plain_s = corrected(
            plain, clips, formulary=formulary, threshold=DEFAULT_THRESHOLD
        )
        setups["base, as before (no hint)"][name] = result_of(plain, clips)
        setups["base + biasing"][name] = result_of(hinted, clips)
        setups["base + correction only"][name] = result_of(fixed_plain, clips, fix_plain_s)
        setups["base + biasing + correction *"][name] = result_of(fixed, clips, fix_s)
        tiny = decode("tiny.en", clips, formulary=formulary, hint=True)
        tiny_fixed, tiny_s = corrected(
            tiny, clips, formulary=formulary, threshold=DEFAULT_THRESHOLD, model="tiny.en"
        )
        setups["tiny.en + biasing + correction"][name] = result_of(tiny_fixed, clips, tiny_s)
    if reference is not None:
        try:
            ref = reference(
                model="base", beam_size=5, threads=len(os.sched_getaffinity(0)), language="en"
            )
        except ImportError as exc:
            print(f"reference openai-whisper not run: {exc} (pip install --no-deps openai-whisper)")
        else:
            for name, clips in splits.items():
                hyps, secs = [], 0.0
                for clip in clips:
                    text, seconds = ref(clip.samples)
                    hyps.append(text)
                    secs += seconds
                label = "openai-whisper base (reference) §"
                setups[label][name] = Result(hyps, secs, sum(c.duration_s for c in clips), [])
    for name, clips in splits.items():
        print(f"\nclinical {name}")
        for label, per_split in setups.items():
            if name in per_split:
                print(row(label, per_split[name], clips))
                if show_text:
                    for hyp in per_split[name].hyps:
                        print(f"      {hyp}")
    print("  * the default now.  § openai-whisper's own decoder on the base weights converted")
    print("    from the same CTranslate2 package (no openai .pt checkpoint ships offline).")
    for name in splits:
        wrong = [c for c in setups["base + biasing + correction *"][name].corrections if not c[3]]
        for clip_name, heard, fixed_to, _ in wrong:
            print(f"  wrong fix ({name}) {clip_name}: {heard!r} -> {fixed_to!r}")
    if calibrate:
        calibrate_threshold(decoded["dev"], splits["dev"], formulary)
    real_speech(real_clips, formulary, normalizer)
    silence(formulary)


def calibrate_threshold(hinted: list[Transcript], clips: list[Clip], formulary) -> None:
    print("\ncalibration on dev (base + biasing, then correction at each bar):")
    for threshold in (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
        fixed, _ = corrected(hinted, clips, formulary=formulary, threshold=threshold)
        res = result_of(fixed, clips)
        r = recall(res, clips)
        right = sum(1 for *_, ok in res.corrections if ok)
        print(
            f"  bar {threshold:.2f}: drug recall {r['drug'][0]}/{r['drug'][1]}  "
            f"corrections {len(res.corrections)}, right {right}"
        )


def real_speech(clips, formulary, normalizer) -> None:
    if not clips:
        return
    import jiwer

    print(f"\nreal speech (LibriSpeech + JFK, {sum(c.duration_s for c in clips):.0f}s):")
    t = get_transcriber(model="base", beam_size=5, compute_type="int8")
    hint = SpeechContext(formulary=formulary).hotwords()
    refs = [normalizer(c.reference) for c in clips]
    for label, hotwords, fix in (
        ("base, as before (no hint)", None, False),
        ("base + biasing + correction *", hint, True),
    ):
        hyps, secs = [], 0.0
        for clip in clips:
            r = t.transcribe_array(samples=clip.samples, hotwords=hotwords)
            if fix:
                started = time.perf_counter()
                r = correct_transcript(r, lexicon=formulary)
                secs += time.perf_counter() - started
            secs += r.processing_s
            hyps.append(normalizer(r.text) or "<empty>")
        audio = sum(c.duration_s for c in clips)
        print(f"  {label:34s} WER {jiwer.wer(refs, hyps):.4f}  RTF {secs / audio:.3f}")


def silence(formulary) -> None:
    silence_report(
        [
            (model, get_transcriber(model=model, beam_size=5, compute_type="int8"))
            for model in ("base", "tiny.en")
        ],
        formulary,
    )


def silence_report(transcribers: list[tuple[str, object]], formulary, width: int = 8) -> None:
    """Silence, noise and tones through each (label, transcriber), with the full hint: any text
    they (or the correction after them) produce is printed."""
    print("\nsilence, noise and tones (8 s each) with the full hint:")
    hint = SpeechContext(terms=("lisinopril", "penicillin"), formulary=formulary).hotwords()
    for label, t in transcribers:
        texts = {}
        for name, samples in noises().items():
            r = t.transcribe_array(samples=samples, hotwords=hint)
            texts[name] = correct_transcript(r, lexicon=formulary).text
        spoken = {k: v for k, v in texts.items() if v}
        print(f"  {label:{width}s} clips with any text: {len(spoken)}/{len(texts)} {spoken or ''}")
