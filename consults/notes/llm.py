"""Generative backend: a language model writes the narrative sections, the rules keep the facts.

Extract, then write, then verify:
1. the rules engine extracts medications, allergies, vitals and symptoms (the source of truth
   for every structured item of the note);
2. the model writes chief complaint, HPI, exam/results, assessment and plan section by section
   from the numbered transcript lines, with the extracted facts in the prompt, under a grammar
   that makes every sentence end with the line numbers it rests on;
3. the grounding check drops every sentence whose drug, number, allergen, side or negation its
   cited lines do not support, and keeps what it dropped for the review page.

The model runs in process through llama.cpp (``llama_cpp``, imported on first use) or on an
OpenAI-compatible server (``base_url``: llama.cpp server, vLLM, Ollama). A model that cannot load
or runs past the deadline gives way to the rules backend, with a notice in the note.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import re
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Protocol

from consults.notes.context import strip_tags
from consults.notes.engine import GroundedDrafter
from consults.notes.grounding import GENERATED, finds_nothing, ground_note, left_out
from consults.notes.meds import find_drug_spans
from consults.notes.numbers import numbers_in
from consults.notes.rules import rule_section
from consults.notes.types import SECTION_TITLES, DraftNote, NoteFacts, NoteItem, Utterance

logger = logging.getLogger(__name__)

ENGINE_VERSION = "llm-qwen2.5-coder-1.5b-q4_k_m-0.1"
NOTHING_TO_SUMMARIZE = "Nothing to summarize: the transcript has no spoken content."
PREFIX_KEEP_S = 6 * 3600  # a saved call prefix not used by then is deleted
_MIN_WORDS = 8  # fewer spoken words than this is a silent or failed recording, not a visit


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    title: str
    instruction: str
    max_tokens: int
    max_sentences: int
    max_chars: int = 300
    # How the first sentence may begin (none: any capital or digit).
    opening: tuple[str, ...] = ()


SECTIONS = (
    Section(
        "chief_complaint",
        "CHIEF COMPLAINT",
        "the reason for the visit in 2 to 6 words, as a physician writes it "
        "(for example: Right knee pain.).",
        32,
        1,
        60,
    ),
    # Written during the call once the examination begins (see LlmDrafter.prepare), or first
    # after hang-up.
    Section(
        "hpi",
        "HISTORY OF PRESENT ILLNESS",
        "a paragraph of 6 to 12 sentences of clinical prose about what the patient told: who the "
        "patient is and why they came, each problem's onset, course, severity and triggers, "
        "associated symptoms and symptoms denied, what was tried and how it worked, and the "
        "relevant history and medicines. Not the examination, the diagnosis or the plan.",
        320,
        12,
        # Left free, a 1.5B model opens with "Dr." or "Ms.", and the period ends the sentence.
        opening=("The patient ", "Mr. ", "Ms. ", "Mrs. "),
    ),
    Section(
        "objective",
        "PHYSICAL EXAMINATION AND RESULTS",
        "each examination finding and each test result, in a few words each (the body part or "
        "the test, and what was found). Not the diagnosis, the treatment or the plan.",
        110,
        6,
    ),
    Section(
        "assessment",
        "ASSESSMENT",
        "each diagnosis or problem the doctor named, one per line, in 2 to 10 words as a "
        "physician writes it. Not each symptom on its own line, and not the plan.",
        100,
        4,
    ),
    Section(
        "plan",
        "PLAN",
        "each decision the doctor made, in the third person as a physician writes a note, one "
        "per line: medicines with their doses, tests, referrals, advice and follow-up.",
        150,
        8,
    ),
)
CHIEF_COMPLAINT, HPI, EXAM, PLAN = SECTIONS[0], SECTIONS[1], SECTIONS[2], SECTIONS[4]
WRITTEN = tuple(s.key for s in SECTIONS)
# Written during the call once what they tell is over, so that after hang-up they are there at
# once: the reason for the visit and its story once the examination begins, the examination once
# the doctor moves on to the assessment and plan.
EARLY = (CHIEF_COMPLAINT, HPI, EXAM)
HISTORY = (CHIEF_COMPLAINT, HPI)  # what the patient told before the examination

# No example sentence here: a 1.5B model copies it, citations included, into every note.
SYSTEM = (
    "You are a medical scribe writing a physician's clinical note from a visit transcript. "
    "Each transcript line starts with its number in brackets. Write only what was said. "
    "Put each sentence on its own line and end it with the numbers, in square brackets, of the "
    "transcript lines that say it. "
    "Never add a symptom, finding, denial, drug, dose or number that those lines do not state. "
    "Keep left and right, yes and no, and increases and decreases exactly as said. "
    "Write as a physician writes a note: concise, in the third person (the patient, he, she), "
    "never about the doctor or the conversation, and not lists or labels."
)


class ModelError(RuntimeError):
    """The model could not be loaded or did not answer in time."""


class Generator(Protocol):
    """What the drafter needs from a model: chat completion under a grammar, and a tokenizer.

    ``prefill`` evaluates the start of a prompt ahead of time (during the call) so that the
    completion that later starts with the same text only evaluates what follows; a server
    keeps its own prompt cache and does nothing here.
    """

    name: str
    context_tokens: int

    def count_tokens(self, text: str) -> int: ...

    def prefill(self, *, messages: list[dict], through: str) -> int: ...

    def complete(
        self, *, messages: list[dict], grammar: str, max_tokens: int, deadline: float
    ) -> str: ...


# A callback for each finished section: (section key, grounded items, dropped sentences).
SectionCallback = Callable[[str, list[NoteItem], list[dict]], None]


def section_grammar(section: Section, *, allow_none: bool = True) -> str:
    """GBNF: one sentence per line, each ending with its cited line numbers; or "None."

    ``allow_none`` False leaves out "None.": a small model offered it takes it for a section
    whose lines are there (the examination of a visit where the doctor examined).

    Sentences are printable ASCII without brackets, and a period ends them unless a digit
    follows (2.5 mg), so that the model cannot run several sentences, or another script, into
    one citation.
    """
    # A bounded repeat becomes that many nested rules in llama.cpp: only the short sections.
    repeat = f"{{2,{section.max_chars}}}" if section.max_chars <= 80 else "+"
    rules = (
        f'sent ::= [A-Z0-9] (char | decimal | title){repeat} "." cite\n'
        "char ::= [\\x20-\\x2D\\x2F-\\x5A\\x5C\\x5E-\\x7E]\n"
        # A period inside a sentence only in a number (2.5 mg: not "1.1.1.") or a title.
        'decimal ::= [0-9] "." [0-9]\n'
        'title ::= ("Mr" | "Ms" | "Mrs" | "Dr") ". "\n'
        'cite ::= " [" num ("," " "? num){0,7} "]\\n"\n'
        "num ::= [0-9]{1,4}\n"
    )
    if section.max_sentences == 1:
        return "root ::= sent\n" + rules
    body = f"sent{{1,{section.max_sentences}}}"
    if section.opening:
        starts = " | ".join(json.dumps(o) for o in section.opening)
        rules += f'first ::= ({starts}) (char | decimal | title)+ "." cite\n'
        body = f"first sent{{0,{section.max_sentences - 1}}}"
    if allow_none:
        body = f'"None.\\n" | {body}'
    return f"root ::= {body}\n" + rules


_LABEL = re.compile(r"^[A-Z][A-Za-z -]{2,40}:\s+(?=\S)")
# A list number the model puts before a plan line ("3) Refill the inhalers."): not a number the
# transcript has to say.
_LIST_MARK = re.compile(r"^(?:\d{1,2}[).]|[-*\u2022])\s+(?=\S)")
# A sentence and its cited lines. Output cut by the token limit inside its citation ("Right
# ankle pain. [1, 2, 3,") keeps the numbers before the last comma: they are whole; one after it
# may be cut short, so none is read without the closing bracket.
_CITED = re.compile(
    r"^\s*(?:[-*•]\s*)?(?P<text>.*?)\s*\[(?P<lines>\d+(?:\s*,\s*\d+)*)(?:\]|\s*,)\s*$"
)


def parse_sentences(output: str) -> list[NoteItem]:
    """Model output lines as generated items; a line without line numbers cites nothing."""
    items = []
    seen = set()
    for raw in output.splitlines():
        m = _CITED.match(raw)
        text, lines = (m.group("text"), m.group("lines")) if m else (raw, "")
        evidence = sorted({int(n) for n in re.findall(r"\d+", lines)})
        # "Tests: chest x-ray." is a list label copied from the prompt, not prose.
        text = _LABEL.sub("", _LIST_MARK.sub("", text.strip()))
        text = _TWICE.sub(r"\1", text)
        text = _as_a_note(text)
        text = text[:1].upper() + text[1:]
        if text and text[-1] not in ".?!":
            text += "."
        # Small models repeat themselves, fill empty sections with "None.", copy the facts
        # list of their prompt ("Motrin, stopped.", "No symptoms reported.") and write the
        # goodbye as a plan.
        if (
            _is_empty(text)
            or text.lower() in seen
            or _FACTS_COPY.search(text)
            or _CONVERSATION.match(text)
        ):
            continue
        seen.add(text.lower())
        items.append(NoteItem(text, evidence, False, GENERATED, 0.8))
    return items


# A doctor's line copied as it was said: "I'm going to prescribe ...", "You can continue ..."
# (D2N085's plan); as a note writes it: "Prescribe ...", "Continue ...".
_SPOKEN_LEAD = re.compile(
    r"^(?:(?:so|okay|and|now|also)\s+)*(?:i'?m (?:also )?(?:going to|gon na)|i will|i'll|"
    r"we(?:'re| are) (?:also )?(?:going to|gon na)|we will|we'll|you can|you should|"
    r"i want you to|i'd like you to|i would like you to)\s+(?:also\s+)?(?=[a-z])",
    re.IGNORECASE,
)


def _as_a_note(text: str) -> str:
    """A sentence in the first or second person of the conversation, in a note's words: the
    lead goes, and "you" is the patient."""
    lead = _SPOKEN_LEAD.match(text)
    if lead is None:
        return text
    rest = re.sub(r"\byour\b", "the patient's", text[lead.end() :], flags=re.IGNORECASE)
    rest = re.sub(r"\byou\b(?!')", "the patient", rest, flags=re.IGNORECASE)
    return rest[:1].upper() + rest[1:]


# The same words twice over ("a slight cough and a slight cough"): once. Two words at least,
# so that "more and more" stays.
_TWICE = re.compile(r"\b(\w+(?: \w+){1,5}),? and \1\b", re.IGNORECASE)

# A lone title ("Ms.") is a sentence the grammar's period cut short; a lone "Yes." is an answer
# copied from the transcript, no finding.
_EMPTY = frozenset(
    {"", "none", "n/a", "not stated", "none stated", "mr", "ms", "mrs", "dr"}
    | {"yes", "no", "okay", "ok", "right", "sure", "correct", "yeah"}
)


def _is_empty(text: str) -> bool:
    return text.rstrip(".").strip().lower() in _EMPTY


# The prompt's facts list copied as a sentence: "Metformin 500 mg twice daily, current.",
# "Medications started.", "No symptoms denied."
_FACTS_COPY = re.compile(
    r",\s*(?:current|stopped|started|continued|historical)\W*$|"
    r"^(?:no )?(?:symptoms|medications|allergies|vitals)(?: (?:reported|denied|stated|started|"
    r"stopped|continued|noted))?\W*$|"
    # "Gloria's allergies were none stated.", "Vital signs were not stated." (D2N063)
    r"\b(?:none|not) stated\W*$",
    re.I,
)
# The end of the conversation written as a decision: "Thank the patient and the doctor.",
# "Document the visit.", "Good-bye."
_CONVERSATION = re.compile(
    r"^(?:say )?good-?bye\b|^thank(?:s| you| the)\b|^(?:document|end)s? the (?:visit|call)\b",
    re.I,
)
# Words that do not make one sentence say more than another ("Prescribe meloxicam 15 mg daily."
# says what "Meloxicam 15 mg daily." says).
_FILLER_WORDS = (
    "the a an and or of to for in on with will be is are was were has have had patient she he "
    "they her his their prescribe prescribed start started recommend recommended continue "
    "order ordered schedule scheduled plan also"
)
_FILLER = frozenset(_FILLER_WORDS.split())


def _words(text: str) -> frozenset[str]:
    """The words that carry a sentence, their endings cut ("encouraged", "encourage")."""
    return frozenset(
        re.sub(r"(?:ing|ed|es|s)$", "", w).rstrip("e")
        for w in re.findall(r"[a-z0-9.']+", text.lower().rstrip("."))
        if w not in _FILLER
    )


_DENIAL_WORDS = frozenset({"no", "not", "n't", "denies", "denied", "without", "never", "none"})


def _same_claim(a: frozenset[str], b: frozenset[str]) -> bool:
    """One sentence's words hold the other's, and both deny or both do not ("No chest pain."
    does not say what "Chest pain." says)."""
    return (a <= b or b <= a) and _denies(a) == _denies(b)


def _denies(words: frozenset[str]) -> bool:
    return any(w in _DENIAL_WORDS or w.endswith("n't") for w in words)


def without_repeats(items: list[NoteItem]) -> list[NoteItem]:
    """Written sentences minus those that another one already says (its words are a subset of
    the other's, with the same polarity): the fuller of the two is kept, where the first one
    stood."""
    kept: list[NoteItem] = []
    for item in items:
        words = _words(item.text)
        if item.kind != GENERATED or len(words) < 2:
            kept.append(item)
            continue
        same = next(
            (
                n
                for n, k in enumerate(kept)
                if k.kind == GENERATED and _same_claim(words, _words(k.text))
            ),
            None,
        )
        if same is None:
            kept.append(item)
        elif len(words) > len(_words(kept[same].text)):
            kept[same] = item
    return kept


_REPEATS = 3  # a run of words said this many times over in one line is a loop


def _stuck(text: str) -> bool:
    """True when the line being written goes round in circles ("400 mg, 300 mg, 400 mg, ...")."""
    words = text.rsplit("\n", 1)[-1].split()
    for size in range(2, 9):
        tail = words[-size:]
        if len(words) >= size * _REPEATS and all(
            words[-size * k - size : len(words) - size * k] == tail for k in range(1, _REPEATS)
        ):
            return True
    return False


def _looping(text: str) -> bool:
    """True once the last finished line repeats an earlier one or says "None." again."""
    lines = [
        _LIST_MARK.sub("", _CITED.sub(r"\g<text>", line).strip()).lower()
        for line in text.splitlines()
    ]
    if not text.endswith("\n") or len(lines) < 2:
        return False
    return lines[-1] in lines[:-1] or (_is_empty(lines[-1]) and _is_empty(lines[0]))


def numbered_lines(utterances: list[Utterance]) -> list[str]:
    """The transcript as the model reads it: one "[index] Speaker: text" per spoken line."""
    out = []
    for u in utterances:
        text = strip_tags(u.text).strip()
        if text:
            out.append(f"[{u.index}] {u.speaker.replace('_', ' ').capitalize()}: {text}")
    return out


_EXAM_CUE = re.compile(
    r"\b(?:physical exam\w*|(?:examine|look at|feel|listen to) (?:you|your|the)\b"
    r"(?! in a (?:second|minute|bit)| later)|(?:start|do|begin) (?:my|the|a|your) (?:quick )?"
    r"exam\w*|take a (?:quick )?(?:look|listen)|on (?:your |my )?(?:\w+ )?exam\w*|vital signs|"
    r"your vitals)\b",
    re.IGNORECASE,
)
_HISTORY_LINES = 6  # spoken lines before an examination can end the history
# A section written during the call with fewer sentences is written again (an HPI the 1.5B
# model cut short at "Ms.").
_EARLY_MIN_SENTENCES = {CHIEF_COMPLAINT.key: 1, HPI.key: 2, EXAM.key: 1}
_EARLY_TRIES = 4  # times the early sections are written during one call at most


def _reads_facts(section: Section) -> bool:
    """Whether a section's prompt carries the facts: the history's only. The others are written
    from the lines alone: given the facts list last before the request, the 1.5B model copied it
    as the plan ("Motrin, stopped.", "Symptoms denied: weight gain.") and the examination, and
    wrote "Medication started." as an assessment (D2N061, D2N062, D2N064). Without it, the
    chief complaint's prompt at hang-up also adds only the newest lines to what the call read."""
    return section is HPI


def _facts_for(section: Section, facts_text: str) -> str:
    """The facts a section's prompt carries (`_reads_facts`)."""
    return facts_text if _reads_facts(section) else ""


def _usable(section: Section, output: str | None) -> list[NoteItem] | None:
    """The sentences of a section written during the call, or None when it was cut short."""
    items = parse_sentences(output or "")
    return items if len(items) >= _EARLY_MIN_SENTENCES[section.key] else None


@dataclass(slots=True)
class _Early:
    """What the model wrote during one visit's call: the numbered lines it was written from,
    its output per section key, and how many times it tried."""

    lines: list[str]
    outputs: dict[str, str]
    tries: int = 0

    def usable(self, section: Section) -> list[NoteItem] | None:
        return _usable(section, self.outputs.get(section.key)) if section in EARLY else None

    def without_stale(self, utterances: list[Utterance]) -> _Early:
        """What still holds for the whole transcript: an examination written during the call is
        written again when the doctor examined or gave a result after it was written."""
        seen = re.match(r"\[(\d+)\]", self.lines[-1]) if self.lines else None
        last = int(seen.group(1)) if seen else -1
        if not any(_examines(u) for u in utterances if u.index > last):
            return self
        outputs = {k: v for k, v in self.outputs.items() if k != EXAM.key}
        return _Early(self.lines, outputs, self.tries)


def _examines(u: Utterance) -> bool:
    """A doctor line that examines or gives a result."""
    return u.speaker == "doctor" and bool(
        _EXAM_CUE.search(strip_tags(u.text)) or rule_section(utterance=u) == "objective"
    )


def exam_start(utterances: list[Utterance]) -> int | None:
    """Index of the doctor's first examination line (or result) after some history, or None.

    Past it the history is told: the HPI can be written while the call goes on. The
    examination section of a visit that has such a line is never "None".
    """
    for position, u in enumerate(utterances):
        if position >= _HISTORY_LINES and _examines(u):
            return u.index
    return None


_PLAN_CUE = re.compile(
    r"\b(?:(?:my|the) impression|assessment|(?:the|my|our) plan|diagnos[ie]s|"
    r"(?:first|second|third|next|other) (?:problem|issue)|for (?:your|the) \w+ (?:problem|issue)|"
    r"i(?:'m| am) (?:gon na|going to) (?:order|prescribe|start|refer|send|recommend|put you)|"
    r"i(?:'d| would) like (?:you )?to (?:order|start|prescribe|refer|get)|"
    r"i want (?:you )?to (?:order|start|prescribe|refer))\b",
    re.IGNORECASE,
)


def _told(section: Section, utterances: list[Utterance], *, examined: int) -> bool:
    """Whether what ``section`` writes about has been said in full, as far as the call shows,
    once the examination began at line ``examined`` (`exam_start`): the history then, the
    examination once the doctor moved on to the impression and plan (often in the same turn as
    the findings)."""
    if section is not EXAM:
        return True
    return any(
        u.index >= examined
        and u.speaker == "doctor"
        and (
            _PLAN_CUE.search(strip_tags(u.text))
            or rule_section(utterance=u) in {"assessment", "plan"}
        )
        for u in utterances
    )


def facts_block(facts: NoteFacts) -> str:
    """The extracted facts with their lines, for the prompt (the model must not contradict them)."""

    def at(evidence: tuple[int, ...]) -> str:
        return f" [{', '.join(map(str, evidence))}]"

    meds = [
        " ".join(filter(None, (m.name, m.dose, m.route, m.frequency))) + f", {m.status}"
        for m in facts.medications
    ]
    meds = [t + at(m.evidence) for t, m in zip(meds, facts.medications, strict=True)]
    allergies = [
        a.substance + (f" ({a.reaction})" if a.reaction else "") + at(a.evidence)
        for a in facts.allergies
    ]
    if facts.no_known_allergies:
        allergies.append("no known allergies" + at(facts.no_known_allergies))
    vitals = [f"{v.kind.replace('_', ' ')} {v.value}{at(v.evidence)}" for v in facts.vitals]
    mine = [f for f in facts.findings if f.experiencer == "patient"]
    reported = [f.name + at(f.evidence) for f in mine if not f.negated]
    denied = [f.name + at(f.evidence) for f in mine if f.negated]
    rows = (
        ("Medications", meds),
        ("Allergies", allergies),
        ("Vitals", vitals),
        ("Symptoms reported", reported),
        ("Symptoms denied", denied),
    )
    return "\n".join(f"{label}: {'; '.join(values) or 'none stated'}" for label, values in rows)


def chunk_lines(lines: list[str], *, budget: int, count_tokens) -> list[list[str]]:
    """Consecutive lines in chunks of at most `budget` tokens; every line lands in one chunk."""
    chunks: list[list[str]] = [[]]
    used = 0
    for line in lines:
        cost = count_tokens(line) + 1
        if chunks[-1] and used + cost > budget:
            chunks.append([])
            used = 0
        chunks[-1].append(line)
        used += cost
    return chunks


class LlmDrafter:
    """Rules extract, a language model writes the narrative sections, the grounding check verifies.

    Options come from settings (NOTES_LLM_*): ``model_path`` a clinic's own GGUF instead of the
    packaged model, ``base_url`` an OpenAI-compatible server instead of an in-process model.
    """

    def __init__(
        self,
        *,
        model_path: str | None = None,
        base_url: str | None = None,
        api_model: str = "",
        timeout_s: float = 150.0,
        threads: int = 0,
        context_tokens: int = 8192,
        cache_dir: str | None = None,
        generator: Generator | None = None,
    ) -> None:
        self._model_path = model_path or None
        self._base_url = base_url or None
        self._api_model = api_model
        self._timeout_s = timeout_s
        self._threads = threads
        self._context_tokens = context_tokens
        self._cache_dir = cache_dir
        self._generator = generator
        self._load_error: str | None = None
        if generator is not None:
            self.engine_version = f"llm-{generator.name}"
        elif self._base_url:
            self.engine_version = f"llm-server-{api_model or 'default'}"
        elif self._model_path:
            self.engine_version = f"llm-{Path(self._model_path).stem}"
        else:
            self.engine_version = ENGINE_VERSION
        self._rules = GroundedDrafter()
        self._extractor = GroundedDrafter(use_model=False)
        # (section, seconds since the call began) of the last draft, for the bench.
        self.last_timings: list[tuple[str, float]] = []
        # The sections written during the call, per visit key. Kept on disk too (next to the
        # prefix) for another worker.
        self._early: dict[str | None, _Early] = {}
        # Whether the last draft's HPI was the one written during the call (for the bench).
        self.last_hpi_early = False

    def generator(self) -> Generator:
        """The model, loaded on first use and kept for the life of the process."""
        if self._generator is None:
            if self._load_error is not None:
                raise ModelError(self._load_error)
            try:
                if self._base_url:
                    self._generator = OpenAICompatible(
                        base_url=self._base_url,
                        model=self._api_model,
                        context_tokens=self._context_tokens,
                    )
                else:
                    self._generator = LocalLlama(
                        model_path=self._model_path,
                        cache_dir=self._cache_dir,
                        threads=self._threads,
                        context_tokens=self._context_tokens,
                    )
            except Exception as exc:
                # Remembered, so that every later note falls back at once instead of retrying
                # a load that failed.
                self._load_error = f"{type(exc).__name__}: {exc}"[:300]
                raise ModelError(self._load_error) from exc
        return self._generator

    def _prefix_file(self, key: str | None) -> Path | None:
        """Where a visit's evaluated prompt is kept between the call's steps and the draft, so
        that whichever worker process drafts goes on from it (removed once the note is drafted)."""
        if not key or self._cache_dir is None:
            return None
        folder = Path(self._cache_dir) / "note-prefixes"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # A consult whose note was never drafted here (a crash, another machine drafted it)
        # leaves its prefix behind: it encodes a transcript, so it goes after a few hours.
        for old in folder.iterdir():
            try:
                if time.time() - old.stat().st_mtime > PREFIX_KEEP_S:
                    old.unlink(missing_ok=True)
            except OSError:
                pass
        return folder / f"{re.sub(r'[^A-Za-z0-9_-]', '_', key)}.kv"

    def prepare(self, *, utterances: list[Utterance], key: str | None = None) -> int:
        """During the call: evaluate the prompt's stable start (instructions and transcript so far).

        The transcript only grows, and every section's prompt starts with it, so the model's
        cache keeps what this evaluated; at hang-up only the lines since, the extracted facts and
        the sections themselves remain. Returns the prompt tokens evaluated now (0 when the
        model is a server, which keeps its own cache, or the transcript outgrew the context).
        """
        lines = numbered_lines(utterances)
        if not lines:
            return 0
        model = self.generator()
        if hasattr(model, "pace"):
            model.pace(waited_for=False)
        chunks = chunk_lines(
            lines, budget=self._line_budget(model, ""), count_tokens=model.count_tokens
        )
        messages = self._messages(chunks[0], part="", facts_text="", section=SECTIONS[0])
        saved = self._prefix_file(key)
        if saved is not None and hasattr(model, "load_prefix"):
            model.load_prefix(saved, messages=messages)
        evaluated = model.prefill(messages=messages, through=chunks[0][-1])
        if saved is not None and hasattr(model, "save_prefix"):
            model.save_prefix(saved)
        examined = exam_start(utterances)
        if len(chunks) == 1 and examined is not None:
            early = self._early_state(key, lines) or _Early(lines=[], outputs={})
            early = early.without_stale(utterances)
            # One cut short (a 1.5B model sometimes stops at "Ms.") is tried again with the
            # lines said since, a few times, rather than after hang-up.
            missing = [
                s
                for s in EARLY
                if early.usable(s) is None and _told(s, utterances, examined=examined)
            ]
            if missing and early.tries < _EARLY_TRIES and len(lines) > len(early.lines):
                self._write_early(
                    model,
                    utterances=utterances,
                    lines=lines,
                    key=key,
                    early=early,
                    write=missing,
                    examined=examined,
                )
        return evaluated

    def _early_file(self, key: str | None) -> Path | None:
        saved = self._prefix_file(key)
        return saved.with_suffix(".hpi.json") if saved is not None else None

    def _early_state(self, key: str | None, lines: list[str]) -> _Early | None:
        """What was written during this visit's call, if it was written from these lines' start.

        The transcript only grows, so a section written from an earlier state of it cites the
        same line numbers; one written from another visit's lines is not this visit's.
        """
        early = self._early.get(key)
        path = self._early_file(key)
        if early is None and path is not None and path.exists():
            try:
                saved = json.loads(path.read_text())
                outputs = {str(k): str(v) for k, v in dict(saved["outputs"]).items()}
                early = _Early(list(saved["lines"]), outputs, int(saved.get("tries", 0)))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                early = None
        if early is None or early.lines != lines[: len(early.lines)]:
            return None
        return early

    def _write_early(
        self,
        model: Generator,
        *,
        utterances: list[Utterance],
        lines: list[str],
        key: str | None,
        early: _Early,
        write: list[Section],
        examined: int,
    ) -> None:
        """Write the early sections in ``write`` (those not yet written in full) now that what
        they tell is over (`_told`): after hang-up only the other sections remain. The history's
        from the lines before the examination (``examined``): given the lines after it too, the
        1.5B model put the diagnosis and the treatment in the HPI (D2N064)."""
        outputs = dict(early.outputs)
        for section in write:
            told, facts_text = (
                self._history(utterances, before=examined, section=section)
                if section in HISTORY
                else (lines, "")
            )
            outputs[section.key] = model.complete(
                messages=self._messages(told, part="", facts_text=facts_text, section=section),
                # Written once the doctor examined: the examination is never "None".
                grammar=section_grammar(section, allow_none=section is not EXAM),
                max_tokens=section.max_tokens,
                deadline=time.monotonic() + self._timeout_s,
            )
        written = _Early(lines, outputs, early.tries + 1)
        self._early[key] = written
        path = self._early_file(key)
        if path is not None:
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump({"lines": lines, "outputs": outputs, "tries": written.tries}, fh)
            os.replace(tmp, path)

    def draft(
        self,
        *,
        utterances: list[Utterance],
        on_section: SectionCallback | None = None,
        key: str | None = None,
    ) -> DraftNote:
        """Draft a grounded SOAP note; the rules backend writes it when the model cannot.

        ``on_section`` hears each section as soon as it is written and grounded: first the
        structured sections the rules extract (medications, allergies, symptoms, vitals), then
        the model's sections in note order, so a review page can show them while the rest is
        written.
        """
        spoken = sum(len(strip_tags(u.text).split()) for u in utterances)
        if spoken < _MIN_WORDS:
            sections = {key: [] for key in SECTION_TITLES}
            return DraftNote(sections, NoteFacts(), self.engine_version, [NOTHING_TO_SUMMARIZE])
        started = time.monotonic()
        self.last_timings = []
        extracted = self._extractor.draft(utterances=utterances)
        # Structured items (medications, allergies, vitals, symptoms) stay the rules' own.
        kept = {
            key: [
                i
                for i in extracted.sections.get(key, [])
                if i.kind not in {"narrative", "chief_complaint"}
            ]
            for key in SECTION_TITLES
        }
        if on_section is not None:
            # Not `key`: that is the visit's, which finds what the call prepared.
            for name in SECTION_TITLES:
                if name not in WRITTEN:
                    on_section(name, kept[name], [])
        self.last_timings.append(("facts", time.monotonic() - started))
        written: dict[str, list[NoteItem]] = {}
        dropped: list[dict] = []
        notices: list[str] = []

        def finished(key: str, items: list[NoteItem]) -> None:
            items, lost = _ground_section(key, items + kept[key], utterances)
            if key == "chief_complaint" and not items:
                # The model's chief complaint did not stand: the rules' one, marked for review.
                items = extracted.sections.get(key, [])
            written[key] = items
            dropped.extend(lost)
            self.last_timings.append((key, time.monotonic() - started))
            if on_section is not None:
                on_section(key, items, lost)

        try:
            self._write(
                utterances=utterances,
                facts=extracted.facts,
                finished=finished,
                notices=notices,
                started=started,
                saved=self._prefix_file(key),
                early=self._take_early(key, utterances),
            )
        except Exception as exc:
            logger.warning("note model stopped: %s", type(exc).__name__)
            rules = self._rules.draft(utterances=utterances)
            missing = [s for s in SECTIONS if s.key not in written]
            if not written:
                rules.notices.append(
                    f"The language model could not write this draft ({_reason(exc)}); "
                    "the rules engine drafted it instead."
                )
                if on_section is not None:
                    for name in WRITTEN:
                        on_section(name, rules.sections.get(name, []), [])
                return rules
            # The sections the model finished stay; the rules write the others.
            notices.append(
                f"The language model stopped ({_reason(exc)}) before "
                + ", ".join(s.title.lower() for s in missing)
                + "; the rules engine drafted those sections."
            )
            for section in missing:
                finished(
                    section.key,
                    [
                        i
                        for i in rules.sections.get(section.key, [])
                        if i.kind in {"narrative", "chief_complaint"}
                    ],
                )
        sections = {key: written.get(key, kept[key]) for key in SECTION_TITLES}
        note = DraftNote(sections, extracted.facts, self.engine_version, notices, dropped)
        grounded, _ = ground_note(note=note, utterances=utterances)
        return grounded

    def _take_early(self, key: str | None, utterances: list[Utterance]) -> _Early | None:
        """The sections written during the call that still hold, forgotten here (memory and
        disk) once taken."""
        early = self._early_state(key, numbered_lines(utterances))
        self._early.pop(key, None)
        self.last_hpi_early = False
        path = self._early_file(key)
        if path is not None:
            path.unlink(missing_ok=True)
        return early.without_stale(utterances) if early is not None else None

    def _line_budget(self, model: Generator, facts_text: str) -> int:
        """Tokens left for transcript lines once instructions, facts and an answer fit."""
        fixed = model.count_tokens(SYSTEM + facts_text) + 200
        return model.context_tokens - fixed - max(s.max_tokens for s in SECTIONS)

    @staticmethod
    def _messages(lines: list[str], *, part: str, facts_text: str, section: Section) -> list[dict]:
        """One section's prompt: instructions, the transcript, then facts and the section's ask.

        The transcript comes first and the per-section request last, so that every section of
        a note (and the work done during the call) shares the longest possible prompt prefix.
        """
        return [
            {"role": "system", "content": SYSTEM},
            {
                "role": "user",
                "content": (
                    f"Transcript{part}:\n"
                    + "\n".join(lines)
                    + (
                        "\n\nFacts extracted from the transcript (trust them, do not list "
                        f"them):\n{facts_text}"
                        if facts_text
                        else ""
                    )
                    + f"\n\nWrite the {section.title} section: {section.instruction}"
                ),
            },
        ]

    def _write(
        self,
        *,
        utterances: list[Utterance],
        facts: NoteFacts,
        finished: Callable[[str, list[NoteItem]], None],
        notices: list[str],
        started: float,
        saved: Path | None = None,
        early: _Early | None = None,
    ) -> None:
        """Write the sections in note order, handing each to `finished` once it is complete."""
        deadline = started + self._timeout_s
        model = self.generator()
        if hasattr(model, "pace"):
            model.pace(waited_for=True)
        facts_text = facts_block(facts)
        lines = numbered_lines(utterances)
        budget = self._line_budget(model, facts_text)
        chunks = chunk_lines(lines, budget=budget, count_tokens=model.count_tokens)
        if saved is not None:
            # The call's work, done in another worker process, is taken over; then forgotten.
            if hasattr(model, "load_prefix"):
                first = self._messages(chunks[0], part="", facts_text="", section=SECTIONS[0])
                model.load_prefix(saved, messages=first)
            saved.unlink(missing_ok=True)
        if len(chunks) > 1:
            notices.append(
                f"The transcript is longer than the model's context; it was written in "
                f"{len(chunks)} consecutive parts, every line included."
            )
        parts: dict[str, list[NoteItem]] = {s.key: [] for s in SECTIONS}
        started_exam = exam_start(utterances)
        examined = started_exam is not None
        # The history's sections not written during the call are written here from the lines
        # before the examination, as the call would have: the call's prompt has read those, so
        # they come first within seconds even when the examination and plan are one long final
        # line the model has yet to read (D2N060: 612 words, its chief complaint 12.8 s after
        # hang-up when written from the whole transcript).
        history_before = started_exam if len(chunks) == 1 else None
        for number, chunk in enumerate(chunks, start=1):
            part = f" (part {number} of {len(chunks)})" if len(chunks) > 1 else ""
            for section in SECTIONS:
                if section.key == "chief_complaint" and number > 1:
                    continue
                facts_here = _facts_for(section, facts_text)
                # A section the model cut short during the call is written again now.
                ready = early.usable(section) if early is not None and len(chunks) == 1 else None
                if section is HPI:
                    self.last_hpi_early = self.last_hpi_early or ready is not None
                if ready is not None:
                    parts[section.key] += ready
                    finished(section.key, parts[section.key])
                    continue
                if history_before is not None and section in HISTORY:
                    chunk_here, facts_here = self._history(
                        utterances, before=history_before, section=section
                    )
                else:
                    chunk_here = chunk
                ask = partial(
                    self._ask,
                    model,
                    chunk=chunk_here,
                    part=part,
                    section=section,
                    deadline=deadline,
                )
                written = ask(facts_text=facts_here, examined=examined)
                if (
                    section is PLAN
                    and len(chunks) == 1
                    and not _ground_section(section.key, written, utterances)[0]
                ):
                    # Nothing of the plan stood (D2N063 wrote the history again): once more,
                    # with the facts list, which the model otherwise copies into the plan.
                    written = ask(facts_text=facts_text, examined=examined)
                parts[section.key] += written
                if number == len(chunks) or section.key == "chief_complaint":
                    finished(section.key, parts[section.key])

    def _history(
        self, utterances: list[Utterance], *, before: int, section: Section
    ) -> tuple[list[str], str]:
        """What a section that tells the history is written from: the numbered lines said before
        line ``before`` (the examination's start) and, if it reads facts (`_reads_facts`), the
        facts they state. Asked only for a section still to be written: the rules' extraction
        is not run at hang-up for sections the call wrote."""
        told = [u for u in utterances if u.index < before]
        facts = (
            facts_block(self._extractor.draft(utterances=told).facts)
            if _reads_facts(section)
            else ""
        )
        return numbered_lines(told), facts

    def _ask(
        self,
        model: Generator,
        *,
        chunk: list[str],
        part: str,
        section: Section,
        facts_text: str,
        examined: bool,
        deadline: float,
    ) -> list[NoteItem]:
        """One section written from a part of the transcript, as sentences."""
        output = model.complete(
            messages=self._messages(chunk, part=part, facts_text=facts_text, section=section),
            grammar=section_grammar(section, allow_none=section is not EXAM or not examined),
            max_tokens=section.max_tokens,
            deadline=deadline,
        )
        return parse_sentences(output)


def _ground_section(
    key: str, items: list[NoteItem], utterances: list[Utterance]
) -> tuple[list[NoteItem], list[dict]]:
    """One section through the grounding check: what stays, and what was dropped and why."""
    if key == CHIEF_COMPLAINT.key:
        items = [_uncut(i) for i in items]
    placed, misplaced = _placed(key, _without_unsaid_ages(items, utterances), utterances)
    note = DraftNote({key: placed}, NoteFacts(), "", dropped=misplaced)
    grounded, _ = ground_note(note=note, utterances=utterances)
    return without_repeats(grounded.sections[key]), grounded.dropped


_COMPLAINTS = 3  # list items a chief complaint keeps


def _uncut(item: NoteItem) -> NoteItem:
    """A chief complaint as a physician writes it: the grammar's length cut a list in a word
    ("Fatigue, bloating, chest pain, cough, slightd.") and the 1.5B model lists every symptom,
    some twice ("Abdominal pain, nausea, vomiting, diarrhea, abdominal pain, t.", D2N062): its
    first whole items, each once, at most `_COMPLAINTS`."""
    text = item.text.rstrip(".")
    if item.kind != GENERATED or "," not in text:
        return item
    parts = [p.strip() for p in text.split(",")]
    if len(text) >= CHIEF_COMPLAINT.max_chars:
        parts = parts[:-1]
    kept: list[str] = []
    seen: set[str] = set()
    for part in parts:
        if part and part.lower() not in seen:
            seen.add(part.lower())
            kept.append(part)
    return replace(item, text=", ".join(kept[:_COMPLAINTS]) + ".")


_AGE = re.compile(r"\b(?:(?P<article>an?) )?(?P<age>\d{1,3})[- ]years?[- ]old (?P<next>\w)", re.I)


# Where a visit says an age: "eighty years old", "i'm forty two", "aged 60", "turned fifty".
_SAID_AGE = re.compile(
    r"((?:[\w-]+ ){0,2}[\w-]+?)[- ]years?[- ]old\b|"
    r"\b(?:i'?m|i am|aged?|turn(?:ed|ing|s)?)\s+((?:[\w-]+ ){0,2}[\w-]+)",
    re.I,
)


def said_ages(utterances: list[Utterance]) -> set[str]:
    """The numbers a visit says as an age (digit strings)."""
    return {
        n
        for u in utterances
        for m in _SAID_AGE.finditer(strip_tags(u.text))
        for n in numbers_in(m.group(1) or m.group(2))
    }


def _without_unsaid_ages(items: list[NoteItem], utterances: list[Utterance]) -> list[NoteItem]:
    """A written sentence loses an age the visit never says as an age ("The patient is Anna, a
    25-year-old female who ..." -> "..., a female who ..."): a 1.5B model invents one for the
    opening sentence of the history, which would otherwise drop the whole sentence, or takes
    another number for it (D2N060: "a 16-year-old girl", from the doctor's daughter who "is
    almost sixteen")."""
    said: set[str] | None = None
    out = []
    for item in items:
        if item.kind == GENERATED and _AGE.search(item.text):
            if said is None:
                said = said_ages(utterances)

            def unsaid(m: re.Match[str], said: set[str] = said) -> str:
                if m.group("age") in said:
                    return m.group(0)
                nxt = m.group("next")
                if not m.group("article"):
                    return nxt
                return ("an " if nxt.lower() in "aeiou" else "a ") + nxt

            item = replace(item, text=_AGE.sub(unsaid, item.text))
        out.append(item)
    return out


def _placed(
    key: str, items: list[NoteItem], utterances: list[Utterance]
) -> tuple[list[NoteItem], list[dict]]:
    """What a section holds that belongs elsewhere, left out with why: an assessment line that
    is only a decision of the plan ("Surgery recommended."), a plan sentence citing only the
    history (`_decided`), and an examination sentence that
    cites only what was said once the doctor moved on to the plan ("Applied to stabilize
    ankle." citing the air cast line, or the patient's "it's alright" after it). A line that
    reports an examination or a result counts wherever it is said."""
    if key == "assessment":
        kept, dropped = _sort_out(
            key,
            items,
            lambda i: bool(_PLAN_ONLY.search(i.text) or _only_a_medicine(i.text)),
            "a decision of the plan, not a diagnosis",
        )
        kept, more = _sort_out(
            key,
            kept,
            lambda i: bool(_FINDING_ONLY.search(i.text)),
            "an examination finding, not a diagnosis",
        )
        return kept, dropped + more
    if key == "plan":
        return _decided(items, utterances)
    if key != "objective":
        return items, []
    kept, dropped = _sort_out(
        key,
        items,
        lambda i: finds_nothing(i.text),
        "finds nothing: a dose, a time or a decision alone",
    )
    plan_from = _plan_start(utterances)
    if plan_from is None:
        return kept, dropped

    def only_the_plan(item: NoteItem) -> bool:
        cited = [utterances[i] for i in item.evidence if 0 <= i < len(utterances)]
        return bool(cited) and all(
            u.index >= plan_from and rule_section(utterance=u) != "objective" for u in cited
        )

    kept, more = _sort_out(
        key, kept, only_the_plan, "cites only the plan, not an examination or a result"
    )
    return kept, dropped + more


def _sort_out(
    key: str, items: list[NoteItem], misplaced: Callable[[NoteItem], bool], reason: str
) -> tuple[list[NoteItem], list[dict]]:
    """The items that stay, and the written sentences `misplaced` finds, left out with `reason`."""
    kept, dropped = [], []
    for item in items:
        if item.kind == GENERATED and misplaced(item):
            dropped.append(left_out(section=key, item=item, reasons=[reason]))
        else:
            kept.append(item)
    return kept, dropped


# An assessment line that is a decision ("Surgery recommended.", "Follow up in 2 weeks."),
# which the plan says.
_PLAN_ONLY = re.compile(
    r"^(?:recommend|schedule|prescribe|order|refer|continue|start|stop|increase|decrease|"
    r"follow[- ]?up|return)\b|"
    r"\b(?:recommended|scheduled|prescribed|ordered|referred|started|stopped|continued)\W*$",
    re.I,
)


# An assessment line that is an examination finding: a manoeuvre or a normal result ("Motor
# and sensation intact to light touch.", "Tenderness to palpation of the midfoot.", "Brisk
# capillary refill."), which the examination says. The 1.5B model copies the findings into
# the assessment when the doctor reads them out just before the impression (D2N060).
_FINDING_ONLY = re.compile(
    r"\b(?:intact|palpation|palpable|capillary refill|pulses?|light touch|auscultation|"
    r"range of motion|reflex(?:es)?|unremarkable|within normal limits|non-?tender|"
    r"no (?:swelling|tenderness|erythema|edema|bruising))\b",
    re.I,
)


def _decided(
    items: list[NoteItem], utterances: list[Utterance]
) -> tuple[list[NoteItem], list[dict]]:
    """A written plan sentence that cites only the history, told before the examination began,
    is no decision ("Gloria is a 46-year-old female with ..."): left out, with why. Without an
    examination (a visit by video may have none), nothing is left out here."""
    examined = exam_start(utterances)
    if examined is None:
        return items, []
    return _sort_out(
        "plan",
        items,
        lambda i: bool(i.evidence) and max(i.evidence) < examined,
        "cites only the history, not a decision of the plan",
    )


def _only_a_medicine(text: str) -> bool:
    """A medicine as an assessment line: "Protonix.", "Lisinopril 20 mg daily." (D2N068), its
    name with at most a dose, a time or a decision."""
    spans = find_drug_spans(text)
    for _, start, end in sorted(spans, key=lambda s: -s[1]):
        text = text[:start] + " " + text[end:]
    return bool(spans) and finds_nothing(text)


def _plan_start(utterances: list[Utterance]) -> int | None:
    """Index of the doctor's first assessment or plan line after the examination began."""
    examined = exam_start(utterances)
    if examined is None:
        return None
    return next(
        (
            u.index
            for u in utterances
            if u.index > examined
            and u.speaker == "doctor"
            and rule_section(utterance=u) in {"assessment", "plan"}
        ),
        None,
    )


def _reason(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return "it did not finish in time"
    return str(exc)[:200] or type(exc).__name__


class LocalLlama:
    """A GGUF model in this process through llama.cpp; the prompt prefix is reused across calls."""

    def __init__(
        self,
        *,
        model_path: str | None = None,
        cache_dir: str | None = None,
        threads: int = 0,
        context_tokens: int = 8192,
    ) -> None:
        from consults.notes.llm_weights import model_path as resolve

        path = resolve(override=model_path, cache_dir=cache_dir)
        # llama.cpp's OpenMP threads spin while they wait; on a busy 2-core machine (two worker
        # processes, or anything else running) spinning threads starve each other: measured
        # 1.2 tokens/s with 2 spinning threads against 9.7 passive and 12.7 with one thread.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        from llama_cpp import Llama

        self.name = path.stem
        self.context_tokens = context_tokens
        batch_threads = threads or os.cpu_count() or 1
        # Totals for the bench: prompt tokens evaluated and reused from the cache, time to the
        # first token (prompt work), tokens generated and time after the first.
        self.stats = {
            "calls": 0,
            "prompt_tokens": 0,
            "cached_tokens": 0,
            "first_token_s": 0.0,
            "tokens": 0,
            "generation_s": 0.0,
            "prefill_tokens": 0,
            "prefill_s": 0.0,
        }
        # During the call the model works beside the speech worker and the call itself: it
        # generates on one thread per 4 cores. After hang-up a physician waits: every core.
        # Measured on an idle 2-core box, 1,620 tokens of context: 9.0 tokens/s on one thread,
        # 15.2 on two.
        self._threads = {False: max(1, batch_threads // 4), True: batch_threads}
        self._llm = Llama(
            model_path=str(path),
            n_ctx=context_tokens,
            n_threads=self._threads[False],
            n_threads_batch=batch_threads,
            n_batch=512,
            seed=0,
            verbose=False,
        )
        self._format = _chat_formatter(self._llm)

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=False))

    def pace(self, *, waited_for: bool) -> None:
        """Generate on every core while someone waits for the note, on few during the call."""
        import llama_cpp

        threads = self._threads[waited_for]
        llama_cpp.llama_set_n_threads(self._llm._ctx.ctx, threads, self._threads[True])  # noqa: SLF001

    def _tokens(self, prompt: str) -> list[int]:
        # The same tokens llama_cpp's completion makes of the prompt (special tokens parsed).
        return self._llm.tokenize(prompt.encode(), add_bos=self._add_bos, special=True)

    @property
    def _add_bos(self) -> bool:
        return bool(self._llm._model.add_bos_token())  # noqa: SLF001 - what create_completion does

    def _cached(self, tokens: list[int]) -> int:
        """How many leading tokens the model's cache already holds."""
        held = self._llm._input_ids[: self._llm.n_tokens]  # noqa: SLF001
        n = 0
        for a, b in zip(held, tokens[:-1], strict=False):
            if a != b:
                break
            n += 1
        return n

    def prefill(self, *, messages: list[dict], through: str) -> int:
        """Evaluate the chat prompt up to the end of the text `through`, reusing the cache."""
        started = time.monotonic()
        prompt = self._format(messages)
        cut = prompt.find(through)
        if cut < 0:
            return 0
        tokens = self._tokens(prompt[: cut + len(through)])
        if len(tokens) >= self.context_tokens:
            return 0
        keep = self._cached(tokens)
        self._llm.n_tokens = keep
        self._llm.eval(tokens[keep:])
        self.stats["prefill_tokens"] += len(tokens) - keep
        self.stats["prefill_s"] += time.monotonic() - started
        return len(tokens) - keep

    def save_prefix(self, path: Path) -> None:
        """Write the evaluated prompt (tokens and model state) so another process can go on.

        Only llama.cpp's own state and the tokens: no logits (hundreds of MB in llama_cpp's
        ``save_state``); the next completion re-evaluates its last token anyway. Written to a
        temporary file and renamed, readable by this user only (it encodes the transcript).
        """
        import llama_cpp

        ctx = self._llm._ctx.ctx  # noqa: SLF001
        size = llama_cpp.llama_state_get_size(ctx)
        buffer = (ctypes.c_uint8 * int(size))()
        written = llama_cpp.llama_state_get_data(ctx, buffer, size)
        n = self._llm.n_tokens
        header = json.dumps({"model": self.name, "tokens": self._llm._input_ids[:n].tolist()})  # noqa: SLF001
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(len(header).to_bytes(8, "little") + header.encode())
            fh.write(memoryview(buffer)[: int(written)])
        os.replace(tmp, path)

    def load_prefix(self, path: Path, *, messages: list[dict]) -> int:
        """Take over a prefix another process saved, when it is longer than what this cache
        already shares with `messages`' prompt; returns the tokens now reused."""
        import llama_cpp

        tokens = self._tokens(self._format(messages))
        have = self._cached(tokens)
        try:
            with path.open("rb") as fh:
                header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
                saved = header["tokens"]
                # The last saved tokens may merge with what follows ("." + "\n\n"): the common
                # part is what counts.
                common = 0
                for a, b in zip(saved, tokens[:-1], strict=False):
                    if a != b:
                        break
                    common += 1
                if header["model"] != self.name or common <= have:
                    return have
                data = fh.read()
        except (OSError, ValueError, KeyError):
            return have
        buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        llama_cpp.llama_state_set_data(self._llm._ctx.ctx, buffer, len(data))  # noqa: SLF001
        self._llm.input_ids[: len(saved)] = saved
        self._llm.n_tokens = common
        return common

    def _greedy(
        self,
        tokens: list[int],
        *,
        gbnf: str,
        max_tokens: int,
        deadline: float,
        judge: Callable[[str], str],
    ) -> tuple[str, int, float | None]:
        """Greedy decoding under a grammar, the grammar checked on the model's choice first.

        llama_cpp's sampler chain runs the grammar over all 151,936 candidates at every token
        (a third of the generation time here: 8.4 against 13.3 tokens/s). Greedy decoding only
        needs to know whether the most likely token is allowed; when it is not (a few tokens a
        sentence), the grammar masks every candidate and the best allowed one is taken, as
        llama.cpp's own ``common_sampler`` does. Each token's check is independent of the
        others, so the text is the same as the full check's.

        ``judge(text)`` is asked after every token: "go" on, "stop" here, or "redo" the line
        being written: the model's state and the grammar go back to the line's start and the
        line's first word is refused there, however spelt in tokens (`_REDOS` times a section;
        then the line is cut and the section ends). Returns the text, the tokens generated and
        when the first came.
        """
        import codecs

        import llama_cpp
        import numpy as np

        llm = self._llm
        keep = self._cached(tokens)
        llm.n_tokens = keep
        llm.eval(tokens[keep:])
        ctx = llm._ctx.ctx  # noqa: SLF001
        vocab = llm._model.vocab  # noqa: SLF001
        n_vocab = llm.n_vocab()
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode(), b"root")
        if not sampler:
            raise ValueError("the section grammar does not parse")
        one = (llama_cpp.llama_token_data * 1)()
        every = np.zeros(
            n_vocab, dtype=[("id", np.int32), ("logit", np.float32), ("p", np.float32)]
        )
        every["id"] = np.arange(n_vocab, dtype=np.int32)
        pointer = ctypes.cast(every.ctypes.data, llama_cpp.llama_token_data_p)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        out, generated, first, redos = "", 0, None, 0
        # Where the line being written started: model position, grammar state, text length.
        # A line written again gets its tokens back: only the model position counts.
        mark = (llm.n_tokens, llama_cpp.llama_sampler_clone(sampler), 0)
        start = llm.n_tokens
        banned: list[int] = []
        line_first: int | None = None
        try:
            while llm.n_tokens - start < min(max_tokens, self.context_tokens - len(tokens)):
                if time.monotonic() > deadline:
                    raise TimeoutError("note model deadline passed")
                logits = np.ctypeslib.as_array(
                    llama_cpp.llama_get_logits_ith(ctx, -1), shape=(n_vocab,)
                )
                if line_first is None and banned:
                    logits = logits.copy()
                    logits[banned] = float("-inf")
                token = int(logits.argmax())
                one[0] = llama_cpp.llama_token_data(token, 0.0, 0.0)
                chosen = llama_cpp.llama_token_data_array(one, 1, -1, False)
                llama_cpp.llama_sampler_apply(sampler, ctypes.byref(chosen))
                if one[0].logit == float("-inf"):
                    every["logit"] = logits
                    allowed = llama_cpp.llama_token_data_array(pointer, n_vocab, -1, False)
                    llama_cpp.llama_sampler_apply(sampler, ctypes.byref(allowed))
                    token = int(every["logit"].argmax())
                    if every["logit"][token] == float("-inf"):
                        break
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    break
                llama_cpp.llama_sampler_accept(sampler, token)
                piece = decoder.decode(llm.detokenize([token]))
                out += piece
                generated += 1
                first = first or time.monotonic()
                line_first = token if line_first is None else line_first
                llm.eval([token])
                verdict = judge(out)
                if verdict == "redo" and redos < _REDOS:
                    redos += 1
                    at, state, length = mark
                    llm.n_tokens = at - 1
                    llm.eval([int(llm.input_ids[at - 1])])  # the logits at the line's start
                    llama_cpp.llama_sampler_free(sampler)
                    sampler = llama_cpp.llama_sampler_clone(state)
                    banned += [line_first, *self._spellings(out[length:])]
                    out, line_first = out[:length], None
                    decoder.reset()
                    continue
                if verdict != "go":
                    out = out[: mark[2]] if verdict == "redo" else out
                    break
                if piece.endswith("\n"):
                    llama_cpp.llama_sampler_free(mark[1])
                    mark = (llm.n_tokens, llama_cpp.llama_sampler_clone(sampler), len(out))
                    banned, line_first = [], None
        finally:
            llama_cpp.llama_sampler_free(sampler)
            llama_cpp.llama_sampler_free(mark[1])
        return out, generated, first

    def _spellings(self, line: str) -> list[int]:
        """The single tokens a line's first word can start with ("W", "We", "Wean")."""
        word = line.split(maxsplit=1)[0] if line.strip() else ""
        found = []
        for end in range(1, len(word) + 1):
            ids = self._llm.tokenize(word[:end].encode(), add_bos=False, special=False)
            if len(ids) == 1:
                found.append(ids[0])
        return found

    def complete(
        self, *, messages: list[dict], grammar: str, max_tokens: int, deadline: float
    ) -> str:
        if time.monotonic() > deadline:
            raise TimeoutError("note model deadline passed")
        started = time.monotonic()
        tokens = self._tokens(self._format(messages))
        cached = self._cached(tokens)
        text, generated, first = self._greedy(
            tokens, gbnf=grammar, max_tokens=max_tokens, deadline=deadline, judge=_judge
        )
        done = time.monotonic()
        self.stats["calls"] += 1
        self.stats["prompt_tokens"] += len(tokens) - cached
        self.stats["cached_tokens"] += cached
        self.stats["first_token_s"] += (first or done) - started
        self.stats["tokens"] += generated
        self.stats["generation_s"] += done - (first or done)
        return text


_REDOS = 2  # lines a section may write again after writing one in circles


def _judge(text: str) -> str:
    """A line that goes round in circles, or repeats an earlier one, is written again."""
    if _stuck(text) or (text.endswith("\n") and _looping(text)):
        return "redo"
    return "go"


def _chat_formatter(llm) -> Callable[[list[dict]], str]:
    """The model's own chat template (from the GGUF) as messages -> prompt text."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        raise ModelError("the GGUF has no chat template (tokenizer.chat_template)")
    model = llm._model  # noqa: SLF001 - the token texts, as Llama itself reads them
    eos, bos = llm.token_eos(), llm.token_bos()
    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=model.token_get_text(eos) if eos != -1 else "",
        bos_token=model.token_get_text(bos) if bos != -1 else "",
    )
    return lambda messages: formatter(messages=messages).prompt


class OpenAICompatible:
    """A chat-completions server (llama.cpp server, vLLM, Ollama) asked with the same prompts.

    The grammar goes in llama.cpp's ``grammar`` field; servers that ignore it still get the
    instruction to cite lines, and a sentence without line numbers is dropped by grounding.
    """

    def __init__(self, *, base_url: str, model: str = "", context_tokens: int = 8192) -> None:
        base = base_url.rstrip("/")
        self._url = (base if base.endswith("/v1") else base + "/v1") + "/chat/completions"
        if not self._url.startswith(("http://", "https://")):
            raise ModelError(f"NOTES_LLM_BASE_URL must be http(s): {base_url}")
        self._model = model
        self.name = f"server-{model or 'default'}"
        self.context_tokens = context_tokens

    def count_tokens(self, text: str) -> int:
        return len(text) // 3 + 1  # no tokenizer here: an over-estimate, so chunks fit

    def prefill(self, *, messages: list[dict], through: str) -> int:
        return 0  # the server keeps its own prompt cache (``cache_prompt``)

    def complete(
        self, *, messages: list[dict], grammar: str, max_tokens: int, deadline: float
    ) -> str:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("note model deadline passed")
        body = {
            "model": self._model or "default",
            "messages": messages,
            "temperature": 0,
            "max_tokens": max_tokens,
            "grammar": grammar,
            # llama.cpp server: reuse the prompt prefix of the previous request (the transcript).
            "cache_prompt": True,
        }
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self._url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=remaining) as response:  # noqa: S310
            answer = json.load(response)
        return answer["choices"][0]["message"]["content"] or ""
