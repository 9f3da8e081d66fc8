"""The state database's layouts, as ordered migrations (`PRAGMA user_version` N = MIGRATIONS[:N] applied).

Only `summarizer.store` uses this. Never edit a shipped step: append one, and keep an SQL fixture
of the layout before it in tests/data/state_layouts/.
"""

from __future__ import annotations

# Every layout ever shipped, in order. Versions 1-3 predate `user_version` (files of those versions
# say 0 and are recognised by their tables); never edit a shipped step, add a new one.
_V1 = """
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
    prompt_version TEXT, template_version TEXT, extraction TEXT, ts TEXT NOT NULL
);
"""
_V2 = "ALTER TABLE notes ADD COLUMN rendered TEXT;"
_V3 = """
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
CREATE TABLE IF NOT EXISTS inbox_batches (
    token TEXT PRIMARY KEY, batch_id TEXT, input_file_id TEXT, status TEXT NOT NULL,
    engine TEXT, model TEXT, prompt_version TEXT, requests INTEGER,
    created TEXT NOT NULL, updated TEXT NOT NULL, error TEXT
);
CREATE TABLE IF NOT EXISTS inbox_batch_items (
    token TEXT NOT NULL, custom_id TEXT NOT NULL, content_hash TEXT NOT NULL, cache_key TEXT NOT NULL,
    transcript_hash TEXT NOT NULL, inbox_path TEXT, status TEXT NOT NULL, error TEXT,
    prompt_tokens INTEGER, cached_tokens INTEGER, completion_tokens INTEGER, cost REAL, updated TEXT,
    PRIMARY KEY (token, custom_id)
);
CREATE INDEX IF NOT EXISTS inbox_batch_items_hash ON inbox_batch_items (content_hash);
"""
# Runs: every command run (`runs`), what it did to each item (`run_items`), and which run and item
# (transcript or note, the label without its "(part i/n)"/"(merge)" suffix) each logged call was for.
_V4_RUNS = """
ALTER TABLE calls ADD COLUMN run_id INTEGER;
ALTER TABLE calls ADD COLUMN item TEXT;
CREATE INDEX IF NOT EXISTS calls_run_item ON calls (run_id, item);
CREATE INDEX IF NOT EXISTS calls_ts ON calls (ts);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, command TEXT NOT NULL, started TEXT NOT NULL, finished TEXT,
    engine TEXT, model TEXT, prompt_version TEXT, status TEXT NOT NULL,
    done INTEGER, skipped INTEGER, failed INTEGER, calls INTEGER, prompt_tokens INTEGER,
    cached_tokens INTEGER, completion_tokens INTEGER, cost REAL, error TEXT
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started);
CREATE TABLE IF NOT EXISTS run_items (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, item TEXT NOT NULL, name TEXT, transcript TEXT,
    note TEXT, status TEXT NOT NULL, detail TEXT, error TEXT, seconds REAL, ts TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS run_items_run ON run_items (run_id, item);
CREATE INDEX IF NOT EXISTS run_items_ts ON run_items (ts);
"""
# What was learned about each server and model (base URL|model, as `modes`): the window its overflow
# errors or `/props` stated, its tokenizer's count against ours, its parallel slots, and whether its
# metadata routes were already asked (once per endpoint per store).
_V5_LIMITS = """
CREATE TABLE IF NOT EXISTS server_limits (
    endpoint TEXT PRIMARY KEY, context_window INTEGER, token_ratio REAL, slots INTEGER,
    probed INTEGER NOT NULL DEFAULT 0, ts TEXT NOT NULL
);
"""
V3_TABLES = frozenset({"inbox_transcripts", "inbox_duplicates", "inbox_batches", "inbox_batch_items"})
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4_RUNS, _V5_LIMITS)  # MIGRATIONS[n - 1] takes a database to version n
