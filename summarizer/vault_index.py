"""An index of the vault's notes: the names a meeting's people and organisations can link to.

Links only help when they point at notes that exist, so before linking we need every note's
name (its file stem, which is what `[[Name]]` resolves to), its folder, its frontmatter
`aliases` and `type`. Vaults get large (10,000+ notes) and a run should not re-read them all,
so the index is cached by path with each file's `mtime_ns` and size, and only the frontmatter
of changed notes is read (a few KB at most, stopping at the closing `---`).

A cache entry is only trusted when the file's mtime is safely older than the scan that wrote it
(the "racy" rule git uses for its index): a note edited in the same clock tick as the scan could
otherwise keep its old size and mtime and be missed forever.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

NoteKind = Literal["person", "organisation", "project", "meeting", "other"]

CACHE_VERSION = 2  # 2: entries carry the note's organisation
DEFAULT_CACHE_NAME = ".summarizer/index-cache.json"
HEAD_BYTES = 4096  # one read usually holds the whole frontmatter
MAX_FRONTMATTER_BYTES = 64 * 1024  # give up on "frontmatter" that never closes
RACY_NS = 1_000_000_000  # entries this close to the scan are re-read next time

# A closing fence: `---` or `...` alone on a line.
_CLOSE_RE = re.compile(rb"\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|$)")
_OPEN_RE = re.compile(rb"\A(?:\xef\xbb\xbf)?---[ \t]*\r?\n")


# Frontmatter keys only meeting notes carry: they are never people or organisations.
_MEETING_KEYS = frozenset({"source_ref", "participants", "attendees"})
_PERSON_TYPES = frozenset({"person", "people", "contact"})
_ORG_TYPES = frozenset(
    {
        "organisation",
        "organization",
        "organisations",
        "organizations",
        "company",
        "companies",
        "org",
        "account",
        "customer",
        "partner",
        "vendor",
    }
)
# Frontmatter keys naming the organisation a person belongs to, first found wins.
_ORG_KEYS = ("company", "organisation", "organization", "org", "employer")
_PROJECT_TYPES = frozenset({"project"})
_PERSON_FOLDERS = frozenset({"people", "person", "persons", "contacts"})
_ORG_FOLDERS = frozenset(
    {
        "companies",
        "company",
        "organisations",
        "organizations",
        "orgs",
        "accounts",
        "customers",
        "partners",
        "vendors",
    }
)
_PROJECT_FOLDERS = frozenset({"projects"})


@dataclass(frozen=True, slots=True)
class IndexedNote:
    """One note as linking sees it: `name` is the link target, `kind` decides which rules apply."""

    name: str  # file stem: what `[[name]]` resolves to
    folder: str  # vault-relative POSIX folder, "" at the vault root
    aliases: tuple[str, ...] = ()
    type: str | None = None
    kind: NoteKind = "other"
    org: str | None = None  # a person's organisation (`company:` etc.), as written, link brackets stripped

    @property
    def path(self) -> str:
        """Vault-relative POSIX path of the note."""
        return f"{self.folder}/{self.name}.md" if self.folder else f"{self.name}.md"

    @classmethod
    def from_frontmatter(cls, rel_path: str, frontmatter: Mapping[str, object] | None) -> IndexedNote:
        """Build from a vault-relative path and parsed frontmatter (used for stubs too)."""
        folder, _, filename = rel_path.rpartition("/")
        name = filename[:-3] if filename.lower().endswith(".md") else filename
        fm = frontmatter or {}
        aliases = _aliases(fm.get("aliases", fm.get("alias")))
        raw_type = fm.get("type")
        type_ = str(raw_type).strip() if isinstance(raw_type, str | int | float) and raw_type != "" else None
        return cls(name, folder, aliases, type_, classify(folder, type_, fm.keys()), _org(fm))


@dataclass(slots=True)
class IndexStats:
    """What a build did: lets tests and `--explain` show that the cache works."""

    scanned: int = 0  # notes found
    read: int = 0  # notes whose frontmatter was read (cache miss)
    cached: int = 0  # notes taken from the cache
    removed: int = 0  # cache entries for notes that are gone
    cache_written: bool = False
    seconds: float = 0.0


def classify(folder: str, type_: str | None, keys: Iterable[str] = ()) -> NoteKind:
    """Guess what a note is about from its frontmatter, then its folder.

    Meeting notes come first because this vault's meeting types (`people`, `customer`) overlap
    with words that elsewhere mean a person or an organisation.
    """
    if _MEETING_KEYS.intersection(keys):
        return "meeting"
    t = (type_ or "").casefold()
    if t in _PERSON_TYPES:
        return "person"
    if t in _ORG_TYPES:
        return "organisation"
    if t in _PROJECT_TYPES:
        return "project"
    segments = {s.casefold() for s in folder.split("/") if s}
    if segments & _PERSON_FOLDERS:
        return "person"
    if segments & _ORG_FOLDERS:
        return "organisation"
    if segments & _PROJECT_FOLDERS:
        return "project"
    return "other"


def _aliases(value: object) -> tuple[str, ...]:
    """`aliases` may be a list or a single string (Obsidian accepts both)."""
    items: Iterable[object]
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list | tuple):
        items = value
    else:
        return ()
    out: dict[str, None] = {}
    for item in items:
        if isinstance(item, str | int | float) and not isinstance(item, bool):
            text = " ".join(str(item).split())
            if text:
                out.setdefault(text, None)
    return tuple(out)


def _org(fm: Mapping[str, object]) -> str | None:
    """The organisation a note says it belongs to: `company: Northwind`, `"[[Northwind|NW]]"` or a list."""
    for key in _ORG_KEYS:
        value = fm.get(key)
        if isinstance(value, list | tuple):
            value = next((v for v in value if isinstance(v, str) and v.strip()), None)
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("[[") and text.endswith("]]"):
                text = text[2:-2].split("|", 1)[0]
            text = " ".join(text.split())
            if text:
                return text
    return None


def read_frontmatter(path: Path) -> dict[str, object] | None:
    """The note's YAML frontmatter, reading only as far as its closing fence.

    Returns None when there is none or it is not a mapping; broken YAML is treated as none so
    one bad note never stops a run (the note is still linkable by its name).
    """
    with path.open("rb") as fh:
        buf = fh.read(HEAD_BYTES)
        opening = _OPEN_RE.match(buf)
        if opening is None:
            return None
        start = opening.end() - 1  # keep the newline so an empty frontmatter closes at once
        while True:
            m = _CLOSE_RE.search(buf, start)
            at_eof = False
            if m is None or m.end() == len(buf):
                if len(buf) >= MAX_FRONTMATTER_BYTES:
                    return None
                more = fh.read(HEAD_BYTES)
                at_eof = not more
                buf += more
                if not at_eof:
                    continue
                m = _CLOSE_RE.search(buf, start)
                if m is None:
                    return None
            body = buf[opening.end() : m.start() + 1]
            break
    import yaml  # only once a note has to be read (the index cache spares it)

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # C: ~10x faster, where libyaml is there
    try:
        data = yaml.load(body.decode("utf-8", errors="replace"), Loader=loader)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _walk(vault: Path, exclude: Sequence[str]) -> Iterator[tuple[str, os.stat_result]]:
    """Vault-relative paths and stats of every `.md` note, skipping hidden and excluded folders."""
    excluded = {e.strip("/").casefold() for e in exclude if e.strip("/")}
    stack: list[tuple[str, str]] = [(str(vault), "")]
    while stack:
        abs_dir, rel_dir = stack.pop()
        try:
            it = os.scandir(abs_dir)
        except OSError:
            continue
        with it:
            for entry in it:
                if entry.name.startswith("."):
                    continue
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if rel.casefold() not in excluded:
                            stack.append((entry.path, rel))
                    elif entry.name.lower().endswith(".md") and stat.S_ISREG((st := entry.stat()).st_mode):
                        yield rel, st  # a FIFO or device named *.md would block the read: never a note
                except OSError:
                    continue


_Entry = tuple[int, int, tuple[str, ...], str | None, NoteKind, str | None]
_KINDS: frozenset[str] = frozenset({"person", "organisation", "project", "meeting", "other"})


def _entry_from_json(obj: object) -> _Entry | None:
    """A cache entry if it has the right shape; a damaged cache just means re-reading."""
    if not (isinstance(obj, list) and len(obj) == 6):
        return None
    mtime, size, aliases, type_, kind, org = obj
    if not (isinstance(mtime, int) and isinstance(size, int) and isinstance(aliases, list)):
        return None
    if not all(isinstance(a, str) for a in aliases) or not (type_ is None or isinstance(type_, str)):
        return None
    if kind not in _KINDS or not (org is None or isinstance(org, str)):
        return None
    return mtime, size, tuple(aliases), type_, kind, org


def _load_cache(cache_path: Path, vault_key: str) -> dict[str, object]:
    try:
        data = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or data.get("vault") != vault_key:
        return {}
    notes = data.get("notes")
    return notes if isinstance(notes, dict) else {}


def _save_cache(cache_path: Path, vault_key: str, notes: dict[str, list[object]]) -> bool:
    """Write atomically (temp file + rename) so a crash or a parallel run never leaves half a cache."""
    payload = json.dumps(
        {"version": CACHE_VERSION, "vault": vault_key, "notes": notes}, separators=(",", ":")
    )
    try:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".index-cache.", suffix=".tmp", dir=cache_path.parent)
    except OSError:
        return False  # read-only vault: work uncached rather than fail
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(payload)
        os.replace(tmp, cache_path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False
    return True


class VaultIndex:
    """Every note in the vault by name and alias. Build with `VaultIndex.build`."""

    def __init__(
        self, vault: Path, notes: Iterable[IndexedNote] = (), stats: IndexStats | None = None
    ) -> None:
        self.vault = vault
        self.notes: list[IndexedNote] = []
        self.stats = stats or IndexStats()
        self.version = 0  # bumped by `add`, so derived lookup tables know to rebuild
        self._by_path: dict[str, int] = {}
        self._by_name: dict[str, list[IndexedNote]] = {}
        self._by_alias: dict[str, list[IndexedNote]] = {}
        for note in notes:
            self._insert(note)

    @classmethod
    def build(
        cls,
        vault: Path,
        *,
        cache_path: Path | None,
        exclude: Sequence[str] = ("Inbox",),
    ) -> VaultIndex:
        """Scan the vault, reading frontmatter only for notes not already in the cache.

        `cache_path=None` disables caching; the usual place is `<vault>/.summarizer/index-cache.json`
        (`default_cache_path`). Hidden folders are always skipped; `exclude` lists vault-relative
        folders to skip as well (the inbox holds transcripts, not notes to link to).
        """
        started = time.time_ns()
        stats = IndexStats()
        vault_key = str(vault.resolve())
        cached = _load_cache(cache_path, vault_key) if cache_path is not None else {}
        fresh: dict[str, list[object]] = {}
        notes: list[IndexedNote] = []
        for rel, st in _walk(vault, exclude):
            stats.scanned += 1
            raw = cached.get(rel)
            # Compare the stat first: only a matching entry is worth validating.
            entry = (
                _entry_from_json(raw)
                if isinstance(raw, list) and raw[:2] == [st.st_mtime_ns, st.st_size]
                else None
            )
            if entry is not None:
                stats.cached += 1
                folder, _, filename = rel.rpartition("/")
                note = IndexedNote(filename[:-3], folder, entry[2], entry[3], entry[4], entry[5])
            else:
                stats.read += 1
                try:
                    fm = read_frontmatter(vault / rel)
                except OSError:
                    fm = None
                note = IndexedNote.from_frontmatter(rel, fm)
            notes.append(note)
            racy = st.st_mtime_ns >= started - RACY_NS
            fresh[rel] = [
                -1 if racy else st.st_mtime_ns,
                st.st_size,
                list(note.aliases),
                note.type,
                note.kind,
                note.org,
            ]
        stats.removed = sum(1 for rel in cached if rel not in fresh)
        if cache_path is not None and fresh != cached:
            stats.cache_written = _save_cache(cache_path, vault_key, fresh)
        notes.sort(key=lambda n: n.path)
        stats.seconds = (time.time_ns() - started) / 1e9
        return cls(vault, notes, stats)

    # ------------------------------------------------------------------ lookups

    @property
    def names(self) -> Mapping[str, list[IndexedNote]]:
        """Exact note name (file stem) -> the notes with it (usually one). Read-only."""
        return MappingProxyType(self._by_name)

    @property
    def aliases(self) -> Mapping[str, list[IndexedNote]]:
        """Exact frontmatter alias -> the notes declaring it. Read-only."""
        return MappingProxyType(self._by_alias)

    def get(self, name: str) -> IndexedNote | None:
        """The note called `name`, preferring the shortest path as Obsidian does."""
        found = self._by_name.get(name)
        return min(found, key=lambda n: (n.path.count("/"), n.path)) if found else None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self.notes)

    def add(self, note: IndexedNote) -> None:
        """Register a note created during this run (a stub) so later meetings link to it."""
        old = self._by_path.get(note.path)
        if old is not None:
            self._remove(self.notes[old])
            self.notes[old] = note
            self._by_path[note.path] = old
            self._index(note)
        else:
            self._insert(note)
        self.version += 1

    def _insert(self, note: IndexedNote) -> None:
        self._by_path[note.path] = len(self.notes)
        self.notes.append(note)
        self._index(note)

    def _index(self, note: IndexedNote) -> None:
        self._by_name.setdefault(note.name, []).append(note)
        for alias in note.aliases:
            self._by_alias.setdefault(alias, []).append(note)

    def _remove(self, note: IndexedNote) -> None:
        for table, key in [(self._by_name, note.name), *((self._by_alias, a) for a in note.aliases)]:
            bucket = table.get(key, [])
            if note in bucket:
                bucket.remove(note)
            if not bucket:
                table.pop(key, None)


def default_cache_path(vault: Path) -> Path:
    """Where the cache lives unless configured: inside the vault's hidden tool folder."""
    return vault / DEFAULT_CACHE_NAME
