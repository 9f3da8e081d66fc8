"""Action items in the Obsidian Tasks plugin's emoji format.

The plugin reads fields from the END of a line and stops at the first text it
does not recognise, so owners and free text go before the first signifier and
only signifiers and `#tags` after it. Tags, though, it reads ANYWHERE in the
description (`Task.extractHashtags`). `parse_task` follows the plugin's own
algorithm (DefaultTaskSerializer.deserialize, with JavaScript's idea of
whitespace, which includes U+FEFF) so that every line we write can be checked
to mean what we intended, and so edited notes can be read back.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from summarizer.markdown import task_text
from summarizer.models import Priority, Task

PRIORITY_EMOJI: dict[str, str] = {"highest": "🔺", "high": "⏫", "medium": "🔼", "low": "🔽", "lowest": "⏬"}
EMOJI_PRIORITY = {v: k for k, v in PRIORITY_EMOJI.items()}

# JavaScript's `\s` (what the plugin's regexes mean by a space); Python's lacks U+FEFF.
JS_SPACE = "\t\n\v\f\r \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000\ufeff"
_S = "[" + re.escape(JS_SPACE) + "]"
_TASK_LINE = re.compile(rf"^((?:{_S}|>)*)([-*+]|[0-9]+[.)]) +\[(.)\] *(.*)$")
_TAG_CHAR = r"[^ !@#$%^&*(),.?\":{}|<>]"
HASHTAG = re.compile(rf"(?:^|{_S})(#{_TAG_CHAR}+)")
_DATE = r"(\d{4}-\d{2}-\d{2})"
_VS = "\ufe0f?"
_FIELDS: list[tuple[str, re.Pattern[str]]] = [
    ("priority", re.compile("([🔺⏫🔼🔽⏬])" + _VS + "$")),
    ("done", re.compile("✅" + _VS + " *" + _DATE + "$")),
    ("cancelled", re.compile("❌" + _VS + " *" + _DATE + "$")),
    ("due", re.compile("[📅📆🗓]" + _VS + " *" + _DATE + "$")),
    ("scheduled", re.compile("[⏳⌛]" + _VS + " *" + _DATE + "$")),
    ("start", re.compile("🛫" + _VS + " *" + _DATE + "$")),
    ("created", re.compile("➕" + _VS + " *" + _DATE + "$")),
    ("recurrence", re.compile("🔁" + _VS + " *([a-zA-Z0-9, !]+)$")),
    ("on_completion", re.compile("🏁" + _VS + " *([a-zA-Z]+)$")),
    ("tag", re.compile(rf"(^|{_S})#{_TAG_CHAR}+$")),
    ("id", re.compile("🆔" + _VS + " *([a-zA-Z0-9-_]+)$")),
    ("depends_on", re.compile("⛔" + _VS + " *([a-zA-Z0-9-_]+( *, *[a-zA-Z0-9-_]+ *)*)$")),
]
_OWNER = re.compile(r"\s@(\S.*?)$")


@dataclass
class ParsedTask:
    """One checklist line as the Tasks plugin reads it."""

    indent: str
    status: str
    description: str  # without the trailing tags (the plugin appends them back to its description)
    tags: list[str] = field(default_factory=list)  # the trailing tags, cut from the end with the fields
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def all_tags(self) -> list[str]:
        """Every tag the plugin reads: `#tags` anywhere in the description, then the trailing ones."""
        return [*extract_hashtags(self.description), *self.tags]

    @property
    def due(self) -> dt.date | None:
        value = self.fields.get("due")
        try:
            return dt.date.fromisoformat(value) if value else None
        except ValueError:
            return None

    @property
    def priority(self) -> Priority:
        emoji = self.fields.get("priority")
        return EMOJI_PRIORITY.get(emoji, "none") if emoji else "none"  # type: ignore[return-value]

    def split_owner(self) -> tuple[str, str | None]:
        """Our lines end their description with `@Owner`: give text and owner apart."""
        match = _OWNER.search(self.description)
        if not match:
            return self.description.strip(), None
        return self.description[: match.start()].strip(), match.group(1).strip()


def extract_hashtags(text: str) -> list[str]:
    """The plugin's `Task.extractHashtags`: every `#tag` after the start or a (JavaScript) space."""
    return HASHTAG.findall(text)


def _js_trim(text: str) -> str:
    return text.strip(JS_SPACE)


def parse_task(line: str) -> ParsedTask | None:
    """Parse a checklist line the way the Tasks plugin does; None if it is not a task."""
    match = _TASK_LINE.match(line.rstrip("\n"))
    if not match:
        return None
    indent, _marker, status, body = match.groups()
    body = _js_trim(re.sub(r" \^[a-zA-Z0-9-]+$", "", body))
    fields: dict[str, str] = {}
    tags: list[str] = []
    for _ in range(21):
        matched = False
        for name, pattern in _FIELDS:
            found = pattern.search(body)
            if not found:
                continue
            matched = True
            if name == "tag":
                tags.insert(0, found.group(0).strip())
            else:
                fields[name] = found.group(1)
            body = _js_trim(body[: found.start()])
            break
        if not matched:
            break
    return ParsedTask(indent=indent, status=status, description=body, tags=tags, fields=fields)


def format_task(task: Task, tags: str = "#task #proposed") -> str:
    """The vault's own order: `- [?] text @Owner 📅 YYYY-MM-DD 🔺 #task #proposed`."""
    parts = [f"- [{task.status}]", task_text(task.text)]
    owner = task_text(task.owner) if task.owner else ""
    if owner:
        parts.append("@" + owner)
    if task.due:
        parts.append(f"📅 {task.due.isoformat()}")
    if task.priority != "none":
        parts.append(PRIORITY_EMOJI[task.priority])
    if tags:
        parts.append(tags)
    return " ".join(p for p in parts if p)
