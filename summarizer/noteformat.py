"""The note format in one place: which sections a note has, in what order, under which headings,
how its Source line reads and what its files are called; and the three things done with it:
render, parse and relink.

Everything is derived from the active template (the packaged one, or the vault's override in
`.summarizer/templates/`): a template that renames `## Summary` to `## Overview`, or puts
Decisions before Action Items, is read, regenerated and merged under its own headings. A note
written under the packaged headings (before the override) is still understood, and `conform`
brings it under the active ones before a merge, so the merge never keeps both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from summarizer.noteparse import FENCE, parse_note, sections, split_note
from summarizer.render import SOURCE_NAME_KEY, dump_frontmatter, load_note_template, render_note, source_link

if TYPE_CHECKING:
    from summarizer.models import MeetingNote

NOTE_SUFFIX = ".md"
# The sections a note has, by the template field that fills each.
ROLES = ("summary", "action_items", "decisions", "key_information", "related")
_HEADING = re.compile(r"^## (?P<name>.+?)\s*$")
_FIELD = re.compile(r"\{\{-?\s*(?P<name>\w+)")
_SOURCE_FIELD = "source_link"
# What an Obsidian wikilink cannot hold (`|` display text, `#` heading, `^` block, `[[ ]]`, a
# colon, a backslash, a line break); `linkable_filename` replaces them in archived transcripts.
_UNLINKABLE = re.compile(r"[#|^\\:\x00-\x1f\x7f\u2028\u2029]")
_UNLINKABLE_RUN = re.compile(r" *(?:[#|^\\:\x00-\x1f\x7f\u2028\u2029] *)+")


@dataclass(frozen=True)
class NoteFormat:
    """A note template's layout: role -> heading (in template order) and the Source line's frame."""

    template: str
    headings: dict[str, str] = field(default_factory=dict)
    source_prefix: str = "*Source: "
    source_suffix: str = "*"

    @classmethod
    def from_template(cls, template: str) -> NoteFormat:
        return _parse_template(template)

    # ------------------------------------------------------------------ reading the layout

    @property
    def order(self) -> list[str]:
        """Roles in the order the template places them."""
        return list(self.headings)

    def names_for(self, role: str) -> tuple[str, ...]:
        """Headings that mean `role`: the active one first, then the packaged one (older notes)."""
        names = [self.headings[role]] if role in self.headings else []
        default = packaged().headings.get(role)
        if default and default not in names:
            names.append(default)
        return tuple(names)

    def role_of(self, heading: str) -> str | None:
        for role in ROLES:
            if heading in self.names_for(role):
                return role
        return None

    def source_line(self, source_ref: str) -> str:
        return f"{self.source_prefix}{source_link(source_ref, PurePosixPath(source_ref).stem)}{self.source_suffix}"

    def source_link(self, body: str) -> tuple[str, str | None] | None:
        """The body's Source link target and display name, if it has such a line."""
        pattern = re.compile(
            "^" + re.escape(self.source_prefix) + r"\[\[(?P<target>[^\]|]*)(?:\|(?P<name>[^\]]*))?\]\]"
            + re.escape(self.source_suffix) + r"\s*$"
        )
        for line in body.split("\n"):
            match = pattern.match(line)
            if match:
                return match["target"], match["name"]
        return None

    # ------------------------------------------------------------------ render, parse, relink

    def render(self, note: MeetingNote, task_tags: str = "#task #proposed") -> str:
        return render_note(note, self.template, task_tags)

    def parse(self, text: str, *, task_tags: str = "#task #proposed", where: str | None = None) -> MeetingNote:
        """A note back into the MeetingNote that renders it, reading each section under its names."""
        return parse_note(
            text,
            task_tags=task_tags,
            where=where,
            headings={role: self.names_for(role) for role in ROLES},
            source=self.source_link,
        )

    def relink(self, text: str, source_ref: str, source_name: str | None = None) -> str:
        """Point the frontmatter `source_ref` and the body's Source line at `source_ref`; with
        `source_name` (the transcript's original file name, when it was archived under a linkable
        one), also record that name as `source_name` right after `source_ref`.

        The frontmatter is re-dumped only when a value changes, so an untouched note keeps its bytes.
        """
        split = split_note(text)
        head = text[: len(text) - len(split.body)]
        data = dict(split.data)
        data["source_ref"] = source_ref
        if source_name is not None and source_name != PurePosixPath(source_ref).name:
            data = with_source_name(data, source_name)
        if data != split.data:
            head = f"{FENCE}\n{dump_frontmatter(data)}{FENCE}\n"
        lines = split.body.split("\n")
        for index, line in enumerate(lines):
            if self.source_link(line) is not None:
                lines[index] = self.source_line(source_ref)
                break
        return head + "\n".join(lines)

    def conform(self, text: str, *, reorder: bool = True) -> str:
        """The note under the active headings, its known sections in the template's order (other
        sections stay where they are). A note already in this format comes back unchanged."""
        split = split_note(text)
        head = text[: len(text) - len(split.body)]
        parts = sections(split.body)
        renamed: list[tuple[str, list[str]]] = [parts[0]]
        roles: list[str | None] = []
        for heading, lines in parts[1:]:
            role = self.role_of(heading)
            roles.append(role)
            renamed.append((self.headings.get(role, heading) if role else heading, lines))
        if reorder:
            slots = [i for i, role in enumerate(roles) if role in self.headings]
            placed = sorted(slots, key=lambda i: self.order.index(roles[i] or ""))
            body = list(renamed[1:])
            for slot, source in zip(slots, placed, strict=True):
                body[slot] = renamed[1 + source]
            renamed = [renamed[0], *body]
        chunks = ["\n".join(renamed[0][1])] + ["\n".join([f"## {h}", *lines]) for h, lines in renamed[1:]]
        return head + "\n".join(chunks)

    def role_order(self, text: str) -> list[str]:
        """The roles of a note's known sections, in the order the note has them."""
        found = [self.role_of(h) for h, _ in sections(split_note(text).body)[1:]]
        return [r for r in found if r is not None]


def linkable_filename(name: str) -> str:
    """A file name a wikilink can point at: `[`/`]` become `(`/`)`, and each run of the other
    characters a link cannot hold (`# | ^ : \\`, line breaks, control characters), with the
    spaces around it, one space. A linkable name comes back unchanged."""
    path = PurePosixPath(name)
    stem, suffix = (path.stem, path.suffix) if _UNLINKABLE.search(path.suffix) is None else (name, "")

    stem = re.sub(r"%{2,}", "%", stem.replace("[", "(").replace("]", ")"))  # `%%` opens an Obsidian comment
    stem = _UNLINKABLE_RUN.sub(" ", stem)
    if stem != stem.strip() and _UNLINKABLE.search(name):
        stem = stem.strip()
    return (stem or "transcript") + suffix


def is_linkable(name: str) -> bool:
    return linkable_filename(name) == name


def with_source_name(data: dict[str, object], source_name: str) -> dict[str, object]:
    """Frontmatter with `source_name` set, placed right after `source_ref` (as the renderer places it)."""
    out: dict[str, object] = {}
    for key, value in data.items():
        if key == SOURCE_NAME_KEY:
            continue
        out[key] = value
        if key == "source_ref":
            out[SOURCE_NAME_KEY] = source_name
    out.setdefault(SOURCE_NAME_KEY, source_name)
    return out


def _parse_template(template: str) -> NoteFormat:
    headings: dict[str, str] = {}
    heading: str | None = None
    prefix, suffix = "*Source: ", "*"
    for line in template.split("\n"):
        match = _HEADING.match(line)
        if match:
            heading = match["name"]
            continue
        for found in _FIELD.finditer(line):
            name = found["name"]
            if name in ROLES and heading is not None and name not in headings:
                headings[name] = heading
            if name == _SOURCE_FIELD:
                start = line.index("{{")
                end = line.index("}}", start) + 2
                prefix, suffix = line[:start], line[end:]
    return NoteFormat(template, headings, prefix, suffix)


@cache
def packaged() -> NoteFormat:
    """The packaged template's format (what notes made without an override use)."""
    return _parse_template(load_note_template())


def for_template(template: str) -> NoteFormat:
    return _cached(template)


@cache
def _cached(template: str) -> NoteFormat:
    return _parse_template(template)


__all__ = [
    "NOTE_SUFFIX",
    "ROLES",
    "NoteFormat",
    "for_template",
    "is_linkable",
    "linkable_filename",
    "packaged",
    "with_source_name",
]
