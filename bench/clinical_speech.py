"""A clinical speech set made with espeak-ng: drugs, doses, vitals, allergens and durations.

Our own scripts (no evaluation set), rendered at bench time into a temporary folder: several
voices, speeds and noise levels. Two disjoint halves: ``dev`` (used to calibrate the correction
threshold and the hint budget) and ``held-out`` (other sentences, other voices, other drugs),
reported separately so that tuning on one cannot flatter the other.

Each clip is one speaker's turn, as the live recorder sends it, with the visit context a real
visit would have: the patient's intake medicines and allergies, and the reason for the visit.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000

# (kind, text): {drug}, {drug2}, {dose}, {bp}, {allergen}, {duration} are filled per clip.
DEV_SCRIPTS = [
    "I have been taking {drug} {dose} every morning for {duration}.",
    "My blood pressure this morning was {bp}, and I am allergic to {allergen}.",
    "Let us start {drug} {dose} once a day, and keep taking your {drug2}.",
    "I am allergic to {allergen}, it gives me a rash. I also take {drug}.",
    "The cough has lasted {duration}. I tried {drug} but it did not help.",
    "I will prescribe {drug} {dose} twice a day for {duration}.",
    "Your blood pressure today is {bp}. We should increase the {drug} to {dose}.",
    "Stop the {drug} for now and take {drug2} {dose} at night instead.",
]
HELD_OUT_SCRIPTS = [
    "The nurse measured {bp} when I came in. I am on {drug} and {drug2}.",
    "For {duration} I have had this pain, so my doctor gave me {drug} {dose}.",
    "Please take {drug} {dose} with food, and come back in {duration}.",
    "No {allergen} please, I reacted badly to it. I still use {drug} daily.",
    "We measured {bp} again. I would like to add {drug} {dose} in the evening.",
    "Keep going with the {drug2}, and we will try {drug} {dose} for {duration}.",
]
# Disjoint drug lists: the held-out half tests names the threshold was never tuned on. Every
# name is in the shipped formulary (consults/speech/data/formulary.txt), as a clinic's would be.
DEV_DRUGS = [
    "lisinopril", "doxycycline", "metformin", "atorvastatin", "amlodipine", "levothyroxine",
    "omeprazole", "sertraline", "gabapentin", "amoxicillin", "losartan", "prednisone",
    "montelukast", "escitalopram", "furosemide", "cephalexin",
]  # fmt: skip
HELD_OUT_DRUGS = [
    "metoprolol", "simvastatin", "azithromycin", "hydrochlorothiazide", "fluoxetine",
    "pantoprazole", "clopidogrel", "tamsulosin", "nitrofurantoin", "rosuvastatin",
    "trazodone", "meloxicam",
]  # fmt: skip
DOSES = [
    ("ten milligrams", "10 mg"), ("twenty milligrams", "20 mg"), ("five milligrams", "5 mg"),
    ("forty milligrams", "40 mg"), ("one hundred milligrams", "100 mg"),
    ("five hundred milligrams", "500 mg"), ("fifty micrograms", "50 mcg"),
    ("two hundred and fifty milligrams", "250 mg"), ("twenty five milligrams", "25 mg"),
]  # fmt: skip
BPS = [
    ("one twenty eight over eighty two", "128/82"), ("one forty over ninety", "140/90"),
    ("one thirty five over eighty five", "135/85"), ("one fifty two over ninety four", "152/94"),
    ("one eighteen over seventy six", "118/76"), ("one sixty over one hundred", "160/100"),
]  # fmt: skip
ALLERGENS = ["penicillin", "sulfa drugs", "peanuts", "latex", "codeine", "shellfish", "aspirin"]
DURATIONS = [
    ("three days", "3 days"), ("two weeks", "2 weeks"), ("ten days", "10 days"),
    ("five days", "5 days"), ("a month", "a month"), ("six weeks", "6 weeks"),
]  # fmt: skip
DEV_VOICES = ["en-us", "en-gb", "en-us+m3", "en-gb+f3", "en-us+f2", "en-029"]
HELD_OUT_VOICES = ["en-gb-x-rp", "en-us+m7", "en-gb-scotland+f4", "en-us-nyc"]
SPEEDS = [135, 150, 165, 175]
# Signal-to-noise ratios in dB; None is clean.
NOISE = [None, None, 25.0, 15.0]


@dataclass
class Term:
    kind: str  # drug, dose, vital, allergen, duration
    text: str  # the canonical written form the transcript should contain
    spoken: str


@dataclass
class Clip:
    name: str
    split: str
    reference: str  # the words spoken
    terms: list[Term]
    voice: str
    speed: int
    snr_db: float | None
    intake: tuple[str, ...] = ()  # what the visit's intake lists (medicines, allergies)
    reason: str = ""
    samples: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    @property
    def duration_s(self) -> float:
        return self.samples.size / SAMPLE_RATE


def _fill(script: str, rng: random.Random, drugs: list[str]) -> tuple[str, list[Term], list]:
    terms: list[Term] = []
    chosen_drugs = rng.sample(drugs, 2)
    values = {
        "drug": chosen_drugs[0],
        "drug2": chosen_drugs[1],
        "dose": rng.choice(DOSES),
        "bp": rng.choice(BPS),
        "allergen": rng.choice(ALLERGENS),
        "duration": rng.choice(DURATIONS),
    }
    kinds = {"drug": "drug", "drug2": "drug", "dose": "dose", "bp": "vital"}
    kinds |= {"allergen": "allergen", "duration": "duration"}

    def repl(m: re.Match[str]) -> str:
        key = m.group(1)
        value = values[key]
        spoken, written = value if isinstance(value, tuple) else (value, value)
        terms.append(Term(kind=kinds[key], text=written, spoken=spoken))
        return spoken

    text = re.sub(r"\{(\w+)\}", repl, script)
    return text, terms, chosen_drugs


def build(split: str, *, seed: int = 16) -> list[Clip]:
    """The clips of one split, text and metadata only (``render`` makes the audio)."""
    rng = random.Random(f"{seed}-{split}")
    scripts, voices, drugs = (
        (DEV_SCRIPTS, DEV_VOICES, DEV_DRUGS)
        if split == "dev"
        else (HELD_OUT_SCRIPTS, HELD_OUT_VOICES, HELD_OUT_DRUGS)
    )
    clips = []
    for i in range(len(scripts) * 3):
        script = scripts[i % len(scripts)]
        text, terms, chosen = _fill(script, rng, drugs)
        allergies = tuple(t.text for t in terms if t.kind == "allergen")
        # The intake lists the medicines the patient already takes: the first drug of a
        # "taking"/"I am on" sentence; a newly prescribed one is in the formulary only.
        current = (chosen[1],) if "{drug2}" in script else ()
        if re.search(r"I (?:have been taking|take|am on|still use|tried)", script):
            current = (*current, chosen[0])
        clips.append(
            Clip(
                name=f"{split}-{i:02d}",
                split=split,
                reference=text,
                terms=terms,
                voice=voices[i % len(voices)],
                speed=SPEEDS[(i // len(voices)) % len(SPEEDS)],
                snr_db=NOISE[i % len(NOISE)],
                intake=(*current, *allergies),
                reason=rng.choice(["cough", "blood pressure check", "medication review", "rash"]),
            )
        )
    return clips


def espeak(text: str, *, voice: str, speed: int, folder: Path) -> np.ndarray:
    """Render ``text`` with espeak-ng to float32 mono 16 kHz."""
    wav = folder / "clip.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text],
        check=True,
        capture_output=True,
    )
    resampled = folder / "clip16.wav"
    subprocess.run(
        ["sox", str(wav), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(resampled)],
        check=True,
        capture_output=True,
    )
    raw = np.frombuffer(resampled.read_bytes()[44:], dtype="<i2").astype(np.float32) / 32768
    pad = np.zeros(int(0.3 * SAMPLE_RATE), np.float32)
    return np.concatenate([pad, raw, pad])


def add_noise(samples: np.ndarray, snr_db: float | None, rng: np.random.Generator) -> np.ndarray:
    if snr_db is None:
        return samples
    power = float(np.mean(samples**2)) or 1e-8
    noise = rng.standard_normal(samples.size).astype(np.float32)
    # Pink-ish: a running mean tilts white noise towards the low frequencies of a room.
    noise = np.convolve(noise, np.ones(4) / 4, mode="same")
    noise *= np.sqrt(power / (10 ** (snr_db / 10)) / float(np.mean(noise**2)))
    return (samples + noise).astype(np.float32)


def render(clips: list[Clip]) -> list[Clip]:
    """Synthesize every clip's audio in a temporary folder (removed afterwards)."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        raise SystemExit("the clinical set needs espeak-ng and sox: apt-get install espeak-ng sox")
    rng = np.random.default_rng(16)
    folder = Path(tempfile.mkdtemp(prefix="clinical-speech-"))
    try:
        for clip in clips:
            clean = espeak(clip.reference, voice=clip.voice, speed=clip.speed, folder=folder)
            clip.samples = add_noise(clean, clip.snr_db, rng)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return clips


def clinical_set(*, split: str) -> list[Clip]:
    """The rendered clips of ``dev`` or ``held-out``."""
    return render(build(split))


if __name__ == "__main__":
    for split in ("dev", "held-out"):
        for clip in build(split):
            print(clip.name, clip.voice, clip.speed, clip.snr_db, clip.intake, clip.reference)
