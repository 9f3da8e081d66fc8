"""Three-way merge of a regenerated note with the person's edits.

base is the text we generated last time, theirs the note on disk (the person's
version), ours the new render. The person's work always wins over the machine's:

- frontmatter, key by key: a key they added or changed keeps their value (a list
  they changed, such as tags, gets their additions and removals applied to the new
  list), a key they deleted stays deleted, every other key takes the new value;
- body, section by section (`## ` headings) and line by line inside a section:
  a generated line they left alone takes the new run's version of it, or goes if
  the new run no longer produces it; a line they edited stays as they wrote it
  (tasks merge field by field: status, ✅/❌ dates, text, owner, due date,
  priority and tags they changed are theirs, the rest is the new run's); a line or
  section they added stays where they put it; a line they deleted stays deleted.

Generated lines are matched across versions exactly first (difflib), then by
similarity (rapidfuzz), so a task the new model words differently still finds the
task the person ticked; a prose line (a summary paragraph, a heading, a `**Field**:`
line) rewritten beyond recognition still pairs with the one it replaced, by
position among lines of its kind. So a summary the person rewrote is theirs alone,
never their paragraph and the new one run together; `kept` collects what the new
run wrote there instead, for `--dry-run` to show.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rapidfuzz import fuzz, utils

from summarizer.noteparse import FENCE, sections, split_note
from summarizer.render import EMPTY_SECTION, dump_frontmatter
from summarizer.tasks import ParsedTask, parse_task

TASK_SIMILARITY = 70.0  # rapidfuzz token_set_ratio of task texts (0-100) to count as the same task
LINE_SIMILARITY = 60.0  # rapidfuzz ratio of other lines to count as the same line, edited

K = TypeVar("K", bound=Hashable)

# Where the Tasks plugin's own serializer puts the fields we never write ourselves.
_OTHER_FIELDS = (
    "recurrence",
    "on_completion",
    "created",
    "start",
    "scheduled",
    "cancelled",
    "done",
    "id",
    "depends_on",
)
_FIELD_EMOJI = {
    "recurrence": "🔁",
    "on_completion": "🏁",
    "created": "➕",
    "start": "🛫",
    "scheduled": "⏳",
    "cancelled": "❌",
    "done": "✅",
    "id": "🆔",
    "depends_on": "⛔",
}


@dataclass(frozen=True)
class KeptEdit:
    """A prose line the person edited, kept over what the new run wrote in its place."""

    section: str  # the `## ` heading, "" before the first
    theirs: str
    ours: str


def merge_note(base: str, theirs: str, ours: str, kept: list[KeptEdit] | None = None) -> str:
    """The new note: `ours`, with everything the person changed between `base` and `theirs` kept.

    `kept`, when given, receives each edited prose line kept over a different new one.
    """
    if theirs == base:
        return ours
    if ours == base:
        return theirs
    b, t, o = split_note(base, "base"), split_note(theirs, "note"), split_note(ours, "new note")
    data = merge_mapping(b.data, t.data, o.data)
    return f"{FENCE}\n{dump_frontmatter(data)}{FENCE}\n{merge_body(b.body, t.body, o.body, kept)}"


def describe_kept(kept: Sequence[KeptEdit], where: str) -> str:
    """For `--dry-run`: what the new run would have written where the person's edit was kept."""
    out: list[str] = []
    for edit in kept:
        section = f"## {edit.section}" if edit.section else "the note's header"
        out.append(f"{where}: kept your edit in {section}; the new run wrote:\n    {edit.ours}\n")
    return "".join(out)


# --------------------------------------------------------------------------- frontmatter


def ordered_union(theirs: Sequence[K], ours: Sequence[K]) -> list[K]:
    """Their order, with each of ours that they lack placed after its predecessor in ours."""
    out = list(theirs)
    for index, key in enumerate(ours):
        if key in out:
            continue
        before = [k for k in ours[:index] if k in out]
        out.insert(out.index(before[-1]) + 1 if before else 0, key)
    return out


def merge_list(base: list[Any], theirs: list[Any], ours: list[Any]) -> list[Any]:
    """The new list plus what they added, minus what they removed."""
    added = [x for x in theirs if x not in base]
    removed = [x for x in base if x not in theirs]
    out = [x for x in ours if x not in removed]
    return out + [x for x in added if x not in out]


def merge_mapping(base: dict[str, Any], theirs: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """Frontmatter keys: theirs where they added or changed one, gone where they deleted one, else ours."""
    out: dict[str, Any] = {}
    for key in ordered_union(list(theirs), list(ours)):
        if key in theirs and (key not in base or theirs[key] != base[key]):
            if key in base and key in ours and all(isinstance(d[key], list) for d in (base, theirs, ours)):
                out[key] = merge_list(base[key], theirs[key], ours[key])
            else:
                out[key] = theirs[key]
        elif key in ours and (key in theirs or key not in base):
            out[key] = ours[key]
    return out


# --------------------------------------------------------------------------- body


def _keyed(body: str) -> dict[tuple[str, int], list[str]]:
    """Sections by (heading, occurrence): a heading used twice is two sections."""
    out: dict[tuple[str, int], list[str]] = {}
    for heading, lines in sections(body):
        n = sum(1 for h, _ in out if h == heading)
        out[(heading, n)] = lines
    return out


def merge_body(base: str, theirs: str, ours: str, kept: list[KeptEdit] | None = None) -> str:
    b, t, o = _keyed(base), _keyed(theirs), _keyed(ours)
    chunks: list[str] = []
    for key in ordered_union(list(t), list(o)):
        if key in t:
            section_kept: list[tuple[str, str]] = []
            lines = merge_lines(b.get(key, []), t[key], o.get(key, []), section_kept)
            if kept is not None:
                kept.extend(KeptEdit(key[0], mine, new) for mine, new in section_kept)
            if key not in o and key in b and not any(line.strip() for line in lines):
                continue  # a generated section the new run dropped, and they never touched
        elif key in b:
            continue  # they deleted the section
        else:
            lines = o[key]
        heading = key[0]
        chunks.append("\n".join(([f"## {heading}"] if heading else []) + lines))
    return "\n".join(chunks)


@dataclass
class _Pairing:
    """Which line of a version is which base line: exact copies and similar (edited) ones."""

    to_base: dict[int, int] = field(default_factory=dict)
    edited: set[int] = field(default_factory=set)

    def from_base(self) -> dict[int, int]:
        return {b: i for i, b in self.to_base.items()}


def _task_text(parsed: ParsedTask) -> str:
    return parsed.split_owner()[0]


def _similarity(a: str, b: str) -> float:
    ta, tb = parse_task(a), parse_task(b)
    if ta is not None and tb is not None:
        score = float(fuzz.token_set_ratio(_task_text(ta), _task_text(tb), processor=utils.default_process))
        return score if score >= TASK_SIMILARITY else 0.0
    if ta is not None or tb is not None or not a.strip() or not b.strip():
        return 0.0
    score = float(fuzz.ratio(a, b, processor=utils.default_process))
    return score if score >= LINE_SIMILARITY else 0.0


_LIST_ITEM = re.compile(r"\s*(?:[-*+]|\d+[.)])\s")
_FIELD = re.compile(r"\*\*([^*]+)\*\*:")


def _prose_kind(line: str) -> str | None:
    """What kind of prose line this is (a paragraph, a heading level, a `**Field**:`), None for the
    rest: list items and tasks pair only by their text, blank lines and rules never."""
    text = line.strip()
    if not text or text == "---" or _LIST_ITEM.match(line):
        return None
    if text.startswith("#"):
        return text.split(" ", 1)[0]
    field_match = _FIELD.match(text)
    return f"field:{field_match[1]}" if field_match else "paragraph"


def pair_lines(base: list[str], other: list[str]) -> _Pairing:
    """Exact matches in order first (difflib), then the most similar remaining pairs, then prose
    lines that replaced prose lines of the same kind, in order."""
    pairing = _Pairing()
    matcher = difflib.SequenceMatcher(None, base, other, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            pairing.to_base[block.b + k] = block.a + k
    free_base = [i for i in range(len(base)) if i not in pairing.from_base()]
    free_other = [j for j in range(len(other)) if j not in pairing.to_base]
    scored = [
        (score, -abs(i - j), i, j)
        for i in free_base
        for j in free_other
        if (score := _similarity(base[i], other[j])) > 0
    ]
    used_base: set[int] = set()
    for _score, _distance, i, j in sorted(scored, reverse=True):
        if i in used_base or j in pairing.to_base:
            continue
        used_base.add(i)
        pairing.to_base[j] = i
        pairing.edited.add(j)
    taken = pairing.from_base()
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "replace":
            continue
        free_b: dict[str, list[int]] = {}
        for i in range(i1, i2):
            if i not in taken and (kind := _prose_kind(base[i])) is not None:
                free_b.setdefault(kind, []).append(i)
        free_o: dict[str, list[int]] = {}
        for j in range(j1, j2):
            if j not in pairing.to_base and (kind := _prose_kind(other[j])) is not None:
                free_o.setdefault(kind, []).append(j)
        for kind, bases in free_b.items():
            for i, j in zip(bases, free_o.get(kind, []), strict=False):
                pairing.to_base[j] = i
                pairing.edited.add(j)
    return pairing


def _dropped_anchor(base: list[str], ours: list[str]) -> dict[int, int]:
    """For each base line the new run dropped, the index in ours it gave way to (-1: the start)."""
    anchor: dict[int, int] = {}
    matcher = difflib.SequenceMatcher(None, base, ours, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            for i in range(i1, i2):
                anchor[i] = (j2 if tag == "replace" else j1) - 1
    return anchor


def merge_lines(
    base: list[str], theirs: list[str], ours: list[str], kept: list[tuple[str, str]] | None = None
) -> list[str]:
    """One section: the new lines, with the person's edits, additions and deletions kept.

    `kept` receives (their line, the new line) for each edited prose line kept over a new one.
    """
    t_pair, o_pair = pair_lines(base, theirs), pair_lines(base, ours)
    t_of_base, o_of_base = t_pair.from_base(), o_pair.from_base()
    out: list[str] = []
    out_of_ours: dict[int, int] = {}  # index in ours -> position in out (or the last one before it)
    placed: dict[int, int] = {}  # index in theirs -> position in out after which its followers go
    for j, line in enumerate(ours):
        b = o_pair.to_base.get(j)
        t = t_of_base.get(b) if b is not None else None
        if b is not None and t is None:
            out_of_ours[j] = len(out) - 1  # they deleted this generated line: it stays deleted
            continue
        if t is not None and t in t_pair.edited and b is not None:
            new = line
            line = merge_line(base[b], theirs[t], line)
            if kept is not None and line == theirs[t] and new not in (theirs[t], base[b]) and _prose_kind(new):
                kept.append((theirs[t], new))
        out.append(line)
        out_of_ours[j] = len(out) - 1
        if t is not None:
            placed[t] = len(out) - 1

    dropped = _dropped_anchor(base, ours)
    after: dict[int, list[str]] = {}
    anchor = -1
    for t, line in enumerate(theirs):
        if t in placed:
            anchor = placed[t]
            continue
        b = t_pair.to_base.get(t)
        if b is not None and b not in o_of_base and t not in t_pair.edited:
            at = dropped.get(b, -1)
            anchor = max(anchor, out_of_ours.get(at, -1)) if at >= 0 else anchor
            continue  # generated, untouched, and no longer generated: it goes
        after.setdefault(anchor, []).append(line)

    merged = after.get(-1, [])[:]
    for position, line in enumerate(out):
        merged.append(line)
        merged.extend(after.get(position, []))
    return _drop_stale_placeholder(merged)


def _drop_stale_placeholder(lines: list[str]) -> list[str]:
    """`_None._` next to list items (a kept task in a section the new run left empty) is wrong: drop it."""

    def is_item(k: int) -> bool:
        return 0 <= k < len(lines) and lines[k].lstrip().startswith(("- ", "* "))

    return [line for k, line in enumerate(lines) if not (line == EMPTY_SECTION and (is_item(k - 1) or is_item(k + 1)))]


# --------------------------------------------------------------------------- one edited line


@dataclass
class _TaskParts:
    indent: str
    status: str
    text: str
    owner: str | None
    tags: list[str]
    fields: dict[str, str]

    @classmethod
    def of(cls, parsed: ParsedTask) -> _TaskParts:
        text, owner = parsed.split_owner()
        return cls(parsed.indent, parsed.status, text, owner, list(parsed.tags), dict(parsed.fields))

    def render(self) -> str:
        parts = [f"{self.indent}- [{self.status}]", self.text]
        if self.owner:
            parts.append(f"@{self.owner}")
        if "due" in self.fields:
            parts.append(f"📅 {self.fields['due']}")
        if "priority" in self.fields:
            parts.append(self.fields["priority"])
        parts.extend(self.tags)
        parts.extend(f"{_FIELD_EMOJI[name]} {self.fields[name]}" for name in _OTHER_FIELDS if name in self.fields)
        return " ".join(p for p in parts if p)


def merge_line(base: str, theirs: str, ours: str) -> str:
    """A generated line the person edited: theirs, or for a task, their fields on the new task."""
    pb, pt, po = parse_task(base), parse_task(theirs), parse_task(ours)
    if pb is None or pt is None or po is None:
        return theirs
    b, t, o = _TaskParts.of(pb), _TaskParts.of(pt), _TaskParts.of(po)
    merged = _TaskParts(
        indent=t.indent if t.indent != b.indent else o.indent,
        status=t.status if t.status != b.status else o.status,
        text=t.text if t.text != b.text else o.text,
        owner=t.owner if t.owner != b.owner else o.owner,
        tags=merge_list(b.tags, t.tags, o.tags) if t.tags != b.tags else o.tags,
        fields={},
    )
    for name in ordered_union(list(t.fields), list(o.fields)):
        changed = t.fields.get(name) != b.fields.get(name)
        value = t.fields.get(name) if changed else o.fields.get(name)
        if value is not None:
            merged.fields[name] = value
    if merged == t:
        return theirs
    if merged == o:
        return ours
    return merged.render()
