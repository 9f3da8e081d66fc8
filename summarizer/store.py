"""The vault's state store: `.summarizer/state.db` (SQLite), and the only module that touches it.

It logs every model call (tokens, cost, mode, the answer; never the key),
caches validated extractions so the same content never costs a second call,
remembers which response format each server accepted, records which run made
each note (model, prompt and template versions) for `regenerate --stale`, and
keeps the inbox's journal and its Batch API submissions.

Every table is created here, through ordered migrations numbered by
`PRAGMA user_version`. A database from an older version is copied to
`state.db.bak-v<N>` and upgraded in place; one from a newer version is refused.
Other modules use the typed methods below, never SQL.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from summarizer.errors import ConfigError
from summarizer.models import ExtractionResult, Usage
from summarizer.servers import ServerLimits
from summarizer.store_schema import MIGRATIONS, V3_TABLES

SCHEMA_VERSION = len(MIGRATIONS)

_JOURNAL_SETTABLE = frozenset({"status", "note_path", "note_sha", "archive_path", "error", "done_at"})
_BATCH_SETTABLE = frozenset({"batch_id", "input_file_id", "status", "error"})


# What an engine appends to an item's label for the calls it makes for it ("(part 2/5)", "(merge)",
# possibly more): a call's item is its label without these. Labels are paths ending in a suffix.
_LABEL_SUFFIXES = re.compile(r"(?: \([^()]*\))+$")


def item_of(label: str | None) -> str | None:
    """The transcript or note a call was for, from the label it was made under."""
    return _LABEL_SUFFIXES.sub("", label) if label else label


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class JournalRow:
    """One transcript content in the inbox journal (see `summarizer.inbox_journal`)."""

    content_hash: str
    status: str
    inbox_path: str | None
    note_path: str | None
    note_sha: str | None
    archive_path: str | None
    error: str | None


@dataclass(frozen=True)
class DuplicateRow:
    content_hash: str
    inbox_path: str
    status: str
    archive_path: str | None
    duplicate_of: str | None


@dataclass(frozen=True)
class BatchRow:
    token: str
    batch_id: str | None
    status: str
    engine: str
    model: str
    prompt_version: str


@dataclass(frozen=True)
class BatchItem:
    custom_id: str
    content_hash: str
    cache_key: str
    transcript_hash: str
    inbox_path: str | None


@dataclass(frozen=True)
class NoteRecord:
    """What made a note: `rendered` is the exact text generated (the base for merging user edits)."""

    note_path: str
    transcript_hash: str | None
    source_ref: str | None
    engine: str | None
    model: str | None
    prompt_version: str | None
    template_version: str | None
    extraction: dict[str, Any] | None
    rendered: str | None


class Store:
    """Thread-safe access to one vault's state database."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.run_id: int | None = None  # the command run the calls logged from now on belong to
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        try:
            self._migrate()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # ---------------------------------------------------------------- schema versions

    @property
    def version(self) -> int:
        return int(self._rows("PRAGMA user_version")[0][0])

    def _found_version(self) -> int:
        """The layout's version: `user_version`, or for an unversioned file, what its tables say."""
        stamped = self.version
        if stamped:
            return stamped
        tables = {str(r[0]) for r in self._rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "notes" not in tables:
            return 0
        columns = {str(r[1]) for r in self._rows("PRAGMA table_info(notes)")}
        if "rendered" not in columns:
            return 1
        return 3 if tables >= V3_TABLES else 2  # v3's tables are created if missing, so 2 is safe

    def _migrate(self) -> None:
        found = self._found_version()
        if found > SCHEMA_VERSION:
            raise ConfigError(
                f"written by a newer summarizer (state schema {found}, this one knows up to {SCHEMA_VERSION}); "
                "upgrade summarizer",
                self.path,
            )
        if found == SCHEMA_VERSION:
            if self.version != SCHEMA_VERSION:  # today's layout from before the stamp: only stamp it
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            return
        if found > 0:
            self._keep_copy(found)
        self._db.execute("BEGIN IMMEDIATE")  # one process migrates; the others then see the new version
        try:
            found = self._found_version()
            for step in MIGRATIONS[found:]:
                for statement in step.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _keep_copy(self, version: int) -> None:
        """`state.db.bak-v<N>` next to the database, never over an earlier copy."""
        target = self.path.with_name(f"{self.path.name}.bak-v{version}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.bak-v{version}-{n}")
        tmp = target.with_name(f".{target.name}.tmp")
        copy = sqlite3.connect(tmp)
        try:
            self._db.backup(copy)  # consistent even with a WAL beside the file
        finally:
            copy.close()
        shutil.move(tmp, target)

    # ---------------------------------------------------------------- response-format modes

    def get_mode(self, endpoint: str) -> str | None:
        rows = self._rows("SELECT mode FROM modes WHERE endpoint = ?", (endpoint,))
        return str(rows[0][0]) if rows else None

    def set_mode(self, endpoint: str, mode: str) -> None:
        self._rows("INSERT OR REPLACE INTO modes VALUES (?, ?, ?)", (endpoint, mode, now()))

    # ---------------------------------------------------------------- learned server limits

    def get_limits(self, endpoint: str) -> ServerLimits | None:
        rows = self._rows(
            "SELECT context_window, token_ratio, slots, probed FROM server_limits WHERE endpoint = ?", (endpoint,)
        )
        if not rows:
            return None
        window, ratio, slots, probed = rows[0]
        return ServerLimits(
            int(window) if window is not None else None,
            float(ratio) if ratio is not None else None,
            int(slots) if slots is not None else None,
            bool(probed),
        )

    def set_limits(self, endpoint: str, limits: ServerLimits) -> None:
        """Merge what was learned into what is known: a fact not learned now keeps its stored value."""
        self._rows(
            """INSERT INTO server_limits (endpoint, context_window, token_ratio, slots, probed, ts)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (endpoint) DO UPDATE SET
                context_window = COALESCE(excluded.context_window, context_window),
                token_ratio = COALESCE(excluded.token_ratio, token_ratio),
                slots = COALESCE(excluded.slots, slots),
                probed = MAX(excluded.probed, probed), ts = excluded.ts""",
            (endpoint, limits.context_window, limits.token_ratio, limits.slots, int(limits.probed), now()),
        )

    # ---------------------------------------------------------------- call log

    def log_call(self, record: dict[str, Any]) -> None:
        columns = [
            *("label", "model", "mode", "endpoint", "prompt_version", "calls"),
            *("prompt_tokens", "cached_tokens", "completion_tokens", "cost", "response", "error"),
        ]
        values = [record.get(c) for c in columns]
        item = record.get("item") or item_of(record.get("label"))
        self._rows(
            f"INSERT INTO calls (ts, run_id, item, {', '.join(columns)}) VALUES (?, ?, ?{', ?' * len(columns)})",
            (now(), self.run_id, item, *values),
        )

    # ---------------------------------------------------------------- extraction cache

    def cached_extraction(self, key: str) -> ExtractionResult | None:
        rows = self._rows("SELECT result FROM extractions WHERE key = ?", (key,))
        return ExtractionResult.model_validate_json(rows[0][0]) if rows else None

    def cache_extraction(self, key: str, transcript_hash: str, result: ExtractionResult) -> None:
        self._rows(
            "INSERT OR REPLACE INTO extractions VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                transcript_hash,
                result.engine,
                result.model,
                result.prompt_version,
                result.model_dump_json(),
                now(),
            ),
        )

    # ---------------------------------------------------------------- notes written

    def record_note(
        self,
        note_path: str,
        transcript_hash: str,
        source_ref: str,
        result: ExtractionResult,
        template_version: str,
        rendered: str | None = None,
    ) -> None:
        """Remember what made a note, and the exact text generated (the base for merging user edits)."""
        self._rows(
            """INSERT OR REPLACE INTO notes (note_path, transcript_hash, source_ref, engine, model,
                   prompt_version, template_version, extraction, ts, rendered)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                note_path,
                transcript_hash,
                source_ref,
                result.engine,
                result.model,
                result.prompt_version,
                template_version,
                result.model_dump_json(),
                now(),
                rendered,
            ),
        )

    def note_record(self, note_path: str) -> NoteRecord | None:
        found = self._note_records("WHERE note_path = ?", (note_path,))
        return found[0] if found else None

    def note_records_for_transcript(self, transcript_hash: str) -> list[NoteRecord]:
        """Every note made from this transcript content, the most recent first."""
        return self._note_records("WHERE transcript_hash = ? ORDER BY ts DESC", (transcript_hash,))

    def note_records_for_source(self, source_refs: Sequence[str]) -> list[NoteRecord]:
        """Every note whose recorded transcript path is one of `source_refs`, the most recent first."""
        refs = list(dict.fromkeys(source_refs))
        if not refs:
            return []
        marks = ", ".join("?" * len(refs))
        return self._note_records(f"WHERE source_ref IN ({marks}) ORDER BY ts DESC", tuple(refs))

    def _note_records(self, where: str, params: tuple[Any, ...]) -> list[NoteRecord]:
        rows = self._rows(
            "SELECT note_path, transcript_hash, source_ref, engine, model, prompt_version, "
            f"template_version, extraction, rendered FROM notes {where}",
            params,
        )
        out: list[NoteRecord] = []
        for path, digest, ref, engine, model, prompt, template, extraction, rendered in rows:
            stored = json.loads(extraction) if extraction else None
            out.append(NoteRecord(path, digest, ref, engine, model, prompt, template, stored, rendered))
        return out

    def move_note(self, old_path: str, new_path: str) -> None:
        """The person moved or renamed a note: its record (and the inbox journal's mention) follows it."""
        if old_path == new_path:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM notes WHERE note_path = ?", (new_path,))
                self._db.execute("UPDATE notes SET note_path = ? WHERE note_path = ?", (new_path, old_path))
                self._db.execute(
                    "UPDATE inbox_transcripts SET note_path = ?, updated = ? WHERE note_path = ?",
                    (new_path, now(), old_path),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def relink_note(self, note_path: str, source_ref: str, rendered: str | None) -> None:
        """A note's transcript was archived under another name: its record follows."""
        self._rows(
            "UPDATE notes SET source_ref = ?, rendered = ? WHERE note_path = ?", (source_ref, rendered, note_path)
        )

    def note_paths_under(self, prefix: str) -> set[str]:
        """Notes we wrote (or planned) inside a folder, matched literally (no LIKE wildcards)."""
        folder = PurePosixPath(prefix).as_posix().strip("/")  # "./Inbox" -> "Inbox"
        params: tuple[str, ...] = ()
        if folder in ("", "."):
            where = ""
        else:
            escaped = folder.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where, params = " WHERE note_path LIKE ? ESCAPE '\\'", (escaped + "/%",)
        rows = self._rows(f"SELECT note_path FROM inbox_transcripts{where}", params)
        rows += self._rows(f"SELECT note_path FROM notes{where}", params)
        return {str(r[0]) for r in rows if r[0]}

    # ---------------------------------------------------------------- inbox journal

    def journal_row(self, content_hash: str) -> JournalRow | None:
        rows = self._journal("WHERE content_hash = ?", (content_hash,))
        return rows[0] if rows else None

    def journal_open(self) -> list[JournalRow]:
        """Rows a killed run left half done."""
        return self._journal("WHERE status IN ('planned', 'written')")

    def _journal(self, where: str, params: tuple[Any, ...] = ()) -> list[JournalRow]:
        rows = self._rows(
            "SELECT content_hash, status, inbox_path, note_path, note_sha, archive_path, error "
            f"FROM inbox_transcripts {where}",
            params,
        )
        return [JournalRow(*r) for r in rows]

    def journal_plan(self, content_hash: str, inbox_path: str, note_path: str, note_sha: str, archive: str) -> None:
        self._rows(
            """INSERT INTO inbox_transcripts (content_hash, status, inbox_path, note_path, note_sha,
                   archive_path, error, first_seen, updated)
               VALUES (?, 'planned', ?, ?, ?, ?, NULL, ?, ?)
               ON CONFLICT (content_hash) DO UPDATE SET status = 'planned', inbox_path = excluded.inbox_path,
                   note_path = excluded.note_path, note_sha = excluded.note_sha,
                   archive_path = excluded.archive_path, error = NULL, updated = excluded.updated""",
            (content_hash, inbox_path, note_path, note_sha, archive, now(), now()),
        )

    def journal_set(self, content_hash: str, **values: str | None) -> None:
        """Change a row's status, paths, note hash, error or done time."""
        unknown = set(values) - _JOURNAL_SETTABLE
        if unknown:
            raise ValueError(f"not journal fields: {sorted(unknown)}")
        values["updated"] = now()
        columns = ", ".join(f"{name} = ?" for name in values)
        self._rows(f"UPDATE inbox_transcripts SET {columns} WHERE content_hash = ?", (*values.values(), content_hash))

    def journal_usage(self, content_hash: str, usage: Usage, engine: str, model: str, prompt_version: str) -> None:
        self._rows(
            """UPDATE inbox_transcripts SET engine = ?, model = ?, prompt_version = ?, calls = ?,
                   prompt_tokens = ?, cached_tokens = ?, completion_tokens = ?, cost = ?, updated = ?
               WHERE content_hash = ?""",
            (
                *(engine, model, prompt_version, usage.calls, usage.prompt_tokens, usage.cached_tokens),
                *(usage.completion_tokens, usage.cost, now(), content_hash),
            ),
        )

    def journal_fail(self, content_hash: str, inbox_path: str, error: str) -> None:
        self._rows(
            """INSERT INTO inbox_transcripts (content_hash, status, inbox_path, error, attempts, first_seen, updated)
               VALUES (?, 'failed', ?, ?, 1, ?, ?)
               ON CONFLICT (content_hash) DO UPDATE SET status = 'failed', inbox_path = excluded.inbox_path,
                   error = excluded.error, attempts = attempts + 1, updated = excluded.updated""",
            (content_hash, inbox_path, error, now(), now()),
        )

    def duplicates_open(self) -> list[DuplicateRow]:
        rows = self._rows(
            "SELECT content_hash, inbox_path, status, archive_path, duplicate_of FROM inbox_duplicates "
            "WHERE status = 'planned'"
        )
        return [DuplicateRow(*r) for r in rows]

    def duplicate_plan(self, content_hash: str, inbox_path: str, archive: str, duplicate_of: str | None) -> None:
        self._rows(
            "INSERT OR REPLACE INTO inbox_duplicates VALUES (?, ?, 'planned', ?, ?, ?)",
            (content_hash, inbox_path, archive, duplicate_of, now()),
        )

    def duplicate_set(
        self, content_hash: str, inbox_path: str, *, status: str | None = None, archive: str | None = None
    ) -> None:
        if status is not None:
            self._rows(
                "UPDATE inbox_duplicates SET status = ?, updated = ? WHERE content_hash = ? AND inbox_path = ?",
                (status, now(), content_hash, inbox_path),
            )
        if archive is not None:
            self._rows(
                "UPDATE inbox_duplicates SET archive_path = ?, updated = ? WHERE content_hash = ? AND inbox_path = ?",
                (archive, now(), content_hash, inbox_path),
            )

    # ---------------------------------------------------------------- Batch API submissions

    def open_batch_for(self, content_hash: str) -> str | None:
        """The batch still working on this content, if any (the normal path then leaves it alone)."""
        rows = self._rows(
            """SELECT b.batch_id, b.token FROM inbox_batch_items i JOIN inbox_batches b ON b.token = i.token
               WHERE i.content_hash = ? AND i.status = 'submitted' AND b.status IN ('preparing', 'submitted')""",
            (content_hash,),
        )
        return str(rows[0][0] or rows[0][1]) if rows else None

    def batched_hashes(self) -> set[str]:
        """Contents that went into any batch (what `--collect` processes)."""
        return {str(r[0]) for r in self._rows("SELECT DISTINCT content_hash FROM inbox_batch_items")}

    def collected_result(self, content_hash: str) -> ExtractionResult | None:
        """The extraction a batch returned for this content, by the cache key stored at submission."""
        rows = self._rows(
            """SELECT cache_key FROM inbox_batch_items WHERE content_hash = ? AND status = 'collected'
               ORDER BY updated DESC""",
            (content_hash,),
        )
        for (key,) in rows:
            found = self.cached_extraction(str(key))
            if found is not None:
                return found
        return None

    def batch_record(self, token: str, engine: str, model: str, prompt_version: str, items: list[BatchItem]) -> None:
        """A batch and its requests, recorded before anything is uploaded."""
        self._rows(
            "INSERT INTO inbox_batches VALUES (?, NULL, NULL, 'preparing', ?, ?, ?, ?, ?, ?, NULL)",
            (token, engine, model, prompt_version, len(items), now(), now()),
        )
        for item in items:
            values = (item.custom_id, item.content_hash, item.cache_key, item.transcript_hash, item.inbox_path)
            self._rows(
                """INSERT INTO inbox_batch_items (token, custom_id, content_hash, cache_key, transcript_hash,
                       inbox_path, status, updated) VALUES (?, ?, ?, ?, ?, ?, 'submitted', ?)""",
                (token, *values, now()),
            )

    def batch_set(self, token: str, **values: str | None) -> None:
        unknown = set(values) - _BATCH_SETTABLE
        if unknown:
            raise ValueError(f"not batch fields: {sorted(unknown)}")
        values["updated"] = now()
        columns = ", ".join(f"{name} = ?" for name in values)
        self._rows(f"UPDATE inbox_batches SET {columns} WHERE token = ?", (*values.values(), token))

    def open_batches(self) -> list[BatchRow]:
        rows = self._rows(
            "SELECT token, batch_id, status, engine, model, prompt_version FROM inbox_batches "
            "WHERE status IN ('preparing', 'submitted') ORDER BY created"
        )
        return [BatchRow(*r) for r in rows]

    def batch_items_waiting(self, token: str) -> dict[str, BatchItem]:
        """A batch's requests with no result yet, by custom_id."""
        rows = self._rows(
            "SELECT custom_id, content_hash, cache_key, transcript_hash, inbox_path FROM inbox_batch_items "
            "WHERE token = ? AND status = 'submitted'",
            (token,),
        )
        return {str(r[0]): BatchItem(*r) for r in rows}

    def batch_item_collected(self, token: str, custom_id: str, usage: Usage) -> None:
        self._rows(
            """UPDATE inbox_batch_items SET status = 'collected', error = NULL, prompt_tokens = ?,
                   cached_tokens = ?, completion_tokens = ?, cost = ?, updated = ?
               WHERE token = ? AND custom_id = ?""",
            (usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens, usage.cost, now(), token, custom_id),
        )

    def batch_items_fail(self, token: str, error: str, custom_ids: list[str] | None = None) -> None:
        """Mark a batch's waiting requests (or only these) failed: their transcripts go the normal way."""
        if custom_ids is None:
            self._rows(
                "UPDATE inbox_batch_items SET status = 'failed', error = ?, updated = ? WHERE token = ? "
                "AND status = 'submitted'",
                (error, now(), token),
            )
            return
        for custom_id in custom_ids:
            self._rows(
                "UPDATE inbox_batch_items SET status = 'failed', error = ?, updated = ? "
                "WHERE token = ? AND custom_id = ?",
                (error, now(), token, custom_id),
            )

    # ---------------------------------------------------------------- runs: what each command did, and what it cost

    def run_begin(self, command: str, engine: str | None, model: str | None, prompt_version: str | None) -> int:
        """Record a command run; calls logged through this store from now on belong to it."""
        with self._lock:
            cursor = self._db.execute(
                """INSERT INTO runs (command, started, engine, model, prompt_version, status)
                   VALUES (?, ?, ?, ?, ?, 'running')""",
                (command, now(), engine, model, prompt_version),
            )
            self.run_id = int(cursor.lastrowid or 0)
            return self.run_id

    def run_item(
        self,
        run_id: int,
        item: str,
        *,
        name: str,
        status: str,
        transcript: str | None = None,
        note: str | None = None,
        detail: str | None = None,
        error: str | None = None,
        seconds: float | None = None,
    ) -> None:
        """What the run did to one item (its cost is what the calls logged for it say)."""
        self._rows(
            """INSERT INTO run_items (run_id, item, name, transcript, note, status, detail, error, seconds, ts)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (run_id, item, name, transcript, note, status, detail or None, error, seconds, now()),
        )

    def run_usage(self, run_id: int, item: str | None = None) -> Usage:
        """Every call logged for the run (or for one of its items): failed ones, repairs and retries included."""
        where, params = "WHERE run_id = ?", (run_id,)
        params_item: tuple[int | str, ...] = params
        if item is not None:
            where, params_item = "WHERE run_id = ? AND item = ?", (run_id, item)
        return _usage(*self._rows(f"SELECT {_SUMS} FROM calls c {where}", params_item)[0])

    def run_usage_by_item(self, run_id: int) -> dict[str | None, Usage]:
        rows = self._rows(f"SELECT item, {_SUMS} FROM calls c WHERE run_id = ? GROUP BY item", (run_id,))
        return {r[0]: _usage(*r[1:]) for r in rows}

    def run_finish(self, run_id: int, status: str, counts: dict[str, int], error: str | None = None) -> None:
        """Close the run: its outcome counts, and its totals as the call log has them."""
        usage = self.run_usage(run_id)
        self._rows(
            """UPDATE runs SET finished = ?, status = ?, done = ?, skipped = ?, failed = ?, calls = ?,
                   prompt_tokens = ?, cached_tokens = ?, completion_tokens = ?, cost = ?, error = ? WHERE id = ?""",
            (
                *(now(), status, counts.get("done", 0), counts.get("skipped", 0), counts.get("failed", 0)),
                *(usage.calls, usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens, usage.cost),
                *(error, run_id),
            ),
        )
        if self.run_id == run_id:
            self.run_id = None

    # ---------------------------------------------------------------- the log (`summarizer log`), newest first

    def log_runs(self, query: LogQuery) -> list[RunRow]:
        where, params = query.where(
            since="r.started",
            note="EXISTS (SELECT 1 FROM run_items ri WHERE ri.run_id = r.id AND ri.note LIKE ? ESCAPE '\\')",
            # A run that never finished was killed (or is running now): it failed to say how it ended.
            failed="(r.failed > 0 OR r.status NOT IN ('done', 'running') OR r.finished IS NULL)",
        )
        rows = self._rows(
            f"""SELECT r.id, r.command, r.started, r.finished, r.engine, r.model, r.prompt_version, r.status,
                    r.done, r.skipped, r.failed, r.error, {_SUMS}
                FROM runs r LEFT JOIN calls c ON c.run_id = r.id {where}
                GROUP BY r.id ORDER BY r.id DESC{query.limit_sql()}""",
            params,
        )
        return [RunRow(*(*r[:12], _usage(*r[12:]))) for r in rows]

    def log_items(self, query: LogQuery) -> list[LogItem]:
        where, params = query.where(
            since="ri.ts",
            note="ri.note LIKE ? ESCAPE '\\'",
            failed="ri.status = 'failed'",
            run="ri.run_id",
        )
        rows = self._rows(
            f"""SELECT ri.run_id, ri.ts, r.command, ri.item, COALESCE(ri.transcript, n.source_ref), ri.note,
                    r.engine, COALESCE(u.model, r.model), COALESCE(u.prompt_version, r.prompt_version),
                    ri.status, ri.detail, ri.error, u.n_calls, u.prompt, u.cached, u.completion, u.cost
                FROM run_items ri JOIN runs r ON r.id = ri.run_id
                LEFT JOIN notes n ON n.note_path = ri.note
                LEFT JOIN (SELECT run_id, item, MAX(model) AS model, MAX(prompt_version) AS prompt_version,
                               {_SUMS} FROM calls c WHERE run_id IS NOT NULL GROUP BY run_id, item) u
                       ON u.run_id = ri.run_id AND u.item = ri.item
                {where} ORDER BY ri.id DESC{query.limit_sql()}""",
            params,
        )
        return [LogItem(*(*r[:12], _usage(*r[12:]))) for r in rows]

    def log_calls(self, query: LogQuery) -> list[CallRow]:
        where, params = query.where(**_CALL_FILTERS)
        rows = self._rows(
            f"""SELECT c.id, c.ts, c.run_id, COALESCE(c.item, c.label), c.label, c.model, c.mode, c.prompt_version,
                    c.error, 1, COALESCE(c.prompt_tokens, 0), COALESCE(c.cached_tokens, 0),
                    COALESCE(c.completion_tokens, 0), c.cost
                FROM calls c {where} ORDER BY c.id DESC{query.limit_sql()}""",
            params,
        )
        return [CallRow(*(*r[:9], _usage(*r[9:]))) for r in rows]

    def log_totals(self, query: LogQuery, by: Literal["day", "model"]) -> list[tuple[str, Usage]]:
        """Calls summed per UTC day ("day") or per model ("model"), largest key first."""
        key = {"day": "substr(c.ts, 1, 10)", "model": "COALESCE(c.model, '?')"}[by]
        where, params = query.where(**_CALL_FILTERS)
        order = "DESC" if by == "day" else "ASC"
        rows = self._rows(
            f"SELECT {key} AS k, {_SUMS} FROM calls c {where} GROUP BY k ORDER BY k {order}",
            params,
        )
        return [(str(r[0]), _usage(*r[1:])) for r in rows]


# Usage summed over the calls `c`: one call per logged row (a failed request is a call too).
_SUMS = (
    "COUNT(c.id) AS n_calls, COALESCE(SUM(c.prompt_tokens), 0) AS prompt, "
    "COALESCE(SUM(c.cached_tokens), 0) AS cached, COALESCE(SUM(c.completion_tokens), 0) AS completion, "
    "SUM(c.cost) AS cost"
)
# How the log's filters apply to calls `c`: a note is matched through the run item the call was for.
_CALL_FILTERS = {
    "since": "c.ts",
    "note": "EXISTS (SELECT 1 FROM run_items ri WHERE ri.run_id = c.run_id AND ri.item = c.item "
    "AND ri.note LIKE ? ESCAPE '\\')",
    "failed": "c.error IS NOT NULL",
    "run": "c.run_id",
}


def _usage(calls: Any, prompt: Any, cached: Any, completion: Any, cost: Any) -> Usage:
    """Sums from SQL as `Usage`: one call per logged row (a failed request is a call too)."""
    return Usage(
        calls=int(calls or 0),
        prompt_tokens=int(prompt or 0),
        cached_tokens=int(cached or 0),
        completion_tokens=int(completion or 0),
        cost=None if cost is None else float(cost),
    )


@dataclass(frozen=True)
class LogQuery:
    """The `summarizer log` filters: since a UTC date or time, a note path containing text, failures
    only, one run; at most `limit` rows (0: all)."""

    since: str | None = None
    note: str | None = None
    failed: bool = False
    run: int | None = None
    limit: int = 0

    def where(self, *, since: str, note: str, failed: str, run: str | None = None) -> tuple[str, tuple[Any, ...]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.since:
            clauses.append(f"{since} >= ?")
            params.append(self.since)
        if self.note:
            clauses.append(note)
            escaped = self.note.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{escaped}%")
        if self.failed:
            clauses.append(failed)
        if self.run is not None:
            clauses.append(f"{run or 'r.id'} = ?")
            params.append(self.run)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)

    def limit_sql(self) -> str:
        return f" LIMIT {int(self.limit)}" if self.limit > 0 else ""


@dataclass(frozen=True)
class RunRow:
    """One command run; `usage` is every call logged for it (interrupted runs included)."""

    id: int
    command: str
    started: str
    finished: str | None
    engine: str | None
    model: str | None
    prompt_version: str | None
    status: str
    done: int | None
    skipped: int | None
    failed: int | None
    error: str | None
    usage: Usage


@dataclass(frozen=True)
class LogItem:
    """What one run did to one transcript or note, and what its calls cost."""

    run_id: int
    ts: str
    command: str
    item: str
    transcript: str | None
    note: str | None
    engine: str | None
    model: str | None
    prompt_version: str | None
    status: str
    detail: str | None
    error: str | None
    usage: Usage


@dataclass(frozen=True)
class CallRow:
    """One logged model call (one HTTP exchange, or one Batch API result line)."""

    id: int
    ts: str
    run_id: int | None
    item: str | None
    label: str | None
    model: str | None
    mode: str | None
    prompt_version: str | None
    error: str | None
    usage: Usage
