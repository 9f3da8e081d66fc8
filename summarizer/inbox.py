"""`summarizer inbox`: summarise every transcript waiting in the vault's inbox, safely.

Each transcript goes through the same `Pipeline` as `summarise`: the note is
written atomically, THEN the transcript moves to `<archive>/<YYYY-MM-DD>/`,
and the note's `source_ref` already points at that archived file. A failure
leaves the transcript in the inbox with the error recorded; the rest go on.

Crash safety comes from ordering plus a journal (table `inbox_transcripts`,
one row per content hash) written before each step acts:

    planned   note path, note text hash and archive path chosen; nothing written yet
    written   the note is on disk and recorded in `notes`
    done      the transcript is in the archive

A run killed at any point (kill -9) leaves at most: a stray `.tmp` next to a
planned note, a note whose transcript is still in the inbox, or a moved
transcript whose row says `written`. `recover()` runs first on the next run,
under the vault lock, and rolls each such row forward (or back to "not
started" when no note was written), so no transcript is lost and no note is
written twice. `SUMMARIZER_CRASH_AT=<step>:<n>` makes the n-th pass through a
named step exit on the spot with status 137, so tests can kill real runs at
every step.
"""

from __future__ import annotations

import datetime as dt
import errno
import fnmatch
import hashlib
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, cast

from summarizer.errors import ConfigError, ModelError, SummarizerError, VaultError
from summarizer.models import Usage
from summarizer.runner import AdaptiveLimiter, Display, ItemResult, ProgressFn, Runner, RunReport
from summarizer.store import now as _now
from summarizer.templatesets import catalogue_for, for_transcript

if TYPE_CHECKING:
    from summarizer.llm import CallResult, ModelClient, Prompt
    from summarizer.models import ExtractionResult
    from summarizer.pipeline import Pipeline
    from summarizer.vault import Vault

FORMATS = frozenset({".txt", ".md", ".vtt", ".srt", ".json"})
ARCHIVE_DIRNAME = "_archive"
CRASH_ENV = "SUMMARIZER_CRASH_AT"
CRASH_EXIT = 137
RATE_LIMIT_ROUNDS = 3  # whole-transcript retries after the SDK gave up on 429s
LOCK_NAME = "inbox.lock"
PID_NAME = "inbox.pid"

SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox_transcripts (
    content_hash TEXT PRIMARY KEY, status TEXT NOT NULL, inbox_path TEXT, note_path TEXT,
    note_sha TEXT, archive_path TEXT, engine TEXT, model TEXT, prompt_version TEXT,
    calls INTEGER, prompt_tokens INTEGER, cached_tokens INTEGER, completion_tokens INTEGER,
    cost REAL, error TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    first_seen TEXT NOT NULL, updated TEXT NOT NULL, done_at TEXT
);
CREATE INDEX IF NOT EXISTS inbox_transcripts_status ON inbox_transcripts (status);
CREATE TABLE IF NOT EXISTS inbox_duplicates (
    content_hash TEXT NOT NULL, inbox_path TEXT NOT NULL, status TEXT NOT NULL,
    archive_path TEXT, duplicate_of TEXT, updated TEXT NOT NULL,
    PRIMARY KEY (content_hash, inbox_path)
);
CREATE INDEX IF NOT EXISTS inbox_duplicates_status ON inbox_duplicates (status);
"""
ROW_COLUMNS = [
    *("content_hash", "status", "inbox_path", "note_path", "note_sha", "archive_path"),
    *("engine", "model", "prompt_version", "calls", "prompt_tokens", "cached_tokens", "completion_tokens"),
    *("cost", "error", "attempts", "first_seen", "updated", "done_at"),
]
DUPLICATE_COLUMNS = ["content_hash", "inbox_path", "status", "archive_path", "duplicate_of", "updated"]


# Errors from os.link meaning "no hard link possible here", not "something is in the way".
NO_HARD_LINK = frozenset(
    getattr(errno, name)
    for name in ("EXDEV", "EPERM", "ENOTSUP", "EOPNOTSUPP", "EMLINK", "ENOSYS")
    if hasattr(errno, name)
)


def file_hash(path: Path) -> str:
    """The key of the journal: the file's bytes, so a renamed copy is recognised without parsing.

    Only a regular file is read: a symlink is not followed, and a FIFO or device is refused
    (OSError) instead of blocking the run forever.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        digest = hashlib.sha256()
        for block in iter(lambda: os.read(fd, 1 << 20), b""):
            digest.update(block)
        return digest.hexdigest()
    finally:
        os.close(fd)


def is_regular(path: Path) -> bool:
    """A regular file itself (never through a symlink)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def holds(path: Path, content_hash: str) -> bool:
    """`path` is a regular file (not a symlink) with exactly this content."""
    if not is_regular(path):
        return False
    try:
        return file_hash(path) == content_hash
    except OSError:
        return False


def _describe(err: OSError) -> str:
    return str(err.strerror or err)


def _sha(text: str) -> str:
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


# ---------------------------------------------------------------------------- options and scanning


@dataclass
class InboxOptions:
    concurrency: int | None = None
    settle: float = 10.0  # seconds since the last modification before a file counts as complete
    limit: int | None = None
    only: str | None = None
    dry_run: bool = False
    batch: bool = False
    collect: bool = False
    wait: bool = False
    model: str | None = None
    engine: str | None = None


@dataclass
class Candidate:
    """One inbox file, as seen by the scan."""

    path: Path
    rel: str  # vault-relative
    name: str  # inbox-relative, for display and --only
    size: int
    mtime_ns: int
    content_hash: str = ""


@dataclass
class Scan:
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[ItemResult] = field(default_factory=list)


def scan_inbox(vault: Vault, inbox_rel: str, archive_rel: str, options: InboxOptions, ignore: set[str]) -> Scan:
    """Regular files waiting in the inbox: not hidden, not archived, not a note we wrote, a known
    format, no longer being written. Symlinks and other non-regular files are skipped with a reason;
    a file that cannot be read is reported and the rest go on."""
    inbox = vault.inside(inbox_rel)
    result = Scan()
    if not inbox.is_dir():
        return result
    archive = vault.inside(archive_rel)
    now = time.time()
    found: list[tuple[str, Path]] = []
    for folder, dirs, files in os.walk(inbox):  # never descends into symlinked folders
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != ARCHIVE_DIRNAME and here / d != archive)
        for name in files:
            if name.startswith("."):
                continue
            path = here / name
            found.append((path.relative_to(inbox).as_posix(), path))
    for shown, path in sorted(found):
        # `inbox` is resolved and inside the vault, and os.walk followed no symlink: this is the
        # file's own vault-relative path, never where a symlink points.
        rel = path.relative_to(vault.root).as_posix()
        if rel in ignore:
            continue
        if options.only and not (fnmatch.fnmatch(shown, options.only) or fnmatch.fnmatch(path.name, options.only)):
            continue
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        except OSError as err:
            result.skipped.append(ItemResult(shown, "failed", error=f"cannot read {rel}: {_describe(err)}"))
            continue
        if stat.S_ISLNK(info.st_mode):
            result.skipped.append(ItemResult(shown, "skipped", "a symbolic link; not followed, left in place"))
            continue
        if not stat.S_ISREG(info.st_mode):
            result.skipped.append(ItemResult(shown, "skipped", "not a regular file; left in place"))
            continue
        if path.suffix.lower() not in FORMATS:
            result.skipped.append(ItemResult(shown, "skipped", f"not a transcript format ({path.suffix or 'none'})"))
            continue
        age = now - info.st_mtime
        if age < options.settle:
            result.skipped.append(
                ItemResult(shown, "skipped", f"still being written (modified {age:.0f}s ago); next run")
            )
            continue
        result.candidates.append(Candidate(path, rel, shown, info.st_size, info.st_mtime_ns))
    if options.limit is not None:
        result.candidates = result.candidates[: max(options.limit, 0)]
    hashed: list[Candidate] = []
    for candidate in result.candidates:
        try:
            candidate.content_hash = file_hash(candidate.path)
        except FileNotFoundError:
            result.skipped.append(ItemResult(candidate.name, "skipped", "gone from the inbox before it was read"))
            continue
        except OSError as err:
            error = f"cannot read {candidate.rel}: {_describe(err)}"
            result.skipped.append(ItemResult(candidate.name, "failed", error=error, fields={"path": candidate.rel}))
            continue
        hashed.append(candidate)
    result.candidates = hashed
    return result


# ---------------------------------------------------------------------------- the journal


class Journal:
    """Rows of `inbox_transcripts` and `inbox_duplicates` in the vault's state store."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.store = pipeline.store
        for statement in SCHEMA.split(";"):
            if statement.strip():
                self.store.execute(statement)

    def row(self, content_hash: str) -> dict[str, Any] | None:
        rows = self.store.execute(
            f"SELECT {', '.join(ROW_COLUMNS)} FROM inbox_transcripts WHERE content_hash = ?", (content_hash,)
        )
        return dict(zip(ROW_COLUMNS, rows[0], strict=True)) if rows else None

    def open_rows(self) -> list[dict[str, Any]]:
        rows = self.store.execute(
            f"SELECT {', '.join(ROW_COLUMNS)} FROM inbox_transcripts WHERE status IN ('planned', 'written')"
        )
        return [dict(zip(ROW_COLUMNS, r, strict=True)) for r in rows]

    def open_duplicates(self) -> list[dict[str, Any]]:
        rows = self.store.execute(
            f"SELECT {', '.join(DUPLICATE_COLUMNS)} FROM inbox_duplicates WHERE status = 'planned'"
        )
        return [dict(zip(DUPLICATE_COLUMNS, r, strict=True)) for r in rows]

    def plan(self, c: Candidate, note_path: str, note_sha: str, archive_path: str) -> None:
        self.store.execute(
            """INSERT INTO inbox_transcripts (content_hash, status, inbox_path, note_path, note_sha,
                   archive_path, error, first_seen, updated)
               VALUES (?, 'planned', ?, ?, ?, ?, NULL, ?, ?)
               ON CONFLICT (content_hash) DO UPDATE SET status = 'planned', inbox_path = excluded.inbox_path,
                   note_path = excluded.note_path, note_sha = excluded.note_sha,
                   archive_path = excluded.archive_path, error = NULL, updated = excluded.updated""",
            (c.content_hash, c.rel, note_path, note_sha, archive_path, _now(), _now()),
        )

    def update(self, content_hash: str, **values: Any) -> None:
        values["updated"] = _now()
        columns = ", ".join(f"{name} = ?" for name in values)
        self.store.execute(
            f"UPDATE inbox_transcripts SET {columns} WHERE content_hash = ?", (*values.values(), content_hash)
        )

    def usage(self, content_hash: str, usage: Usage, engine: str, model: str, prompt_version: str) -> None:
        self.update(
            content_hash,
            engine=engine,
            model=model,
            prompt_version=prompt_version,
            calls=usage.calls,
            prompt_tokens=usage.prompt_tokens,
            cached_tokens=usage.cached_tokens,
            completion_tokens=usage.completion_tokens,
            cost=usage.cost,
        )

    def fail(self, c: Candidate, error: str) -> None:
        self.store.execute(
            """INSERT INTO inbox_transcripts (content_hash, status, inbox_path, error, attempts, first_seen, updated)
               VALUES (?, 'failed', ?, ?, 1, ?, ?)
               ON CONFLICT (content_hash) DO UPDATE SET status = 'failed', inbox_path = excluded.inbox_path,
                   error = excluded.error, attempts = attempts + 1, updated = excluded.updated""",
            (c.content_hash, c.rel, error, _now(), _now()),
        )

    def plan_duplicate(self, c: Candidate, archive_path: str, duplicate_of: str | None) -> None:
        self.store.execute(
            "INSERT OR REPLACE INTO inbox_duplicates VALUES (?, ?, 'planned', ?, ?, ?)",
            (c.content_hash, c.rel, archive_path, duplicate_of, _now()),
        )

    def set_duplicate(self, content_hash: str, inbox_path: str, status: str) -> None:
        self.store.execute(
            "UPDATE inbox_duplicates SET status = ?, updated = ? WHERE content_hash = ? AND inbox_path = ?",
            (status, _now(), content_hash, inbox_path),
        )

    def set_duplicate_archive(self, content_hash: str, inbox_path: str, archive_path: str) -> None:
        self.store.execute(
            "UPDATE inbox_duplicates SET archive_path = ?, updated = ? WHERE content_hash = ? AND inbox_path = ?",
            (archive_path, _now(), content_hash, inbox_path),
        )

    def note_paths_under(self, prefix: str) -> set[str]:
        """Notes we wrote inside the inbox folder (a note_path template may put them there): every
        note the state store knows there, so a note is never taken for a transcript."""
        folder = PurePosixPath(prefix).as_posix().strip("/")  # "./Inbox" -> "Inbox"
        params: tuple[str, ...] = ()
        if folder in ("", "."):
            where = ""
        else:
            escaped = folder.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where, params = " WHERE note_path LIKE ? ESCAPE '\\'", (escaped + "/%",)
        rows = self.store.execute(f"SELECT note_path FROM inbox_transcripts{where}", params)
        rows += self.store.execute(f"SELECT note_path FROM notes{where}", params)
        return {str(r[0]) for r in rows if r[0]}


# ---------------------------------------------------------------------------- the vault lock


@contextmanager
def vault_lock(vault: Vault, wait: bool, on_wait: ProgressFn | None = None) -> Iterator[None]:
    """One inbox run per vault: a second one exits 2 naming the holder, or waits with --wait."""
    from filelock import FileLock, Timeout

    vault.state_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(vault.state_dir / LOCK_NAME), timeout=0)
    pid_file = vault.state_dir / PID_NAME
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = _read_pid(pid_file)
        if not wait:
            raise ConfigError(
                f"another summarizer run holds the vault lock (pid {holder}); "
                "let it finish or pass --wait to queue behind it"
            ) from None
        if on_wait is not None:
            on_wait(f"waiting for the vault lock held by pid {holder}")
        lock.acquire(timeout=-1)
    try:
        from summarizer.vault import write_atomic

        write_atomic(pid_file, str(os.getpid()))  # over any stale pid (a killed run's), never through a link
        yield
    finally:
        if _read_pid(pid_file) == str(os.getpid()):
            pid_file.unlink(missing_ok=True)  # released: no pid file to name a process that has gone
        lock.release()


def _read_pid(path: Path) -> str:
    """The pid in the file when that process is still alive; else "unknown" (never a dead pid)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return "unknown"
    if not text.isdigit() or not _alive(int(text)):
        return "unknown"
    return text


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


# ---------------------------------------------------------------------------- the limiter seam


class LimitedClient:
    """The engine's ModelClient with every request (whole meeting, part or merge) behind the limiter."""

    def __init__(self, inner: ModelClient, limiter: AdaptiveLimiter) -> None:
        self.inner = inner
        self.limiter = limiter

    def extract(self, prompt: Prompt, *, label: str) -> CallResult:
        with self.limiter.slot():
            return self.inner.extract(prompt, label=label)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def install_limiter(pipeline: Pipeline, limiter: AdaptiveLimiter) -> None:
    from summarizer.engines import LLMEngine
    from summarizer.llm import ModelClient

    engine = pipeline.engine
    if isinstance(engine, LLMEngine) and isinstance(engine.client, ModelClient):
        engine.client = cast(ModelClient, LimitedClient(engine.client, limiter))


def is_rate_limited(error: BaseException) -> bool:
    import openai

    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, openai.RateLimitError):
            return True
        cause = cause.__cause__
    return False


# ---------------------------------------------------------------------------- one run


class InboxRun:
    """Recover, scan, and process the inbox of one vault (the caller holds the vault lock)."""

    def __init__(self, pipeline: Pipeline, options: InboxOptions, limiter: AdaptiveLimiter) -> None:
        self.pipeline = pipeline
        self.options = options
        self.limiter = limiter
        self.vault = pipeline.vault
        settings = pipeline.resolved.settings
        self.inbox_rel = PurePosixPath(settings.inbox.strip("/") or ".").as_posix()
        self.archive_rel = PurePosixPath(settings.archive.strip("/") or ".").as_posix()
        if self.vault.inside(self.archive_rel) == self.vault.root:
            raise ConfigError("the archive setting must name a folder inside the vault")
        if self.vault.inside(self.inbox_rel) == self.vault.root:
            # Every note of the vault is a .md file there: each run would take them for transcripts.
            raise ConfigError(
                f"the inbox setting must name a folder inside the vault, not the vault itself (got {settings.inbox!r})"
            )
        self.journal = Journal(pipeline)
        self.crash = CrashPoints(os.environ.get(CRASH_ENV))
        self._claims: set[Path] = set()
        self._claim_lock = threading.Lock()
        self._primary_done: dict[str, threading.Event] = {}
        self._firsts: set[int] = set()
        self.recovered: list[str] = []

    # ------------------------------------------------------------------ paths

    def _at(self, rel: str | None) -> Path:
        """A journal path in the vault: its folders go through `vault.inside` (which refuses an
        escape), its last part is not resolved, so a symlink there is seen, never followed."""
        pure = PurePosixPath(rel or "")
        if not rel or pure.is_absolute() or ".." in pure.parts or pure.name in ("", "."):
            raise VaultError("not a path inside the vault", rel or "(none)")
        return self.vault.inside(pure.parent) / pure.name

    def _rel(self, path: Path) -> str:
        """Vault-relative, without resolving the last part (paths here come from `vault.inside`)."""
        return path.relative_to(self.vault.root).as_posix()

    # ------------------------------------------------------------------ recovery

    def recover(self) -> list[str]:
        """Finish or undo what a killed run left half done; returns one line per row touched.

        A row that cannot be recovered is marked failed with a one-line reason; the others go on.
        """
        for row in self.journal.open_rows():
            try:
                line = self._recover_row(row)
            except (SummarizerError, OSError) as err:
                error = _one_line(err)
                self.journal.update(row["content_hash"], status="failed", error=error)
                line = f"could not finish {row['inbox_path']}: {error}"
            self.recovered.append(line)
        for row in self.journal.open_duplicates():
            try:
                line = self._recover_duplicate(row)
            except (SummarizerError, OSError) as err:
                self.journal.set_duplicate(row["content_hash"], row["inbox_path"], "failed")
                line = f"could not finish duplicate {row['inbox_path']}: {_one_line(err)}"
            self.recovered.append(line)
        return self.recovered

    def would_recover(self) -> list[ItemResult]:
        """A dry run's view of `recover()`: the rows it would touch, touching none."""
        items = [
            ItemResult(
                str(row["inbox_path"]),
                "skipped",
                f"would recover an interrupted run ({row['status']}; note {row['note_path'] or 'not planned'})",
                fields={"path": row["inbox_path"], "dry_run": True},
            )
            for row in self.journal.open_rows()
        ]
        items += [
            ItemResult(
                str(row["inbox_path"]),
                "skipped",
                "would recover an interrupted duplicate archiving",
                fields={"path": row["inbox_path"], "dry_run": True},
            )
            for row in self.journal.open_duplicates()
        ]
        return items

    def _recover_row(self, row: dict[str, Any]) -> str:
        key = row["content_hash"]
        inbox = self._at(row["inbox_path"])
        note = self._at(row["note_path"])
        archive = self._at(row["archive_path"])
        _remove_temp_files(note)
        ours = self._note_is_ours(note, row)
        if holds(archive, key):
            if holds(inbox, key):
                inbox.unlink()  # a move cut short: the archive holds this very content
                _fsync_dir(inbox.parent)
            if ours:
                self._ensure_recorded(note, archive, row)
                self._point_note_at(note, key, self._rel(archive))
            self.journal.update(key, status="done", done_at=_now())
            return f"finished moving {row['inbox_path']} to {row['archive_path']}"
        if not os.path.lexists(inbox):
            self.journal.update(key, status="failed", error="transcript vanished from the inbox before archiving")
            return f"{row['inbox_path']} is gone from the inbox; nothing to finish"
        if not ours:
            self.journal.update(key, status="pending", note_path=None, note_sha=None, archive_path=None)
            return f"{row['inbox_path']} was interrupted before its note was written; it will be redone"
        if not holds(inbox, key):
            error = f"{row['inbox_path']} is no longer the transcript its note was written from; left in place"
            self.journal.update(key, status="failed", error=error)
            return error
        self._ensure_recorded(note, inbox, row)
        moved = self._move(inbox, archive, on_clash=lambda new: self._rearchive(key, note, new))
        self._point_note_at(note, key, self._rel(moved))
        self.journal.update(key, status="done", done_at=_now())
        return f"archived {row['inbox_path']} to {self._rel(moved)} (its note {row['note_path']} was already written)"

    def _recover_duplicate(self, row: dict[str, Any]) -> str:
        inbox = self._at(row["inbox_path"])
        archive = self._at(row["archive_path"])
        if holds(archive, row["content_hash"]):
            if holds(inbox, row["content_hash"]):
                inbox.unlink()
                _fsync_dir(inbox.parent)
            self.journal.set_duplicate(row["content_hash"], row["inbox_path"], "done")
            return f"finished archiving duplicate {row['inbox_path']}"
        self.journal.set_duplicate(row["content_hash"], row["inbox_path"], "pending")
        return f"duplicate {row['inbox_path']} was interrupted; it will be redone"

    def _note_is_ours(self, note: Path, row: dict[str, Any]) -> bool:
        """The planned note exists and was written by this row (its text, or a link to its archive path)."""
        if not is_regular(note):
            return False
        try:
            text = note.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        return _sha(text) == row["note_sha"] or str(row["archive_path"]) in text

    def _ensure_recorded(self, note: Path, transcript: Path, row: dict[str, Any]) -> None:
        """A kill between writing a note and recording it: record it now, from the cached extraction."""
        note_rel = self._rel(note)
        if self.pipeline.store.note_record(note_rel) is not None:
            return
        try:
            parsed = self.pipeline.read(transcript)
            result = self._cached_result(parsed, row["content_hash"])
        except SummarizerError:
            return
        if result is not None:
            self.pipeline.store.record_note(
                note_rel,
                parsed.content_hash(),
                str(row["archive_path"]),
                result,
                self.pipeline.template_version,
                note.read_text(encoding="utf-8"),
            )

    def _cached_result(self, transcript: Any, content_hash: str) -> ExtractionResult | None:
        """The cached extraction: a batch's, by the key it was stored under, else the current key's."""
        from summarizer import batchapi

        store = self.pipeline.store
        found = batchapi.collected_result(store, content_hash)
        if found is not None:
            return found
        return store.cached_extraction(self.pipeline.engine.cache_key(transcript, self.pipeline.candidates(transcript)))

    def _rearchive(self, key: str, note: Path, target: Path) -> None:
        """The planned archive name was taken meanwhile: journal the new one, then point the note at it."""
        self.journal.update(key, archive_path=self._rel(target))
        self.crash.hit("after-rearchive")
        self._point_note_at(note, key, self._rel(target))

    def _point_note_at(self, note: Path, key: str, archive_rel: str) -> None:
        """Make the note's source_ref and Source link name `archive_rel` (after a name clash), and
        the records that keep its generated text."""
        from summarizer.noteparse import split_note
        from summarizer.regenerate import relink

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
        note_rel = self._rel(note)
        record = self.pipeline.store.note_record(note_rel)
        if record is not None:
            rendered = record.get("rendered")
            self.pipeline.store.execute(
                "UPDATE notes SET source_ref = ?, rendered = ? WHERE note_path = ?",
                (archive_rel, relink(rendered, archive_rel) if rendered else rendered, note_rel),
            )
        self.journal.update(key, note_sha=_sha(new_text))

    # ------------------------------------------------------------------ scanning

    def scan(self) -> Scan:
        ignore = self.journal.note_paths_under(self.inbox_rel)
        return scan_inbox(self.vault, self.inbox_rel, self.archive_rel, self.options, ignore)

    def order(self, candidates: list[Candidate]) -> list[Candidate]:
        """First file of each content first, its copies after: a copy waits for the first's note."""
        firsts: dict[str, Candidate] = {}
        copies: list[Candidate] = []
        for c in candidates:
            if c.content_hash in firsts:
                copies.append(c)
            else:
                firsts[c.content_hash] = c
                self._primary_done[c.content_hash] = threading.Event()
        self._firsts = {id(c) for c in firsts.values()}
        return [*firsts.values(), *copies]

    # ------------------------------------------------------------------ claiming free paths

    def _claim(self, path: Path) -> Path:
        """`path`, else `name (2).ext`...: free on disk and not promised to another item of this run."""
        with self._claim_lock:
            candidate, n = path, 1
            while os.path.lexists(candidate) or candidate in self._claims:
                n += 1
                candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
            self._claims.add(candidate)
            return candidate

    def _archive_target(self, c: Candidate) -> Path:
        day = dt.date.today().isoformat()
        return self._claim(self.vault.inside(f"{self.archive_rel}/{day}") / c.path.name)

    # ------------------------------------------------------------------ moving

    def _move(self, source: Path, planned: Path, on_clash: Callable[[Path], None] | None = None) -> Path:
        """Move `source` into the archive at `planned`; returns where it went.

        Never over an existing file: a hard link fails when the name is taken, and then the next
        free name is claimed (`on_clash` journals it before anything lands there). Only once the
        archive holds the file is the inbox entry removed, so a kill in between leaves two names
        for one content, which recovery resolves. Where hard links are impossible (another
        device, some file systems) the file is copied to a hidden temp file first.
        """
        planned.parent.mkdir(parents=True, exist_ok=True)
        target, moving = planned, source
        try:
            while True:
                try:
                    linked = _place(moving, target)
                    break
                except FileExistsError:
                    target = self._claim(planned)
                    if on_clash is not None:
                        on_clash(target)
                except OSError as err:
                    if err.errno != errno.EXDEV or moving is not source:
                        raise
                    moving = _stage_copy(source, planned)
            _fsync_dir(target.parent)
        finally:
            if moving is not source:
                moving.unlink(missing_ok=True)
        if linked or moving is not source:
            source.unlink()
        _fsync_dir(source.parent)
        return target

    # ------------------------------------------------------------------ one item

    def process(self, c: Candidate, progress: ProgressFn) -> ItemResult:
        first = id(c) in self._firsts
        try:
            if not first:
                return self._copy_of_this_run(c)
            try:
                return self._process_first(c, progress)
            finally:
                self._primary_done[c.content_hash].set()
        except SummarizerError as err:
            return self._failed(c, str(err.reason if err.path else err))
        except OSError as err:
            return self._failed(c, f"{err.strerror or err}")

    def _failed(self, c: Candidate, error: str) -> ItemResult:
        row = self.journal.row(c.content_hash)
        if row is None or row["status"] not in ("planned", "written"):
            self.journal.fail(c, error)
        # A planned/written row is left for recover(), which knows whether the note exists.
        return ItemResult(c.name, "failed", error=error, fields={"path": c.rel})

    def _copy_of_this_run(self, c: Candidate) -> ItemResult:
        self._primary_done[c.content_hash].wait()
        row = self.journal.row(c.content_hash)
        if row is None or row["status"] != "done":
            return ItemResult(
                c.name,
                "skipped",
                "same content as another inbox file that was not finished; next run",
                fields={"path": c.rel},
            )
        return self._archive_duplicate(c, row)

    def _archive_duplicate(self, c: Candidate, row: dict[str, Any]) -> ItemResult:
        target = self._archive_target(c)
        self.journal.plan_duplicate(c, self._rel(target), row.get("note_path"))
        self.crash.hit("after-duplicate-plan")

        def renamed(new: Path) -> None:
            self.journal.set_duplicate_archive(c.content_hash, c.rel, self._rel(new))

        archive_rel = self._rel(self._move(c.path, target, on_clash=renamed))
        self.crash.hit("after-duplicate-move")
        self.journal.set_duplicate(c.content_hash, c.rel, "done")
        return ItemResult(
            c.name,
            "done",
            f"duplicate of {row.get('note_path')}; archived, no new note",
            fields={"path": c.rel, "note": row.get("note_path"), "archive": archive_rel, "duplicate": True},
        )

    def _unchanged(self, c: Candidate) -> bool:
        try:
            stat = c.path.stat()
        except FileNotFoundError:
            return False
        return (stat.st_size, stat.st_mtime_ns) == (c.size, c.mtime_ns)

    def _process_first(self, c: Candidate, progress: ProgressFn) -> ItemResult:
        from summarizer import batchapi

        row = self.journal.row(c.content_hash)
        if row is not None and row["status"] == "done":
            return self._archive_duplicate(c, row)
        waiting = batchapi.open_batch_for(self.pipeline.store, c.content_hash)
        if waiting is not None:
            return ItemResult(c.name, "skipped", f"waiting for batch {waiting}", fields={"path": c.rel})
        if not self._unchanged(c) or file_hash(c.path) != c.content_hash:
            return ItemResult(c.name, "skipped", "still being written (changed since the scan); next run")

        pipeline = for_transcript(self.pipeline, c.path)
        transcript = pipeline.read(c.path)
        archive = self._archive_target(c)
        archive_rel = self._rel(archive)
        result, cached = self._extract(c, transcript, progress)
        engine = pipeline.engine
        usage = Usage() if cached else result.usage
        if cached:
            usage = batchapi.batch_usage(pipeline.store, c.content_hash) or usage
        note = pipeline.compose(transcript, result, archive_rel)
        target = self._claim(pipeline.target(note))
        text = pipeline.render(note)
        note_rel = self.vault.relative(target)
        self.journal.plan(c, note_rel, _sha(text), archive_rel)
        self.journal.usage(c.content_hash, usage, engine.name, engine.model, engine.prompt_version)
        self.crash.hit("after-plan")
        progress("writing the note")
        # The extraction chosen above, not a second one: the vault index may have changed since
        # (another worker's stub notes), and a new cache key would mean a second paid call.
        outcome = pipeline.summarise(c.path, source_ref=archive_rel, transcript=transcript, out=target, result=result)
        written = outcome.note_path or target
        if written != target:
            note_rel = self.vault.relative(written)
        self.crash.hit("after-note-write")
        self.journal.update(c.content_hash, status="written", note_path=note_rel, note_sha=_sha(outcome.note_text))
        self.crash.hit("after-note-recorded")
        moved = self._move(c.path, archive, on_clash=lambda new: self._rearchive(c.content_hash, written, new))
        archive_rel = self._rel(moved)
        self.crash.hit("after-move")
        self.journal.update(c.content_hash, status="done", done_at=_now(), error=None)
        self.crash.hit("after-done")
        detail = f"-> {note_rel}" + (" (from cache, no call)" if cached and not usage.calls else "")
        if outcome.unsupported:
            detail += f"; {outcome.unsupported} item(s) with evidence not found"
        return ItemResult(
            c.name,
            "done",
            detail,
            usage=usage,
            fields={"path": c.rel, "note": note_rel, "archive": archive_rel, "cached": cached},
        )

    def _extract(self, c: Candidate, transcript: Any, progress: ProgressFn) -> tuple[Any, bool]:
        """The pipeline's cached extraction; a transcript the SDK gave up on for 429s gets more rounds."""
        from summarizer import batchapi

        # A batch's result is cached under the key of its submission: look it up by that key,
        # since the vault index (and so a key computed now) may have changed since.
        found = batchapi.collected_result(self.pipeline.store, c.content_hash)
        if found is not None:
            return found, True
        rounds = 0
        while True:
            try:
                return for_transcript(self.pipeline, c.path).extract(transcript, label=c.rel, progress=progress)
            except ModelError as err:
                if rounds >= RATE_LIMIT_ROUNDS or not is_rate_limited(err):
                    raise
                rounds += 1
                progress(f"still rate limited; round {rounds + 1} of {RATE_LIMIT_ROUNDS + 1}")

    # ------------------------------------------------------------------ dry run

    def dry_run(self, c: Candidate, progress: ProgressFn) -> ItemResult:
        from summarizer import batchapi
        from summarizer.pricing import estimate_cost

        fields: dict[str, Any] = {"path": c.rel, "dry_run": True}
        row = self.journal.row(c.content_hash)
        if id(c) not in self._firsts or (row is not None and row["status"] == "done"):
            of = row.get("note_path") if row else "an earlier file of this run"
            return ItemResult(c.name, "skipped", f"would archive as a duplicate of {of} (no call)", fields=fields)
        waiting = batchapi.open_batch_for(self.pipeline.store, c.content_hash)
        if waiting is not None:
            return ItemResult(c.name, "skipped", f"waiting for batch {waiting}", fields=fields)
        pipeline = for_transcript(self.pipeline, c.path)
        transcript = pipeline.read(c.path)
        if self._cached_result(transcript, c.content_hash) is not None:
            return ItemResult(c.name, "skipped", "would write the note from the cache (no call)", fields=fields)
        plan = pipeline.plan(transcript)
        s = pipeline.resolved.settings
        batch = self.options.batch and plan.calls == 1
        out_tokens = s.max_output_tokens // 2 * plan.calls
        cost = estimate_cost(pipeline.engine.model, plan.prompt_tokens, out_tokens, 0, s.prices, batch=batch)
        usage = Usage(calls=plan.calls, prompt_tokens=plan.prompt_tokens, completion_tokens=out_tokens, cost=cost)
        how = "in a batch (half price)" if batch else f"{plan.calls} call(s)"
        if not plan.uses_model:
            how, usage = "offline engine, no model call", Usage()
        if self.options.batch and not batch:
            how += " (too long for one batch request: left for a normal run)"
        fields.update(prompt_tokens=plan.prompt_tokens, calls=plan.calls, exact=plan.exact)
        return ItemResult(c.name, "skipped", f"would summarise: {how}", usage=usage, fields=fields)


def _remove_temp_files(note: Path) -> None:
    """`write_atomic` temp files a kill left next to a planned note."""
    if note.parent.is_dir():
        for stray in note.parent.glob(f".{note.name}.*.tmp"):
            stray.unlink(missing_ok=True)


def _place(source: Path, target: Path) -> bool:
    """Give `source` the name `target`, never replacing a file there (FileExistsError instead).

    True when `source` was hard-linked (the caller removes it), False when it was renamed.
    """
    try:
        os.link(source, target, follow_symlinks=False)
        return True
    except FileExistsError:
        raise
    except OSError as err:
        if err.errno not in NO_HARD_LINK:
            raise
    # No hard links here: check, then rename (a file could only slip in during the instant between).
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "already exists", str(target))
    os.rename(source, target)
    return False


def _stage_copy(source: Path, planned: Path) -> Path:
    """A durable copy of `source` next to `planned` (for a move across devices), under a hidden name."""
    tmp = planned.with_name(f".{planned.name}.moving.tmp")
    tmp.unlink(missing_ok=True)  # a killed run's; never written through (it could be a link)
    with source.open("rb") as src, tmp.open("xb") as dst:
        shutil.copyfileobj(src, dst)
        dst.flush()
        os.fsync(dst.fileno())
    shutil.copystat(source, tmp)
    return tmp


def _one_line(err: BaseException) -> str:
    """An error as one line naming its file."""
    if isinstance(err, OSError) and not isinstance(err, SummarizerError):
        text = f"{err.filename}: {err.strerror or err}" if err.filename else str(err.strerror or err)
    else:
        text = str(err)
    return " ".join(text.split())


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- entry point


def run_inbox(
    vault_root: Path,
    options: InboxOptions,
    *,
    display: Display | None = None,
    notice: ProgressFn | None = None,
) -> RunReport:
    """The whole command: lock, open, recover, collect batches, then process or submit."""
    from summarizer import batchapi
    from summarizer.pipeline import Pipeline
    from summarizer.vault import Vault

    say = notice or (lambda _message: None)
    if options.batch and options.collect:
        raise ConfigError("--batch submits and --collect retrieves: use one at a time")
    if options.concurrency is not None and options.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if options.settle < 0:
        raise ConfigError("--settle must be zero or more seconds")
    if options.engine not in (None, "auto", "openai", "offline"):
        raise ConfigError(f"--engine must be openai, offline or auto, not {options.engine!r}")
    vault = Vault.open(vault_root)
    with vault_lock(vault, options.wait, say):
        started = time.perf_counter()
        limiter = AdaptiveLimiter(1)  # sized once the settings (and so the concurrency) are known
        flags = {"model": options.model, "concurrency": options.concurrency}
        pipeline = Pipeline.open(vault.root, flags, engine=options.engine, on_http_status=limiter.observe)
        try:
            catalogue_for(pipeline)  # template-set rules checked before any call
            for line in pipeline.notices:
                say(line)
            workers = pipeline.resolved.settings.concurrency
            limiter.resize(workers)
            install_limiter(pipeline, limiter)
            run = InboxRun(pipeline, options, limiter)
            # A dry run changes nothing, not even to finish an interrupted run: it lists what would be.
            recovering = run.would_recover() if options.dry_run else []
            for line in [] if options.dry_run else run.recover():
                say(f"recovered: {line}")
            extra: dict[str, Any] = {"vault": str(vault.root)}
            batch_notes: list[str] = []
            if not options.dry_run:
                batch_notes = batchapi.collect(pipeline, run.crash)
                for line in batch_notes:
                    say(line)
            scan = run.scan()
            candidates = scan.candidates
            if options.collect:
                in_batches = batchapi.batched_hashes(pipeline.store)
                left = [c for c in candidates if c.content_hash not in in_batches]
                candidates = [c for c in candidates if c.content_hash in in_batches]
                if left:
                    say(f"{len(left)} transcript(s) not from a batch are left for a normal run")
            ordered = run.order(candidates)
            if ordered and pipeline.engine.name != "offline":
                # Build the vault index now, before this run writes any note: the names it offers the
                # model are part of the extraction cache key, so every item of the run (and a re-run
                # after a crash) must see the same index.
                pipeline.index  # noqa: B018
            if options.batch and not options.dry_run:
                report = batchapi.submit(pipeline, run, ordered)
            else:
                fn = run.dry_run if options.dry_run else run.process
                # Twice as many workers as request slots: while the limiter's slots are busy, the
                # spare workers read, plan and write notes, so no slot waits for CPU work.
                runner: Runner[Candidate] = Runner(fn, lambda c: c.name, workers=2 * workers, display=display)
                report = runner.run(ordered)
            report.results = [*recovering, *scan.skipped, *report.results]
            report.wall_seconds = time.perf_counter() - started
            extra.update(
                dry_run=options.dry_run,
                batch=options.batch,
                model=pipeline.engine.model,
                engine=pipeline.engine.name,
                recovered=run.recovered,
                batches=batch_notes,
                rate_limited=limiter.rate_limited,
                limiter=limiter.snapshot(),
            )
            report.extra = {**extra, **report.extra}
            return report
        finally:
            pipeline.close()
