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
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from summarizer.errors import ConfigError, ModelError, SummarizerError, VaultError
from summarizer.models import Usage
from summarizer.runner import AdaptiveLimiter, Display, ItemResult, ProgressFn, Runner, RunReport

if TYPE_CHECKING:
    from summarizer.llm import CallResult, ModelClient, Prompt
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


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def file_hash(path: Path) -> str:
    """The key of the journal: the file's bytes, so a renamed copy is recognised without parsing."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    """Files waiting in the inbox: not hidden, not archived, a known format, no longer being written."""
    inbox = vault.inside(inbox_rel)
    result = Scan()
    if not inbox.is_dir():
        return result
    archive = vault.inside(archive_rel)
    now = time.time()
    found: list[tuple[str, Path]] = []
    for folder, dirs, files in os.walk(inbox):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != ARCHIVE_DIRNAME and here / d != archive)
        for name in files:
            if name.startswith("."):
                continue
            path = here / name
            found.append((path.relative_to(inbox).as_posix(), path))
    for shown, path in sorted(found):
        rel = vault.relative(path)
        if rel in ignore:
            continue
        if options.only and not (fnmatch.fnmatch(shown, options.only) or fnmatch.fnmatch(path.name, options.only)):
            continue
        if path.suffix.lower() not in FORMATS:
            result.skipped.append(ItemResult(shown, "skipped", f"not a transcript format ({path.suffix or 'none'})"))
            continue
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        age = now - stat.st_mtime
        if age < options.settle:
            result.skipped.append(
                ItemResult(shown, "skipped", f"still being written (modified {age:.0f}s ago); next run")
            )
            continue
        result.candidates.append(Candidate(path, rel, shown, stat.st_size, stat.st_mtime_ns))
    if options.limit is not None:
        result.candidates = result.candidates[: max(options.limit, 0)]
    for candidate in result.candidates:
        candidate.content_hash = file_hash(candidate.path)
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

    def note_paths_under(self, prefix: str) -> set[str]:
        """Notes we wrote inside the inbox folder (a note_path template may put them there)."""
        like = prefix.rstrip("/") + "/%"
        rows = self.store.execute("SELECT note_path FROM inbox_transcripts WHERE note_path LIKE ?", (like,))
        rows += self.store.execute("SELECT note_path FROM notes WHERE note_path LIKE ?", (like,))
        return {str(r[0]) for r in rows}


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
        pid_file.write_text(str(os.getpid()), encoding="utf-8")
        yield
    finally:
        lock.release()


def _read_pid(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


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
        self.inbox_rel = settings.inbox.strip("/") or "."
        self.archive_rel = settings.archive.strip("/")
        if not self.archive_rel:
            raise ConfigError("the archive setting must name a folder inside the vault")
        self.vault.inside(self.inbox_rel)
        self.vault.inside(self.archive_rel)
        self.journal = Journal(pipeline)
        self.crash = CrashPoints(os.environ.get(CRASH_ENV))
        self._claims: set[Path] = set()
        self._claim_lock = threading.Lock()
        self._primary_done: dict[str, threading.Event] = {}
        self._primary_note: dict[str, str | None] = {}
        self._firsts: set[int] = set()
        self.recovered: list[str] = []

    # ------------------------------------------------------------------ recovery

    def recover(self) -> list[str]:
        """Finish or undo what a killed run left half done; returns one line per row touched."""
        for row in self.journal.open_rows():
            self.recovered.append(self._recover_row(row))
        for row in self.journal.open_duplicates():
            self.recovered.append(self._recover_duplicate(row))
        return self.recovered

    def _recover_row(self, row: dict[str, Any]) -> str:
        key = row["content_hash"]
        inbox = self.vault.root / row["inbox_path"]
        archive = self.vault.root / row["archive_path"]
        note = self.vault.root / row["note_path"]
        _remove_temp_files(note)
        ours = self._note_is_ours(note, row)
        if archive.exists():
            if inbox.exists() and file_hash(inbox) == key:
                inbox.unlink()  # a copy-then-delete move that was cut short
            if ours:
                self._ensure_recorded(note, archive, row)
            self.journal.update(key, status="done", done_at=_now())
            return f"finished moving {row['inbox_path']} to {row['archive_path']}"
        if not inbox.exists():
            self.journal.update(key, status="failed", error="transcript vanished from the inbox before archiving")
            return f"{row['inbox_path']} is gone from the inbox; nothing to finish"
        if ours:
            self._ensure_recorded(note, inbox, row)
            self._move(inbox, archive)
            self.journal.update(key, status="done", done_at=_now())
            return f"archived {row['inbox_path']} (its note {row['note_path']} was already written)"
        self.journal.update(key, status="pending", note_path=None, note_sha=None, archive_path=None)
        return f"{row['inbox_path']} was interrupted before its note was written; it will be redone"

    def _recover_duplicate(self, row: dict[str, Any]) -> str:
        inbox = self.vault.root / row["inbox_path"]
        archive = self.vault.root / row["archive_path"]
        if archive.exists():
            if inbox.exists() and file_hash(inbox) == row["content_hash"]:
                inbox.unlink()
            self.journal.set_duplicate(row["content_hash"], row["inbox_path"], "done")
            return f"finished archiving duplicate {row['inbox_path']}"
        self.journal.set_duplicate(row["content_hash"], row["inbox_path"], "pending")
        return f"duplicate {row['inbox_path']} was interrupted; it will be redone"

    def _note_is_ours(self, note: Path, row: dict[str, Any]) -> bool:
        """The planned note exists and was written by this row (its text, or a link to its archive path)."""
        if not note.is_file():
            return False
        try:
            text = note.read_text(encoding="utf-8")
        except OSError:
            return False
        return _sha(text) == row["note_sha"] or str(row["archive_path"]) in text

    def _ensure_recorded(self, note: Path, transcript: Path, row: dict[str, Any]) -> None:
        """A kill between writing a note and recording it: record it now, from the cached extraction."""
        note_rel = self.vault.relative(note)
        if self.pipeline.store.note_record(note_rel) is not None:
            return
        try:
            parsed = self.pipeline.read(transcript)
            key = self.pipeline.engine.cache_key(parsed, self.pipeline.candidates(parsed))
            result = self.pipeline.store.cached_extraction(key)
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
            while candidate.exists() or candidate in self._claims:
                n += 1
                candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
            self._claims.add(candidate)
            return candidate

    def _archive_target(self, c: Candidate) -> Path:
        day = dt.date.today().isoformat()
        return self._claim(self.vault.inside(f"{self.archive_rel}/{day}/{c.path.name}"))

    # ------------------------------------------------------------------ moving

    def _move(self, source: Path, target: Path) -> None:
        """Rename into the archive; never over an existing file; copy+delete across devices."""
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise VaultError("archive target already exists; refusing to overwrite it", target)
        try:
            os.rename(source, target)
        except OSError as err:
            if err.errno != errno.EXDEV:
                raise
            tmp = target.with_name(f".{target.name}.moving.tmp")
            shutil.copy2(source, tmp)
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, target)
            source.unlink()
        _fsync_dir(target.parent)
        _fsync_dir(source.parent)

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
        archive_rel = self.vault.relative(target)
        self.journal.plan_duplicate(c, archive_rel, row.get("note_path"))
        self.crash.hit("after-duplicate-plan")
        self._move(c.path, target)
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

        pipeline = self.pipeline
        transcript = pipeline.read(c.path)
        archive = self._archive_target(c)
        archive_rel = self.vault.relative(archive)
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
        outcome = pipeline.summarise(c.path, source_ref=archive_rel, transcript=transcript, out=target)
        written = outcome.note_path or target
        if written != target:
            note_rel = self.vault.relative(written)
        self.crash.hit("after-note-write")
        self.journal.update(c.content_hash, status="written", note_path=note_rel, note_sha=_sha(outcome.note_text))
        self.crash.hit("after-note-recorded")
        self._move(c.path, archive)
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
        rounds = 0
        while True:
            try:
                return self.pipeline.extract(transcript, label=c.rel, progress=progress)
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
        pipeline = self.pipeline
        transcript = pipeline.read(c.path)
        key = pipeline.engine.cache_key(transcript, pipeline.candidates(transcript))
        if pipeline.store.cached_extraction(key) is not None:
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
            for line in pipeline.notices:
                say(line)
            workers = pipeline.resolved.settings.concurrency
            limiter.resize(workers)
            install_limiter(pipeline, limiter)
            run = InboxRun(pipeline, options, limiter)
            for line in run.recover():
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
            report.results = [*scan.skipped, *report.results]
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
