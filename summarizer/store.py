"""The vault's state store: `.summarizer/state.db` (SQLite).

It logs every model call (tokens, cost, mode, the answer; never the key),
caches validated extractions so the same content never costs a second call,
remembers which response format each server accepted, and records which run
made each note (model, prompt and template versions) for `regenerate --stale`.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from summarizer.models import ExtractionResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY, ts TEXT NOT NULL, label TEXT, model TEXT, mode TEXT, endpoint TEXT,
    prompt_version TEXT, calls INTEGER, prompt_tokens INTEGER, cached_tokens INTEGER,
    completion_tokens INTEGER, cost REAL, response TEXT, error TEXT
);
CREATE TABLE IF NOT EXISTS modes (endpoint TEXT PRIMARY KEY, mode TEXT NOT NULL, ts TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS extractions (
    key TEXT PRIMARY KEY, transcript_hash TEXT NOT NULL, engine TEXT, model TEXT,
    prompt_version TEXT, result TEXT NOT NULL, ts TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notes (
    note_path TEXT PRIMARY KEY, transcript_hash TEXT, source_ref TEXT, engine TEXT, model TEXT,
    prompt_version TEXT, template_version TEXT, extraction TEXT, ts TEXT NOT NULL, rendered TEXT
);
"""


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Store:
    """Thread-safe access to one vault's state database."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cursor = self._db.execute(sql, params)
            return cursor.fetchall()

    # ---------------------------------------------------------------- response-format modes

    def get_mode(self, endpoint: str) -> str | None:
        rows = self.execute("SELECT mode FROM modes WHERE endpoint = ?", (endpoint,))
        return str(rows[0][0]) if rows else None

    def set_mode(self, endpoint: str, mode: str) -> None:
        self.execute("INSERT OR REPLACE INTO modes VALUES (?, ?, ?)", (endpoint, mode, now()))

    # ---------------------------------------------------------------- call log

    def log_call(self, record: dict[str, Any]) -> None:
        columns = [
            *("label", "model", "mode", "endpoint", "prompt_version", "calls"),
            *("prompt_tokens", "cached_tokens", "completion_tokens", "cost", "response", "error"),
        ]
        values = [record.get(c) for c in columns]
        self.execute(
            f"INSERT INTO calls (ts, {', '.join(columns)}) VALUES (?{', ?' * len(columns)})",
            (now(), *values),
        )

    # ---------------------------------------------------------------- extraction cache

    def cached_extraction(self, key: str) -> ExtractionResult | None:
        rows = self.execute("SELECT result FROM extractions WHERE key = ?", (key,))
        return ExtractionResult.model_validate_json(rows[0][0]) if rows else None

    def cache_extraction(self, key: str, transcript_hash: str, result: ExtractionResult) -> None:
        self.execute(
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
        self.execute(
            "INSERT OR REPLACE INTO notes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

    def note_record(self, note_path: str) -> dict[str, Any] | None:
        with self._lock:
            cursor = self._db.execute("SELECT * FROM notes WHERE note_path = ?", (note_path,))
            row = cursor.fetchone()
            if row is None:
                return None
            names = [d[0] for d in cursor.description]
            record = dict(zip(names, row, strict=True))
        if record.get("extraction"):
            record["extraction"] = json.loads(record["extraction"])
        return record
