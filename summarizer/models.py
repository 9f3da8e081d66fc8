"""The contract between stages.

`MeetingExtraction` is what the model is asked for. It is written for OpenAI's
strict structured-output mode: every field required, `X | None` for optional
values, `Literal` enums, no defaults, no dicts, no unions of objects. Values
the model gets wrong in form (a date like "next Friday") are typed loosely
here and checked in `rules`, so one bad field does not cost a whole call.

Names, accounts and titles in a model's JSON answer are checked for shape and
length (`check_name`, `check_account`, `check_title`): a violation is a
ValidationError whose location names the field, so the client's repair request
says exactly what to fix ("action_items.0.owner: ..."). Objects built in code
(the offline engine, a parsed note) and stored results are trusted and not
re-checked; the business rules apply the same checks as a last line.

`Transcript` is what readers produce; `MeetingNote` is what the renderer
consumes, after the business rules have run.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import hashlib
import re
from importlib.resources import files
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

Priority = Literal["highest", "high", "medium", "low", "lowest", "none"]
NoteType = Literal["people", "customer", "project", "internal", "other"]
AccountCategory = Literal["customer", "partner", "vendor", "colleague", "candidate", "personal", "other"]
EntityKind = Literal["person", "organisation", "project", "concept"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- shape checks

NAME_MAX_CHARS, NAME_MAX_WORDS = 50, 5
ACCOUNT_MAX_CHARS, ACCOUNT_MAX_WORDS = 60, 8
TITLE_MAX_CHARS, TITLE_MAX_WORDS = 100, 14
ENTITY_MAX_CHARS = 80
_SPACES = re.compile(r"\s+")
# A name is not a description: "Marcus Oyelaran, Northwind Studio" or "Ana (CFO)" is a name plus more.
_NOT_IN_NAME = re.compile(r"[,;:()/]|\b(?:from|at|with|and|for|the)\b", re.IGNORECASE)
_QUOTED = re.compile(r'"([^"\n]+)"|“([^”\n]+)”')
_CHECK_MODEL_TEXT: contextvars.ContextVar[bool] = contextvars.ContextVar("check_model_text", default=True)


def _squash(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _fold(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text).casefold().strip()


def _length(text: str, max_chars: int, max_words: int) -> str | None:
    words = [w for w in text.split() if any(c.isalnum() for c in w)]
    if len(text) > max_chars:
        return f"{len(text)} characters, at most {max_chars}"
    if len(words) > max_words:
        return f"{len(words)} words, at most {max_words}"
    return None


def check_name(value: str) -> str | None:
    """Why `value` is not a person's name (None when it is one): short, letters, no commas or roles."""
    text = _squash(value)
    if not text:
        return None
    if not any(c.isalpha() for c in text) or _NOT_IN_NAME.search(text):
        return f"{text[:60]!r} is not a name: give only the person's name, no role, company or list"
    return _length(text, NAME_MAX_CHARS, NAME_MAX_WORDS)


def check_account(value: str) -> str | None:
    """Why `value` is not a plausible person or organisation name for the account."""
    text = _squash(value)
    if problem := _length(text, ACCOUNT_MAX_CHARS, ACCOUNT_MAX_WORDS):
        return problem
    if not any(c.isalnum() for c in text):
        return f"{text[:40]!r} is not a name: give only the person's or organisation's name"
    return None


@functools.cache
def example_titles() -> frozenset[str]:
    """Titles the shipped prompt templates give as examples (quoted on a line that mentions title)."""
    titles: set[str] = set()
    for entry in files("summarizer.prompts").iterdir():
        if not entry.name.endswith(".j2"):
            continue
        for line in entry.read_text(encoding="utf-8").splitlines():
            if "title" not in line.lower():
                continue
            for match in _QUOTED.finditer(line):
                quoted = _fold(match.group(1) or match.group(2))
                if len(quoted) >= 3 and quoted != "title":
                    titles.add(quoted)
    return frozenset(titles)


def check_title(value: str) -> str | None:
    """Why `value` is not a usable title: empty, too long, or copied from the prompt's examples."""
    text = _squash(value)
    if not text:
        return None  # nothing to check: the note falls back to the file's title
    if not any(c.isalnum() for c in text):
        return f"{text!r} has no words: give a short, specific title for this meeting"
    if problem := _length(text, TITLE_MAX_CHARS, TITLE_MAX_WORDS):
        return problem
    if _fold(text) in example_titles():
        return f"{text!r} is the prompt's example title; give this meeting's own title"
    return None


def _check(value: Any, check: Any, info: ValidationInfo) -> Any:
    """Run a shape check on model text: JSON answers only, never stored results or objects built in code."""
    if isinstance(value, str) and info.mode == "json" and _CHECK_MODEL_TEXT.get():
        problem = check(value)
        if problem:
            raise PydanticCustomError("model_text_shape", problem)
    return value


# --------------------------------------------------------------------------- model-facing contract


class ActionItem(_Strict):
    text: str = Field(
        description="The commitment as one imperative sentence (e.g. 'Send the revised quote to Acme'). "
        "No owner, date, emoji, '#' or links in it."
    )
    owner: str | None = Field(
        description="Full name of the person who committed to it, as spoken in the meeting; null when nobody was named."
    )
    due: str | None = Field(
        description="Deadline as YYYY-MM-DD, resolved against the meeting date when said relatively "
        "('by Friday'); null when no deadline was stated."
    )
    priority: Priority = Field(description="Urgency as stated or clearly implied; 'none' when not evident.")
    evidence: str = Field(description="A short verbatim quote (under 25 words) from the transcript showing it.")

    @field_validator("owner")
    @classmethod
    def _owner_is_a_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _check(value, check_name, info)  # type: ignore[no-any-return]


class Decision(_Strict):
    text: str = Field(description="What was decided, as one sentence.")
    evidence: str = Field(description="A short verbatim quote (under 25 words) from the transcript showing it.")


class Entity(_Strict):
    name: str = Field(description="Canonical name of a person, organisation, project or concept discussed.")
    kind: EntityKind

    @field_validator("name")
    @classmethod
    def _name_is_short(cls, value: str, info: ValidationInfo) -> str:
        return _check(value, lambda v: _length(_squash(v), ENTITY_MAX_CHARS, 12), info)  # type: ignore[no-any-return]


class MeetingExtraction(_Strict):
    """Everything the model reads out of one meeting."""

    title: str = Field(description="A short, specific title for the meeting (3-8 words), no date.")
    meeting_date: str | None = Field(description="The meeting date as YYYY-MM-DD if known, else null.")
    note_type: NoteType = Field(
        description="'people' for a meeting mainly with one outside person, 'customer' for a meeting "
        "with an outside organisation, 'project' for a project meeting, 'internal' for a team meeting."
    )
    account: str | None = Field(
        description="The person or organisation the meeting is with (not the vault owner); null if none."
    )
    account_category: AccountCategory | None = Field(description="What the account is to the vault owner.")
    participants: list[str] = Field(description="Names of everyone who spoke or was addressed as present.")
    summary: str = Field(description="One paragraph, third person, past tense: what was discussed and why.")
    action_items: list[ActionItem] = Field(description="Only commitments actually made in the meeting.")
    decisions: list[Decision]
    key_information: list[str] = Field(description="Facts, figures and context worth remembering, one each.")
    related: list[Entity] = Field(description="People, organisations, projects and concepts discussed.")

    @field_validator("title")
    @classmethod
    def _title_shape(cls, value: str, info: ValidationInfo) -> str:
        return _check(value, check_title, info)  # type: ignore[no-any-return]

    @field_validator("account")
    @classmethod
    def _account_shape(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _check(value, check_account, info)  # type: ignore[no-any-return]

    @field_validator("participants")
    @classmethod
    def _participants_are_names(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for name in value:
            _check(name, check_name, info)
        return value


# --------------------------------------------------------------------------- transcripts


class Utterance(BaseModel):
    speaker: str | None
    start: float | None = None  # seconds from the start of the recording
    text: str


_TEXT_KEY = "_as_text"  # not a field: `Transcript.as_text`'s cache


class Transcript(BaseModel):
    """One meeting's words, whatever format they arrived in."""

    utterances: list[Utterance]
    date: dt.date | None = None
    title: str | None = None
    participants: list[str] = Field(default_factory=list)
    source_name: str = ""  # the file's stem: the Source link's display text

    def as_text(self) -> str:
        """The form the model reads: one `Speaker: text` line per utterance.

        Made once per utterance list (the prompt, the cache key and the plan all ask; a transcript's
        utterances are not changed once it is made), kept beside the fields, where equality and
        serialisation do not look, with the list it was made from, so a copy with other utterances
        makes its own."""
        cached = self.__dict__.get(_TEXT_KEY)
        if cached is not None and cached[0] is self.utterances:
            return str(cached[1])
        text = "\n".join(f"{u.speaker}: {u.text}" if u.speaker else u.text for u in self.utterances)
        self.__dict__[_TEXT_KEY] = (self.utterances, text)
        return text

    def speakers(self) -> list[str]:
        seen: dict[str, None] = {}
        for u in self.utterances:
            if u.speaker:
                seen.setdefault(u.speaker, None)
        return list(seen)

    def content_hash(self) -> str:
        return hashlib.sha256(self.as_text().encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- rendered note


class Task(BaseModel):
    status: str = "?"
    text: str
    owner: str | None = None  # "Myself" for the vault owner
    due: dt.date | None = None
    priority: Priority = "none"
    evidence: str | None = None
    supported: bool | None = None  # grounding verdict, None when unchecked


class DecisionItem(BaseModel):
    text: str
    evidence: str | None = None
    supported: bool | None = None


class MeetingNote(BaseModel):
    """A note after the business rules: exactly what the renderer writes."""

    title: str
    date: dt.date | None
    note_type: NoteType
    account: str | None
    account_category: AccountCategory | None
    participants: list[str]
    summary: str
    action_items: list[Task]
    decisions: list[DecisionItem]
    key_information: list[str]
    related: list[str]
    source_ref: str  # vault-relative POSIX path of the transcript
    tags: list[str]
    account_linked: bool = True  # False: no vault note for the account, so it stays plain text
    extra_frontmatter: dict[str, object] = Field(default_factory=dict)

    @property
    def source_name(self) -> str:
        return PurePosixPath(self.source_ref).stem


class Usage(BaseModel):
    """Token counts of one or more calls, and what they cost."""

    calls: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None  # USD; None when the model has no known price

    def __add__(self, other: Usage) -> Usage:
        cost = None if self.cost is None and other.cost is None else (self.cost or 0.0) + (other.cost or 0.0)
        return Usage(
            calls=self.calls + other.calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost=cost,
        )


class ExtractionResult(BaseModel):
    """An engine's answer, with what produced it, so results can be cached and audited."""

    extraction: MeetingExtraction
    engine: str  # "openai" or "offline"
    model: str
    prompt_version: str
    usage: Usage = Field(default_factory=Usage)

    @model_validator(mode="wrap")
    @classmethod
    def _stored_results_are_trusted(cls, data: Any, handler: Any) -> Any:
        """A cached or stored result was checked when it was made; an older one must still load."""
        token = _CHECK_MODEL_TEXT.set(False)
        try:
            return handler(data)
        finally:
            _CHECK_MODEL_TEXT.reset(token)


def unchecked_extraction(text: str) -> MeetingExtraction:
    """A JSON answer validated without the shape checks on names, accounts and titles (the rules drop
    what is off-shape when the note is built): for an answer whose only problems were those."""
    token = _CHECK_MODEL_TEXT.set(False)
    try:
        return MeetingExtraction.model_validate_json(text)
    finally:
        _CHECK_MODEL_TEXT.reset(token)
