"""Read a note back into a `MeetingNote`: the renderer's inverse.

Regenerating a note we have no stored extraction for (written before the state
store existed, or by hand in the vault's format) starts from the note itself,
so this module undoes `render.render_note`: the frontmatter gives the fields it
carries verbatim (title, date, account, participants, source_ref, tags, extra
keys), the body gives the rest (summary, tasks, decisions, key information,
related links). `parse_note(render_note(x)) == x` for every note the renderer
can represent exactly (see tests/test_noteparse.py for the restriction).

It is deliberately lenient: lines it does not recognise are ignored here (the
merge keeps them), so a note the person edited still parses.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from summarizer.errors import NoteParseError
from summarizer.markdown import link_target, slugify
from summarizer.models import AccountCategory, DecisionItem, MeetingNote, NoteType, Task
from summarizer.render import EMPTY_SECTION, UNKNOWN_DATE
from summarizer.tasks import parse_task

FENCE = "---"
_NOTE_TYPES: tuple[str, ...] = get_args(NoteType)
_CATEGORIES: tuple[str, ...] = get_args(AccountCategory)
_SOURCE_LINE = re.compile(r"^\*Source: \[\[(?P<target>[^\]|]*)(?:\|(?P<name>[^\]]*))?\]\]\*\s*$")
_HEADER_FIELD = re.compile(r"^\*\*(?P<key>[A-Za-z ]+)\*\*: ?(?P<value>.*)$")
_WIKILINK = re.compile(r"^\[\[(?P<target>[^\]|]*)(?:\|[^\]]*)?\]\]$")
# The renderer's mark on items whose evidence quote was not found in the transcript.
UNVERIFIED_TAG = "#unverified"


@dataclass
class SplitNote:
    """A note cut at its frontmatter fences; `body` starts right after the closing fence line."""

    data: dict[str, Any]
    yaml_text: str
    body: str


def split_note(text: str, where: str | None = None) -> SplitNote:
    """Frontmatter (parsed) and body; refuses a note without a readable YAML mapping up top."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != FENCE:
        raise NoteParseError("no frontmatter (the note must start with '---')", where)
    for index in range(1, len(lines)):
        if lines[index].rstrip() == FENCE:
            yaml_text = "\n".join(lines[1:index]) + "\n" if index > 1 else ""
            body = "\n".join(lines[index + 1 :])
            break
    else:
        raise NoteParseError("frontmatter never closes (no second '---' line)", where)
    import yaml  # not on the way to a first request

    try:
        data = yaml.safe_load(yaml_text) if yaml_text.strip() else {}
    except yaml.YAMLError as err:
        raise NoteParseError(f"frontmatter is not valid YAML: {one_error_line(err)}", where) from err
    if not isinstance(data, dict):
        raise NoteParseError("frontmatter is not a mapping of keys to values", where)
    return SplitNote({str(k): v for k, v in data.items()}, yaml_text, body)


def one_error_line(err: Exception) -> str:
    return " ".join(str(err).split())


def sections(body: str) -> list[tuple[str, list[str]]]:
    """The body cut at `## ` headings: ("", preamble lines) first, then (heading, lines) each."""
    out: list[tuple[str, list[str]]] = [("", [])]
    for line in body.split("\n"):
        if line.startswith("## "):
            out.append((line[3:].strip(), []))
        else:
            out[-1][1].append(line)
    return out


def source_link(body: str) -> tuple[str, str | None] | None:
    """The body's `*Source: [[path|name]]*` target and display name, if there is such a line."""
    for line in body.split("\n"):
        match = _SOURCE_LINE.match(line)
        if match:
            return match["target"], match["name"]
    return None


def as_date(value: object) -> dt.date | None:
    """A frontmatter or header date (a date, a datetime or an ISO string; "unknown" is none)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value.strip() and value.strip() != UNKNOWN_DATE:
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def as_strings(value: object) -> list[str]:
    """A frontmatter list of strings (tags, participants); a lone string is a list of one."""
    if isinstance(value, list):
        return [v if isinstance(v, str) else str(v) for v in value if v is not None]
    if isinstance(value, str) and value:
        return [value]
    return []


def _bullets(lines: list[str]) -> list[str]:
    items = [line[2:] for line in lines if line.startswith("- ")]
    return [item for item in items if item]


def _flagged(item: str) -> tuple[str, bool | None]:
    """A bullet's text without the renderer's unverified mark, and whether it had one."""
    suffix = " " + UNVERIFIED_TAG
    return (item[: -len(suffix)], False) if item.endswith(suffix) else (item, None)


def _link(item: str) -> str:
    match = _WIKILINK.match(item.strip())
    return match["target"] if match else item.strip()


def parse_tasks(lines: list[str], task_tags: str = "#task #proposed") -> list[Task]:
    """Checklist lines back into Tasks: status, text, `@owner`, due date and priority."""
    tasks: list[Task] = []
    for line in lines:
        parsed = parse_task(line)
        if parsed is None:
            continue
        text, owner = parsed.split_owner()
        if not text:
            continue
        supported = False if UNVERIFIED_TAG in parsed.tags else None
        tasks.append(
            Task(
                status=parsed.status,
                text=text,
                owner=owner,
                due=parsed.due,
                priority=parsed.priority,
                supported=supported,
            )
        )
    return tasks


def standard_keys(note_type: str) -> set[str]:
    """The frontmatter keys the renderer writes itself; anything else is an extra key."""
    account = "person" if note_type == "people" else "account"
    return {"type", "title", "date", account, "participants", "source", "source_ref", "tags"}


# Section headings of the packaged template, by the template field that fills each section;
# `summarizer.noteformat` passes the active template's (a vault override may rename them).
DEFAULT_HEADINGS: dict[str, tuple[str, ...]] = {
    "summary": ("Summary",),
    "action_items": ("Action Items",),
    "decisions": ("Decisions",),
    "key_information": ("Key Information",),
    "related": ("Related",),
}


def parse_note(
    text: str,
    *,
    task_tags: str = "#task #proposed",
    where: str | None = None,
    headings: Mapping[str, Sequence[str]] | None = None,
    source: Callable[[str], tuple[str, str | None] | None] | None = None,
) -> MeetingNote:
    """A note in the vault's format back into the MeetingNote that renders it.

    `headings`: role -> the headings that mean it (first found wins); `source`: finds the body's
    Source link. Both default to the packaged template's.
    """
    split = split_note(text, where)
    data = split.data
    parts = sections(split.body)
    by_heading: dict[str, list[str]] = {}
    for name, lines in parts[1:]:
        by_heading[name] = lines  # a heading used twice: the last one, as before
    names = headings or DEFAULT_HEADINGS
    named: dict[str, list[str]] = {}
    for role, options in names.items():
        for option in options:
            if option in by_heading:
                named[role] = by_heading[option]
                break
    header: dict[str, str] = {}
    h1: str | None = None
    for line in parts[0][1]:
        if line.startswith("# ") and h1 is None:
            h1 = line[2:].strip()
        field = _HEADER_FIELD.match(line)
        if field:
            header.setdefault(field["key"].strip(), field["value"].strip())

    raw_type = _text(data.get("type"))
    note_type: Any = raw_type if raw_type in _NOTE_TYPES else "other"
    key = "person" if note_type == "people" else "account"
    account = _text(data.get(key))
    linked = header.get("Account", "").startswith("[[")
    if account is None and linked:
        account = _link(header["Account"])
    title = _text(data.get("title")) or h1 or ""
    date = as_date(data.get("date")) if "date" in data else as_date(header.get("Date"))

    tags = as_strings(data.get("tags"))
    category: Any = None
    if tags and tags[0].startswith("type/") and tags[0][5:] in _CATEGORIES:
        category = tags.pop(0)[5:]
    if account and tags and tags[0] == f"account/{slugify(link_target(account))}":
        tags.pop(0)

    summary_lines = [line for line in named.get("summary", []) if line.strip()]
    summary = " ".join(summary_lines)
    if summary == EMPTY_SECTION:
        summary = ""
    source_ref = _text(data.get("source_ref"))
    if source_ref is None:
        link = (source or source_link)(split.body)
        if link is None:
            raise NoteParseError("no source_ref in the frontmatter and no Source link in the body", where)
        source_ref = link[0]

    extra = {k: v for k, v in data.items() if k not in standard_keys(note_type)}
    return MeetingNote(
        title=title,
        date=date,
        note_type=note_type,
        account=account,
        account_category=category,
        participants=as_strings(data.get("participants")),
        summary=summary,
        action_items=parse_tasks(named.get("action_items", []), task_tags),
        decisions=[
            DecisionItem(text=text, supported=flag)
            for text, flag in (_flagged(item) for item in _bullets(named.get("decisions", [])))
        ],
        key_information=_bullets(named.get("key_information", [])),
        related=[_link(item) for item in _bullets(named.get("related", []))],
        source_ref=source_ref,
        tags=tags,
        account_linked=linked or not account,
        extra_frontmatter=extra,
    )
