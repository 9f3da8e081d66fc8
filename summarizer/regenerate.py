"""Regenerate notes with the current prompts, model and template, keeping the person's edits.

One note at a time (`Regenerator.regenerate`), so a batch runner can drive many:

1. read the note (repairing mojibake: UTF-8 once read as Mac Roman and the like;
   BOM and CRLF/CR line endings normalised, and restored when writing); a note
   with no state-store record and no `generated` tag is not ours: it is skipped
   ("not a generated note; left untouched"), which is not a failure;
2. find its transcript: frontmatter `source_ref`, else the body's Source link,
   else a file of the same name in the inbox or archive, else one there whose
   content hash is the one recorded when the note was made; point both
   references at where it is. Only a file with a transcript suffix, outside
   `.summarizer/` and not itself one of our notes, counts (`may_be_transcript`);
3. the new version: the model's extraction (`Pipeline.extract`, cached when
   nothing that affects it changed), or with `render_only` the stored extraction,
   or for a note we have no record of, the note itself parsed back (`noteparse`);
4. three-way merge (`merge.merge_note`): base is the text we generated last time
   (from the state store), else the note as parsed back and re-rendered with task
   states reset, so even then the person's additions show as theirs;
5. unless dry-run: keep the previous version under `.summarizer/history/`, write
   atomically, and record the new generated text as the next merge's base.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from summarizer.errors import NoteParseError, SummarizerError, TranscriptError, VaultError
from summarizer.merge import KeptEdit, describe_kept, merge_note
from summarizer.models import (
    ActionItem,
    Decision,
    Entity,
    ExtractionResult,
    MeetingExtraction,
    MeetingNote,
    Transcript,
    Usage,
    Utterance,
)
from summarizer.notefind import record_for_moved, walk_notes
from summarizer.noteformat import NoteFormat
from summarizer.noteparse import as_date, as_strings, split_note
from summarizer.pipeline import Pipeline
from summarizer.reader import check_input_file, repair_mojibake
from summarizer.render import GENERATED_TAG, SOURCE_NAME_KEY
from summarizer.rules import fold
from summarizer.store import NoteRecord
from summarizer.templatesets import for_note

HISTORY_DIR = "history"
DEFAULT_HISTORY = 10  # previous versions kept per note; older ones are deleted
TRANSCRIPT_SUFFIXES = frozenset({".txt", ".md", ".vtt", ".srt", ".json"})
PARSED_ENGINE = "parsed"  # the record of a note regenerated from itself: always --stale afterwards
NOT_OURS = "not a generated note (no record of it and no 'generated' tag); left untouched"


@dataclass
class Outcome:
    """What regenerating one note did (or, in a dry run, would do)."""

    note: Path
    rel: str
    changed: bool = False
    written: bool = False
    diff: str = ""
    origin: str = ""  # model | cache | stored extraction | parsed note
    relinked: tuple[str, str] | None = None  # (old source_ref, new source_ref)
    moved_from: str | None = None  # the store knew this note under another path (renamed or moved)
    history: Path | None = None
    usage: Usage = field(default_factory=Usage)
    skipped: str = ""  # why the note was left alone without even looking at it (not ours)

    def describe(self) -> str:
        """One short line for the report."""
        if self.skipped:
            return self.skipped
        verb = ("would update" if not self.written else "updated") if self.changed else "unchanged"
        parts = [f"{verb} ({self.origin})"]
        if self.moved_from:
            parts.append(f"found as the renamed {self.moved_from}")
        if self.relinked:
            parts.append(f"transcript relinked to {self.relinked[1]}")
        return "; ".join(parts)


# --------------------------------------------------------------------------- choosing notes


def note_date(data: dict[str, object]) -> dt.date | None:
    return as_date(data.get("date"))


def generated_notes(root: Path) -> list[Path]:
    """Notes whose frontmatter tags include `generated` (what `--all` means)."""
    from summarizer.vault_index import read_frontmatter

    out: list[Path] = []
    for path in walk_notes(root):
        data = read_frontmatter(path)
        if data is not None and GENERATED_TAG in as_strings(data.get("tags")):
            out.append(path)
    return out


def is_stale(pipeline: Pipeline, rel: str) -> bool:
    """Made by another prompt version, model or template than the current ones, or unknown to the store."""
    record = pipeline.store.note_record(rel)
    if record is None:
        return True
    pipeline = for_note(pipeline, record, record.source_ref)
    return (
        record.prompt_version != pipeline.engine.prompt_version
        or record.model != pipeline.engine.model
        or record.template_version != pipeline.template_version
    )


def select_notes(
    pipeline: Pipeline,
    paths: Iterable[Path],
    *,
    all_notes: bool = False,
    since: dt.date | None = None,
    stale: bool = False,
) -> list[Path]:
    """The given notes, or every generated note; then only those dated `since` or later, and/or stale."""
    from summarizer.vault_index import read_frontmatter

    chosen = [p.resolve() for p in paths]
    if not chosen and (all_notes or since is not None or stale):
        chosen = generated_notes(pipeline.vault.root)
    out: list[Path] = []
    for path in dict.fromkeys(chosen):
        if since is not None:
            data = read_frontmatter(path) if path.is_file() else None
            date = note_date(data) if data else None
            if date is None or date < since:
                continue
        if stale and not is_stale(pipeline, pipeline.vault.relative(path)):
            continue
        out.append(path)
    return out


# --------------------------------------------------------------------------- the transcript


def _candidates(pipeline: Pipeline) -> list[Path]:
    """Transcript-like files in the inbox and the archive (each folder once)."""
    s = pipeline.resolved.settings
    roots: list[Path] = []
    for folder in (s.inbox, s.archive):
        try:
            root = pipeline.vault.inside(folder)
        except VaultError:
            continue
        if root.is_dir() and not any(root == r or r in root.parents for r in roots):
            roots = [r for r in roots if root not in r.parents] + [root]
    files: list[Path] = []
    for root in roots:
        files.extend(sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in TRANSCRIPT_SUFFIXES))
    return files


def is_generated_note(pipeline: Pipeline, path: Path) -> bool:
    """One of our notes: the state store has a record of it, or its frontmatter says it was made from a transcript."""
    from summarizer.vault_index import read_frontmatter

    if pipeline.store.note_record(pipeline.vault.relative(path)) is not None:
        return True
    try:
        data = read_frontmatter(path)
    except OSError:
        return False
    return bool(data and data.get("source") == "transcript" and data.get("source_ref"))


def may_be_transcript(pipeline: Pipeline, path: Path) -> bool:
    """A file regenerate may read as a transcript: a transcript suffix, outside `.summarizer/`, not a note of ours.

    A `source_ref` can point anywhere in the vault; without this another note (or a history copy)
    would be summarised as if it were the meeting.
    """
    if path.suffix.lower() not in TRANSCRIPT_SUFFIXES or not path.is_file():
        return False
    state = pipeline.vault.state_dir.resolve()
    resolved = path.resolve()
    if resolved == state or state in resolved.parents:
        return False
    return not is_generated_note(pipeline, path)


def locate_transcript(pipeline: Pipeline, note: Path, refs: list[str], recorded_hash: str | None) -> Path:
    """The transcript: at a reference, else by file name, else by content hash in the inbox/archive.

    Only files `may_be_transcript` accepts count, wherever they are found.
    """
    for ref in refs:
        try:
            path = pipeline.vault.inside(ref)
        except VaultError:
            continue
        if may_be_transcript(pipeline, path):
            return path
    files = [path for path in _candidates(pipeline) if may_be_transcript(pipeline, path)]
    names = {PurePosixPath(ref).name for ref in refs}
    for path in files:
        if path.name in names:
            return path
    if recorded_hash:
        for path in files:
            try:
                if pipeline.read(path).content_hash() == recorded_hash:
                    return path
            except SummarizerError:
                continue
    where = " or ".join(dict.fromkeys(refs)) or "(no source_ref)"
    s = pipeline.resolved.settings
    raise TranscriptError(
        f"transcript not found: not at {where}, nor by name or content in {s.inbox}/ or {s.archive}/; "
        "note left untouched",
        pipeline.vault.relative(note),
    )


# --------------------------------------------------------------------------- line endings


@dataclass(frozen=True)
class TextStyle:
    """How a note's file spells its text: a BOM or not, and its line ending."""

    bom: bool = False
    newline: str = "\n"

    @classmethod
    def of(cls, text: str) -> TextStyle:
        """The file's style: its most common line ending (LF on a tie or with none at all)."""
        crlf = text.count("\r\n")
        counts = [(text.count("\n") - crlf, "\n"), (crlf, "\r\n"), (text.count("\r") - crlf, "\r")]
        return cls(bom=text.startswith("\ufeff"), newline=max(counts, key=lambda c: c[0])[1])

    def apply(self, text: str) -> str:
        """LF-only `text` spelled in this style, for writing back."""
        out = text.replace("\n", self.newline) if self.newline != "\n" else text
        return "\ufeff" + out if self.bom else out


def normalise(text: str) -> str:
    """A note's text as the parser and merge see it: no BOM, every line ending (CRLF, lone CR) a LF."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


# --------------------------------------------------------------------------- history


def move_history(pipeline: Pipeline, old_rel: str, new_rel: str) -> None:
    """A renamed note's saved versions follow it (unless the new path already has some)."""
    base = pipeline.vault.state_dir / HISTORY_DIR
    old, new = base / old_rel, base / new_rel
    if old_rel != new_rel and old.is_dir() and not new.exists():
        new.parent.mkdir(parents=True, exist_ok=True)
        old.rename(new)


def _source_name(text: str) -> str | None:
    """The note's `source_name` (the transcript's original file name), if it has one."""
    try:
        value = split_note(text).data.get(SOURCE_NAME_KEY)
    except NoteParseError:
        return None
    return value if isinstance(value, str) else None


def keep_history(pipeline: Pipeline, note: Path, data: bytes, limit: int = DEFAULT_HISTORY) -> Path:
    """Save a note's previous bytes as `.summarizer/history/<note path>/<UTC time>.md`; keep the last `limit`."""
    folder = pipeline.vault.state_dir / HISTORY_DIR / pipeline.vault.relative(note)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / f"{stamp}.md"
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{stamp}-{n}.md"
    target.write_bytes(data)
    versions = sorted(folder.glob("*.md"))
    for old in versions[: max(0, len(versions) - max(1, limit))]:
        old.unlink(missing_ok=True)
    return target


# --------------------------------------------------------------------------- one note


def extraction_of(note: MeetingNote) -> MeetingExtraction:
    """A parsed note as the extraction that would make it (stored so `--render-only` works next time)."""
    return MeetingExtraction(
        title=note.title,
        meeting_date=note.date.isoformat() if note.date else None,
        note_type=note.note_type,
        account=note.account,
        account_category=note.account_category,
        participants=note.participants,
        summary=note.summary,
        action_items=[
            ActionItem(
                text=t.text,
                owner=t.owner,
                due=t.due.isoformat() if t.due else None,
                priority=t.priority,
                evidence="",
            )
            for t in note.action_items
        ],
        decisions=[Decision(text=d.text, evidence="") for d in note.decisions],
        key_information=note.key_information,
        related=[Entity(name=r, kind="concept") for r in note.related],
    )


@dataclass
class Regenerator:
    pipeline: Pipeline
    render_only: bool = False
    dry_run: bool = False
    history: int = DEFAULT_HISTORY

    def _generated(self, note: MeetingNote) -> MeetingNote:
        """The note as we would have generated it: every task in the status we write."""
        status = self.pipeline.resolved.settings.task_status
        tasks = [t.model_copy(update={"status": status}) for t in note.action_items]
        return note.model_copy(update={"action_items": tasks})

    def _parse(self, fmt: NoteFormat, text: str, rel: str) -> MeetingNote:
        return fmt.parse(text, task_tags=self.pipeline.resolved.settings.task_tags, where=rel)

    def _hash_of(self, transcript: Path) -> str | None:
        try:
            return self.pipeline.read(transcript).content_hash()
        except SummarizerError:
            return None

    def _stand_in(self, result: ExtractionResult, last: MeetingNote, ref: str) -> Transcript:
        """What the renderer needs from a transcript that is gone: the meeting's date, title and
        participants from the note generated last time, and as its words the evidence quotes of the
        items that were found in the transcript then (so each item keeps its verdict)."""
        flagged: dict[str, bool] = {fold(t.text): t.supported is False for t in last.action_items}
        flagged.update({fold(d.text): d.supported is False for d in last.decisions})
        dropping = self.pipeline.resolved.settings.unsupported_evidence == "drop"
        extraction = result.extraction
        items = [(a.text, a.evidence) for a in extraction.action_items]
        items += [(d.text, d.evidence) for d in extraction.decisions]
        # An item missing from the last note was dropped then (unsupported_evidence = "drop").
        quotes = [quote for text, quote in items if quote and not flagged.get(fold(text), dropping)]
        return Transcript(
            utterances=[Utterance(speaker=None, text=q) for q in quotes],
            date=last.date,
            title=last.title,
            participants=last.participants,
            source_name=PurePosixPath(ref).stem,
        )

    def regenerate(self, note: Path, progress: Any = None) -> Outcome:
        """Regenerate one note (or, dry-run, work out the diff); raises a SummarizerError naming it."""
        p = self.pipeline
        if not note.exists():
            raise NoteParseError("no such note", note)
        check_input_file(note, NoteParseError, what="a note")  # a FIFO or folder is refused, never opened
        if not p.vault.contains(note):
            raise VaultError("not inside the vault", note)
        rel = p.vault.relative(note)
        outcome = Outcome(note=note, rel=rel)
        raw = note.read_bytes()
        try:
            original = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise NoteParseError(f"not UTF-8 text (byte {err.start})", rel) from err
        # Compare and merge in LF without a BOM; write back in the file's own style (CRLF stays CRLF),
        # so a note that only differs in how its lines end is unchanged and never rewritten.
        style = TextStyle.of(original)
        current = normalise(original)
        theirs = repair_mojibake(current)
        fmt = p.note_format
        try:
            split = split_note(theirs, rel)
        except NoteParseError:
            split = None
        refs: list[str] = []
        if split is not None:
            link = fmt.source_link(split.body)
            refs = [r for r in (split.data.get("source_ref"), link[0] if link else None) if isinstance(r, str) and r]
        tagged = split is not None and GENERATED_TAG in as_strings(split.data.get("tags"))
        record = p.store.note_record(rel)
        moved: NoteRecord | None = None
        if record is None:
            # Renamed or moved in Obsidian: the record of the note that is gone from where we wrote it
            # (without our tag, only if its text is close to what we generated).
            moved = record = record_for_moved(p.store, p.vault, theirs, refs, confirm=not tagged)
        if record is None and not tagged:
            # Only notes we made are regenerated: a record of it, or (made before the store) our tag.
            outcome.skipped = NOT_OURS
            return outcome
        split = split_note(theirs, rel)
        try:
            transcript_path: Path | None = locate_transcript(
                p, note, refs, record.transcript_hash if record else None
            )
        except TranscriptError:
            if not self.render_only:
                raise
            transcript_path = None  # --render-only needs no transcript: the note keeps its source_ref
        if record is None and transcript_path is not None:
            moved = record = record_for_moved(
                p.store, p.vault, theirs, [], self._hash_of(transcript_path), confirm=not tagged
            )
        if moved is not None:
            outcome.moved_from = moved.note_path
        if transcript_path is not None:
            ref = p.vault.relative(transcript_path)
        else:
            ref = refs[0] if refs else (record.source_ref if record else None) or ""
        p = for_note(p, record, ref)  # the template set the note was made with
        fmt = p.note_format  # and so its note template's headings
        if refs and refs[0] != ref:
            outcome.relinked = (refs[0], ref)
        if ref:
            theirs = fmt.relink(theirs, ref)  # the Source link names what source_ref does

        parsed: MeetingNote | None = None
        if record and record.rendered:
            base = fmt.relink(record.rendered, ref) if ref else record.rendered
        else:
            parsed = self._parse(fmt, theirs, rel)
            base = p.render(self._generated(parsed))
        source_name = _source_name(base)

        transcript: Transcript | None = None
        stored = bool(record and record.extraction and record.engine != PARSED_ENGINE)
        if self.render_only and stored and record:
            result = ExtractionResult.model_validate(record.extraction)
            if transcript_path is not None:
                transcript = p.read(transcript_path)
                ours = p.draft(transcript, result, ref, source=transcript_path, source_name=source_name).text
                outcome.origin = "stored extraction"
            else:
                stand_in = self._stand_in(result, self._parse(fmt, base, rel), ref)
                ours = p.draft(stand_in, result, ref, source=p.vault.root / ref, source_name=source_name).text
                outcome.origin = "stored extraction; transcript not found"
        elif self.render_only:
            # Nothing the model said is stored: the last generated text (else the note) is the source.
            ours_note = self._generated(parsed or self._parse(fmt, base, rel))
            ours = p.render(ours_note)
            result = ExtractionResult(
                extraction=extraction_of(ours_note), engine=PARSED_ENGINE, model="", prompt_version=""
            )
            outcome.origin = "parsed note"
        else:
            assert transcript_path is not None  # only --render-only goes on without the transcript
            transcript = p.read(transcript_path)
            if progress is not None:
                progress("summarising")
            result, cached = p.extract(transcript, label=rel, progress=progress)
            draft = p.draft(transcript, result, ref, source=transcript_path, cached=cached, source_name=source_name)
            ours = draft.text
            outcome.origin = "cache" if cached else "model"
            outcome.usage = Usage() if cached else result.usage
        # Under the active template's headings (and, when the template reordered its sections since
        # we made the note, in its order), so a renamed section is merged, never kept twice.
        reorder = fmt.role_order(base) != fmt.order
        kept: list[KeptEdit] = []  # their edits kept over new text: a dry run shows the new text
        merged = merge_note(fmt.conform(base, reorder=reorder), fmt.conform(theirs, reorder=reorder), ours, kept)

        outcome.changed = merged != current
        if outcome.changed:
            lines = difflib.unified_diff(
                current.splitlines(), merged.splitlines(), fromfile=f"a/{rel}", tofile=f"b/{rel}", lineterm=""
            )
            outcome.diff = "".join(line + "\n" for line in lines)
        if self.dry_run:
            outcome.diff += describe_kept(kept, rel)
            return outcome
        if moved is not None:
            move_history(p, moved.note_path, rel)
            p.store.move_note(moved.note_path, rel)
        if outcome.changed:
            outcome.history = keep_history(p, note, raw, self.history)
            p.vault.write_atomic(note, style.apply(merged))
            outcome.written = True
        if transcript is None and transcript_path is not None:
            try:
                transcript = p.read(transcript_path)
            except SummarizerError:
                transcript = None
        digest = transcript.content_hash() if transcript else ((record.transcript_hash if record else None) or "")
        p.store.record_note(rel, digest, ref, result, p.template_version, ours)
        return outcome
