"""Business rules between the model's extraction and the note.

The model is asked nicely; this module makes sure. It trims and de-duplicates,
drops due dates that cannot be right (malformed, or before the meeting), a
meeting date the transcript does not state, names, accounts and titles of the
wrong shape (the contract's own checks, for results that skipped them),
turns the vault owner and their aliases into `Myself`, and applies the
vault's link resolutions when there are any. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from summarizer.datefind import states_date
from summarizer.markdown import one_line
from summarizer.models import (
    DecisionItem,
    MeetingExtraction,
    MeetingNote,
    Task,
    Transcript,
    check_account,
    check_name,
    check_title,
)

MYSELF = "Myself"


@dataclass
class NoteContext:
    """What the rules need besides the extraction."""

    source_ref: str
    owner: str | None = None
    owner_aliases: Sequence[str] = ()
    task_status: str = "?"
    note_tags: Sequence[str] = ("generated",)
    account_override: str | None = None
    account_linked: bool = True
    participants_override: list[str] | None = None
    related_override: list[str] | None = None
    owner_map: dict[str, str] = field(default_factory=dict)
    evidence_check: Callable[[str], bool] | None = None
    unsupported: str = "flag"  # flag | drop | keep
    extra_frontmatter: dict[str, object] = field(default_factory=dict)


def fold(text: str) -> str:
    """Case-, accent- and punctuation-insensitive key for comparing short texts."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return re.sub(r"[\W_]+", " ", text).strip()


def unique(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        clean = one_line(item)
        key = fold(clean)
        if clean and key not in seen:
            seen.add(key)
            out.append(clean)
    return out


def parse_date(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def is_owner(name: str | None, owner: str | None, aliases: Sequence[str]) -> bool:
    if not name or not owner:
        return False
    key = fold(name)
    names = {fold(owner), *(fold(a) for a in aliases)}
    return key in names or key in {"me", "myself", "i"}


def meeting_date(extraction: MeetingExtraction, transcript: Transcript) -> dt.date | None:
    """Metadata from the file wins; the model's date counts only when the transcript states it.

    A model asked for a date tends to give one (today's, the example's, a guess); a date nobody
    said would become the note's date and file name, so without one the note says `unknown`.
    """
    if transcript.date:
        return transcript.date
    date = parse_date(extraction.meeting_date)
    if date is None:
        return None
    text = "\n".join([transcript.title or "", transcript.as_text()])
    return date if states_date(text, date) else None


def build_note(extraction: MeetingExtraction, transcript: Transcript, ctx: NoteContext) -> MeetingNote:
    date = meeting_date(extraction, transcript)
    canonical = one_line

    def owner_of(name: str | None) -> str | None:
        if not name or not one_line(name):
            return None
        if name not in ctx.owner_map and check_name(name):
            return None  # "Marcus Oyelaran, Northwind Studio" is not someone to assign a task to
        if name in ctx.owner_map:
            return ctx.owner_map[name]
        if is_owner(name, ctx.owner, ctx.owner_aliases):
            return MYSELF
        resolved = canonical(name)
        return MYSELF if is_owner(resolved, ctx.owner, ctx.owner_aliases) else resolved

    tasks: list[Task] = []
    seen_tasks: set[str] = set()
    for item in extraction.action_items:
        text = one_line(item.text)
        key = fold(text)
        if not text or key in seen_tasks:
            continue
        due = parse_date(item.due)
        if due is not None and date is not None and due < date:
            due = None  # a deadline before the meeting is a misreading, not a plan
        supported = ctx.evidence_check(item.evidence) if ctx.evidence_check else None  # "" is unsupported
        if supported is False and ctx.unsupported == "drop":
            continue
        seen_tasks.add(key)
        tasks.append(
            Task(
                status=ctx.task_status,
                text=text,
                owner=owner_of(item.owner),
                due=due,
                priority=item.priority,
                evidence=one_line(item.evidence) or None,
                supported=supported,
            )
        )

    decisions: list[DecisionItem] = []
    seen_decisions: set[str] = set()
    for decision in extraction.decisions:
        text = one_line(decision.text)
        if not text or fold(text) in seen_decisions:
            continue
        supported = ctx.evidence_check(decision.evidence) if ctx.evidence_check else None
        if supported is False and ctx.unsupported == "drop":
            continue
        seen_decisions.add(fold(text))
        decisions.append(DecisionItem(text=text, evidence=one_line(decision.evidence) or None, supported=supported))

    account = ctx.account_override or (
        canonical(extraction.account) if extraction.account and not check_account(extraction.account) else None
    )
    if account and is_owner(account, ctx.owner, ctx.owner_aliases):
        account = None
    if ctx.participants_override is not None:
        named = ctx.participants_override
    else:
        named = [canonical(p) for p in extraction.participants]
    participants = unique(p for p in named if not check_name(p)) or unique(transcript.participants)
    if ctx.related_override is not None:
        related = unique(ctx.related_override)
    else:
        related = unique(canonical(e.name) for e in extraction.related)
        related = [r for r in related if not account or fold(r) != fold(account)]

    title = "" if check_title(extraction.title) else one_line(extraction.title)
    return MeetingNote(
        title=title or transcript.title or transcript.source_name or "Meeting",
        date=date,
        note_type=extraction.note_type,
        account=account,
        account_category=extraction.account_category if account else None,
        participants=participants,
        summary=one_line(extraction.summary),
        action_items=tasks,
        decisions=decisions,
        key_information=unique(extraction.key_information),
        related=related,
        source_ref=ctx.source_ref,
        tags=list(ctx.note_tags),
        account_linked=ctx.account_linked,
        extra_frontmatter=dict(ctx.extra_frontmatter),
    )
