"""The contract between stages.

`MeetingExtraction` is what the model is asked for. It is written for OpenAI's
strict structured-output mode: every field required, `X | None` for optional
values, `Literal` enums, no defaults, no dicts, no unions of objects. Values
the model gets wrong in form (a date like "next Friday") are typed loosely
here and checked in `rules`, so one bad field does not cost a whole call.

`Transcript` is what readers produce; `MeetingNote` is what the renderer
consumes, after the business rules have run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Priority = Literal["highest", "high", "medium", "low", "lowest", "none"]
NoteType = Literal["people", "customer", "project", "internal", "other"]
AccountCategory = Literal["customer", "partner", "vendor", "colleague", "candidate", "personal", "other"]
EntityKind = Literal["person", "organisation", "project", "concept"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class Decision(_Strict):
    text: str = Field(description="What was decided, as one sentence.")
    evidence: str = Field(description="A short verbatim quote (under 25 words) from the transcript showing it.")


class Entity(_Strict):
    name: str = Field(description="Canonical name of a person, organisation, project or concept discussed.")
    kind: EntityKind


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


# --------------------------------------------------------------------------- transcripts


class Utterance(BaseModel):
    speaker: str | None
    start: float | None = None  # seconds from the start of the recording
    text: str


class Transcript(BaseModel):
    """One meeting's words, whatever format they arrived in."""

    utterances: list[Utterance]
    date: dt.date | None = None
    title: str | None = None
    participants: list[str] = Field(default_factory=list)
    source_name: str = ""  # the file's stem: the Source link's display text

    def as_text(self) -> str:
        """The form the model reads: one `Speaker: text` line per utterance."""
        return "\n".join(f"{u.speaker}: {u.text}" if u.speaker else u.text for u in self.utterances)

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
