"""The inbox journal's other half: finishing or undoing what a killed run left half done.

The journal (table `inbox_transcripts`, one row per content hash, kept by `summarizer.store`) is
written before each step acts:

    planned   note path, note text hash and archive path chosen; nothing written yet
    written   the note is on disk and recorded in `notes`
    done      the transcript is in the archive

A run killed at any point (kill -9) leaves at most: a stray `.tmp` next to a planned note, a note
whose transcript is still in the inbox, or a moved transcript whose row says `written`.
`Recovery.recover()` runs first on the next run, under the vault lock, and rolls each such row
forward (or back to "not started" when no note was written), so no transcript is lost and no note
is written twice. `SUMMARIZER_CRASH_AT=<step>:<n>` makes the n-th pass through a named step exit on
the spot with status 137, so tests can kill real runs at every step.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import TYPE_CHECKING, Any

from summarizer.archive import Archiver, fsync_dir, remove_temp_files
from summarizer.errors import SummarizerError
from summarizer.inbox_scan import holds, is_regular
from summarizer.runner import ItemResult
from summarizer.store import DuplicateRow, JournalRow, now

if TYPE_CHECKING:
    from pathlib import Path

    from summarizer.models import ExtractionResult
    from summarizer.pipeline import Pipeline

CRASH_ENV = "SUMMARIZER_CRASH_AT"
CRASH_EXIT = 137


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------- crash points


class CrashPoints:
    """`SUMMARIZER_CRASH_AT=step:n[,step:n]`: die like kill -9 on the n-th pass through a step."""

    def __init__(self, spec: str | None) -> None:
        self.targets: dict[str, int] = {}
        for part in (spec or "").split(","):
            step, _, n = part.strip().partition(":")
            if step:
                self.targets[step] = int(n or 1)
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def hit(self, step: str) -> None:
        if step not in self.targets:
            return
        with self._lock:
            self._seen[step] = self._seen.get(step, 0) + 1
            if self._seen[step] == self.targets[step]:
                os._exit(CRASH_EXIT)


class Recovery:
    """Rolls forward (or back) the journal rows a killed run left open; the caller holds the vault lock."""

    def __init__(self, pipeline: Pipeline, archiver: Archiver, crash: CrashPoints) -> None:
        self.pipeline = pipeline
        self.store = pipeline.store
        self.vault = pipeline.vault
        self.archiver = archiver
        self.crash = crash
        self.recovered: list[str] = []

    def recover(self) -> list[str]:
        """Finish or undo what a killed run left half done; returns one line per row touched.

        A row that cannot be recovered is marked failed with a one-line reason; the others go on.
        """
        for row in self.store.journal_open():
            try:
                line = self._recover_row(row)
            except (SummarizerError, OSError) as err:
                error = _one_line(err)
                self.store.journal_set(row.content_hash, status="failed", error=error)
                line = f"could not finish {row.inbox_path}: {error}"
            self.recovered.append(line)
        for duplicate in self.store.duplicates_open():
            try:
                line = self._recover_duplicate(duplicate)
            except (SummarizerError, OSError) as err:
                self.store.duplicate_set(duplicate.content_hash, duplicate.inbox_path, status="failed")
                line = f"could not finish duplicate {duplicate.inbox_path}: {_one_line(err)}"
            self.recovered.append(line)
        return self.recovered

    def would_recover(self) -> list[ItemResult]:
        """A dry run's view of `recover()`: the rows it would touch, touching none."""
        items = [
            ItemResult(
                str(row.inbox_path),
                "skipped",
                f"would recover an interrupted run ({row.status}; note {row.note_path or 'not planned'})",
                fields={"path": row.inbox_path, "dry_run": True},
            )
            for row in self.store.journal_open()
        ]
        items += [
            ItemResult(
                str(row.inbox_path),
                "skipped",
                "would recover an interrupted duplicate archiving",
                fields={"path": row.inbox_path, "dry_run": True},
            )
            for row in self.store.duplicates_open()
        ]
        return items

    def _recover_row(self, row: JournalRow) -> str:
        key = row.content_hash
        inbox = self.archiver.at(row.inbox_path)
        note = self.archiver.at(row.note_path)
        archive = self.archiver.at(row.archive_path)
        remove_temp_files(note)
        ours = self._note_is_ours(note, row)
        if holds(archive, key):
            if holds(inbox, key):
                inbox.unlink()  # a move cut short: the archive holds this very content
                fsync_dir(inbox.parent)
            if ours:
                self._ensure_recorded(note, archive, row)
                self.point_note_at(note, key, self.archiver.rel(archive))
            self.store.journal_set(key, status="done", done_at=now())
            return f"finished moving {row.inbox_path} to {row.archive_path}"
        if not os.path.lexists(inbox):
            self.store.journal_set(key, status="failed", error="transcript vanished from the inbox before archiving")
            return f"{row.inbox_path} is gone from the inbox; nothing to finish"
        if not ours:
            self.store.journal_set(key, status="pending", note_path=None, note_sha=None, archive_path=None)
            return f"{row.inbox_path} was interrupted before its note was written; it will be redone"
        if not holds(inbox, key):
            error = f"{row.inbox_path} is no longer the transcript its note was written from; left in place"
            self.store.journal_set(key, status="failed", error=error)
            return error
        self._ensure_recorded(note, inbox, row)
        moved = self.archiver.move(inbox, archive, on_clash=lambda new: self.rearchive(key, note, new))
        self.point_note_at(note, key, self.archiver.rel(moved))
        self.store.journal_set(key, status="done", done_at=now())
        return f"archived {row.inbox_path} to {self.archiver.rel(moved)} (its note {row.note_path} was already written)"

    def _recover_duplicate(self, row: DuplicateRow) -> str:
        inbox = self.archiver.at(row.inbox_path)
        archive = self.archiver.at(row.archive_path)
        if holds(archive, row.content_hash):
            if holds(inbox, row.content_hash):
                inbox.unlink()
                fsync_dir(inbox.parent)
            self.store.duplicate_set(row.content_hash, row.inbox_path, status="done")
            return f"finished archiving duplicate {row.inbox_path}"
        self.store.duplicate_set(row.content_hash, row.inbox_path, status="pending")
        return f"duplicate {row.inbox_path} was interrupted; it will be redone"

    def _note_is_ours(self, note: Path, row: JournalRow) -> bool:
        """The planned note exists and was written by this row (its text, or a link to its archive path)."""
        if not is_regular(note):
            return False
        try:
            text = note.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        return sha(text) == row.note_sha or str(row.archive_path) in text

    def _ensure_recorded(self, note: Path, transcript: Path, row: JournalRow) -> None:
        """A kill between writing a note and recording it: record it now, from the cached extraction."""
        note_rel = self.archiver.rel(note)
        if self.store.note_record(note_rel) is not None:
            return
        from summarizer.templatesets import for_transcript

        try:  # the template set the run that wrote the note used (chosen by the transcript's inbox path)
            chosen = for_transcript(self.pipeline, self.pipeline.vault.root / (row.inbox_path or transcript.name))
            parsed = chosen.read(transcript)
            result = self.cached_result(parsed, row.content_hash, chosen)
        except SummarizerError:
            return
        if result is not None:
            self.store.record_note(
                note_rel,
                parsed.content_hash(),
                str(row.archive_path),
                result,
                chosen.template_version,
                note.read_text(encoding="utf-8"),
            )

    def cached_result(
        self, transcript: Any, content_hash: str, pipeline: Pipeline | None = None
    ) -> ExtractionResult | None:
        """The cached extraction: a batch's, by the key it was stored under, else the current key's under
        `pipeline` (the transcript's template set; the run's own pipeline by default)."""
        found = self.store.collected_result(content_hash)
        if found is not None:
            return found
        chosen = pipeline or self.pipeline
        key = chosen.engine.cache_key(transcript, chosen.candidates(transcript))
        return self.store.cached_extraction(key)

    def rearchive(self, key: str, note: Path, target: Path) -> None:
        """The planned archive name was taken meanwhile: journal the new one, then point the note at it."""
        self.store.journal_set(key, archive_path=self.archiver.rel(target))
        self.crash.hit("after-rearchive")
        self.point_note_at(note, key, self.archiver.rel(target))

    def point_note_at(self, note: Path, key: str, archive_rel: str) -> None:
        """Make the note's source_ref and Source link name `archive_rel` (after a name clash), and
        the records that keep its generated text."""
        from summarizer.noteparse import split_note

        relink = self.pipeline.note_format.relink

        if not is_regular(note):
            return
        text = note.read_text(encoding="utf-8")
        try:
            if split_note(text).data.get("source_ref") == archive_rel:
                return
        except SummarizerError:
            return  # not a note we can read back: leave the person's file alone
        new_text = relink(text, archive_rel)
        self.vault.write_atomic(note, new_text)
        note_rel = self.archiver.rel(note)
        record = self.store.note_record(note_rel)
        if record is not None:
            rendered = record.rendered
            self.store.relink_note(note_rel, archive_rel, relink(rendered, archive_rel) if rendered else rendered)
        self.store.journal_set(key, note_sha=sha(new_text))


def _one_line(err: BaseException) -> str:
    """An error as one line naming its file."""
    if isinstance(err, OSError) and not isinstance(err, SummarizerError):
        text = f"{err.filename}: {err.strerror or err}" if err.filename else str(err.strerror or err)
    else:
        text = str(err)
    return " ".join(text.split())
