"""MeetingNote -> the vault's markdown, byte for byte.

The layout lives in a jinja2 template (`templates/note.md.j2`, overridable per
vault in `.summarizer/templates/`); this module prepares each field so that the
template only places finished, safe strings. The frontmatter is PyYAML's
`safe_dump(sort_keys=False, allow_unicode=True)`, as the vault writes it.
"""

from __future__ import annotations

import hashlib
from importlib.resources import files
from pathlib import Path
from typing import Any

from summarizer.markdown import inline, link_target, one_line, slugify, wikilink
from summarizer.models import MeetingNote, Task
from summarizer.prompting import compile_template
from summarizer.tasks import format_task

NOTE_TEMPLATE = "note.md.j2"
EMPTY_SECTION = "_None._"
UNKNOWN_DATE = "unknown"
GENERATED_TAG = "generated"
UNVERIFIED_TAG = "#unverified"  # evidence quote not found in the transcript
# The transcript's original file name, when it had to be archived under another (linkable) one.
SOURCE_NAME_KEY = "source_name"


def load_note_template(vault: Path | None = None) -> str:
    """The note template: the vault's override if there is one, else the packaged default."""
    if vault is not None:
        override = vault / ".summarizer" / "templates" / NOTE_TEMPLATE
        if override.is_file():
            return override.read_text(encoding="utf-8")
    return files("summarizer.templates").joinpath(NOTE_TEMPLATE).read_text(encoding="utf-8")


def template_version(template_text: str) -> str:
    return hashlib.sha256(template_text.encode("utf-8")).hexdigest()[:12]


def account_key(note: MeetingNote) -> str:
    """The frontmatter key naming who the meeting is with: `person` for people notes."""
    return "person" if note.note_type == "people" else "account"


def note_tags(note: MeetingNote) -> list[str]:
    tags: list[str] = []
    if note.account_category:
        tags.append(f"type/{note.account_category}")
    if note.account and slugify(link_target(note.account)):
        tags.append(f"account/{slugify(link_target(note.account))}")
    tags.extend(t for t in note.tags if t not in tags)
    return tags


def frontmatter(note: MeetingNote) -> dict[str, Any]:
    title = one_line(note.title).replace("[[", "[").replace("]]", "]")
    data: dict[str, Any] = {"type": note.note_type, "title": title}
    if note.date:
        data["date"] = note.date.isoformat()
    if note.account:
        data[account_key(note)] = link_target(note.account)
    data["participants"] = [one_line(p) for p in note.participants]
    data["source"] = "transcript"
    data["source_ref"] = note.source_ref
    if SOURCE_NAME_KEY in note.extra_frontmatter:
        data[SOURCE_NAME_KEY] = note.extra_frontmatter[SOURCE_NAME_KEY]
    data["tags"] = note_tags(note)
    for key, value in note.extra_frontmatter.items():
        data.setdefault(key, value)
    return data


def dump_frontmatter(data: dict[str, Any]) -> str:
    import yaml  # not on the way to a first request

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def source_link(source_ref: str, source_name: str) -> str:
    """`[[path.md|name]]`: the transcript's vault path and its file name as display text."""
    path = source_ref.replace("|", " ").replace("[", "(").replace("]", ")")
    name = source_name.replace("|", " ").replace("[", "(").replace("]", ")")
    return f"[[{path}|{name}]]"


def _bullets(items: list[str], flagged: list[bool] | None = None) -> str:
    lines = []
    for index, item in enumerate(items):
        text = inline(item)
        if text:
            flag = f" {UNVERIFIED_TAG}" if flagged and flagged[index] else ""
            lines.append(f"- {text}{flag}")
    return "\n".join(lines) if lines else EMPTY_SECTION


def _account(note: MeetingNote) -> str:
    """A link when the vault has a note for the account, plain text otherwise (never a dangling link)."""
    if not note.account:
        return ""
    return wikilink(note.account) if note.account_linked else inline(note.account)


def _task_line(task: Task, tags: str) -> str:
    if task.supported is False:
        tags = f"{tags} {UNVERIFIED_TAG}".strip()
    return format_task(task, tags)


def render_note(note: MeetingNote, template_text: str | None = None, task_tags: str = "#task #proposed") -> str:
    """Render a note; the same MeetingNote always gives the same bytes."""
    text = template_text if template_text is not None else load_note_template()
    template = compile_template(text, keep_trailing_newline=True)
    account = _account(note)
    tasks = [_task_line(t, task_tags) for t in note.action_items if inline(t.text)]
    related = [wikilink(r) for r in note.related if link_target(r)]
    return template.render(
        frontmatter=dump_frontmatter(frontmatter(note)),
        title=inline(note.title),
        date=note.date.isoformat() if note.date else UNKNOWN_DATE,
        account=account or EMPTY_SECTION.strip("_").rstrip("."),
        attendees=", ".join(inline(p) for p in note.participants) or "None",
        summary=inline(note.summary) or EMPTY_SECTION,
        action_items="\n".join(tasks) if tasks else EMPTY_SECTION,
        decisions=_bullets([d.text for d in note.decisions], [d.supported is False for d in note.decisions]),
        key_information=_bullets(note.key_information),
        source_link=source_link(note.source_ref, note.source_name),
        related="\n".join(f"- {r}" for r in related) if related else EMPTY_SECTION,
        note=note,
    )
