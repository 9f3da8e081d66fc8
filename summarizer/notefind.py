"""Finding our notes wherever the person moved or renamed them.

The state store records each note under the path it was written at, but in Obsidian notes get
renamed and moved. A note is still recognised by what it says: its frontmatter `source_ref` (the
transcript it was made from, whose content hash the store also keeps) and how close its text is to
the text we generated last time. When a note is found at a new path, its record follows it
(`Store.move_note`), so the next look-up is direct.

`summarise` and the inbox use `notes_for_transcript` (one transcript, one note); `regenerate` uses
`record_for_moved` (a renamed note keeps its merge base, so every edit survives).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from summarizer.errors import VaultError
from summarizer.store import NoteRecord, Store
from summarizer.vault import Vault

# With several candidates, the chosen one must be at least this similar to the stored text.
SIMILAR = 0.5


@dataclass(frozen=True)
class FoundNote:
    record: NoteRecord
    path: Path


def is_regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def walk_notes(root: Path) -> Iterator[Path]:
    """Every `.md` file in the vault, skipping hidden files and folders (.obsidian, .summarizer, .git)."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            # Only regular files: reading a FIFO named *.md would block the run forever.
            if name.lower().endswith(".md") and not name.startswith(".") and is_regular_file(path):
                yield path


def similarity(a: str, b: str) -> float:
    """0..1: how alike two note texts are."""
    from rapidfuzz import fuzz

    return float(fuzz.ratio(a, b)) / 100.0


def _recorded_path(vault: Vault, record: NoteRecord) -> Path | None:
    """The record's note, if it is still at its recorded path."""
    try:
        path = vault.inside(record.note_path)
    except VaultError:
        return None
    return path if path.is_file() else None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _best(record: NoteRecord, candidates: list[Path], texts: dict[Path, str]) -> Path | None:
    """The candidate nearest the record's stored text: the only one, or the best of several if similar enough."""
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    if not record.rendered:
        return None  # several notes and nothing to tell them apart by
    rendered = record.rendered
    scored = sorted(((similarity(rendered, texts[c]), c) for c in candidates), key=lambda sc: -sc[0])
    score, chosen = scored[0]
    return chosen if score >= SIMILAR else None


def _moved_notes(store: Store, vault: Vault, records: list[NoteRecord], follow: bool) -> list[FoundNote]:
    """Where notes no longer at their recorded paths went: vault notes with no record of their own
    whose `source_ref` is the record's, the nearest to its stored text. With `follow`, each record
    moves with its note."""
    from summarizer.vault_index import read_frontmatter

    wanted = {r.source_ref for r in records if r.source_ref}
    if not wanted:
        return []
    by_ref: dict[str, list[Path]] = {}
    for path in walk_notes(vault.root):
        try:
            data = read_frontmatter(path)
        except OSError:
            continue
        ref = data.get("source_ref") if data else None
        if isinstance(ref, str) and ref in wanted and store.note_record(vault.relative(path)) is None:
            by_ref.setdefault(ref, []).append(path)
    found: list[FoundNote] = []
    taken: set[Path] = set()
    texts: dict[Path, str] = {}
    for record in records:
        candidates = [p for p in by_ref.get(record.source_ref or "", []) if p not in taken]
        for path in candidates:
            texts.setdefault(path, _read(path))
        chosen = _best(record, candidates, texts)
        if chosen is None:
            continue
        taken.add(chosen)
        if follow:
            store.move_note(record.note_path, vault.relative(chosen))
        found.append(FoundNote(record, chosen))
    return found


def notes_for_transcript(store: Store, vault: Vault, transcript_hash: str, *, follow: bool = True) -> list[FoundNote]:
    """Every note of ours made from this transcript content that still exists, wherever it was
    moved (with `follow`, its record follows it), the most recent first."""
    records = store.note_records_for_transcript(transcript_hash)
    found: list[FoundNote] = []
    missing: list[NoteRecord] = []
    for record in records:
        path = _recorded_path(vault, record)
        if path is None:
            missing.append(record)
        else:
            found.append(FoundNote(record, path))
    if missing:
        moved = {f.record.note_path: f for f in _moved_notes(store, vault, missing, follow)}
        found = [*found, *(moved[r.note_path] for r in missing if r.note_path in moved)]
        order = {r.note_path: i for i, r in enumerate(records)}
        found.sort(key=lambda f: order[f.record.note_path])
    return found


def record_for_moved(
    store: Store,
    vault: Vault,
    text: str,
    refs: Iterable[str],
    transcript_hash: str | None = None,
    *,
    confirm: bool = False,
) -> NoteRecord | None:
    """The record of a note the person moved or renamed (its text is `text`): a record whose note is
    no longer at its recorded path, made from the same transcript (one of `refs`, the note's
    `source_ref` and Source link, else `transcript_hash`); of several (or with `confirm`, even of
    one), the nearest to `text` if it is similar enough.

    Nothing is changed: the caller moves the record (`Store.move_note`) when it writes.
    """
    records = store.note_records_for_source(list(refs))
    if not records and transcript_hash:
        records = store.note_records_for_transcript(transcript_hash)
    gone = [r for r in records if _recorded_path(vault, r) is None]
    if not gone:
        return None
    if len(gone) == 1 and not confirm:
        return gone[0]
    scored = sorted(((similarity(r.rendered or "", text), i) for i, r in enumerate(gone)), key=lambda s: (-s[0], s[1]))
    score, index = scored[0]
    return gone[index] if score >= SIMILAR else None


__all__ = ["SIMILAR", "FoundNote", "notes_for_transcript", "record_for_moved", "similarity", "walk_notes"]
