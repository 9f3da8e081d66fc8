"""The OpenAI Batch API for the inbox: half the price, results within 24 hours.

`submit` (`summarizer inbox --batch`) writes one JSONL line per transcript
whose request fits in one call (body = exactly the chat request the pipeline
would send, with the strict `response_format`), uploads it, creates the batch
and records it. `collect` (every later `inbox` run, and `--collect`) fetches
finished batches, validates each line and stores the extraction in the
pipeline's extraction cache under the key the normal path will look up, so
notes are then written and transcripts archived with no model call. Lines
that failed or do not validate simply leave their transcript to the normal
path. Output order is not guaranteed: lines are matched on `custom_id`.

Crash safety: the batch row and its items are recorded before the upload,
with a random token that also goes into the batch's metadata. A run killed
between creating the batch and recording its id finds it again by that
token on the next run; one killed before creating it drops the row, and its
transcripts are simply sent again.
"""

from __future__ import annotations

import json
import uuid
import weakref
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from summarizer.errors import ConfigError, SummarizerError
from summarizer.models import ExtractionResult, MeetingExtraction, Usage
from summarizer.runner import ItemResult, RunReport
from summarizer.store import now as _now

if TYPE_CHECKING:
    from summarizer.engines import LLMEngine
    from summarizer.inbox import Candidate, CrashPoints, InboxRun
    from summarizer.pipeline import Pipeline
    from summarizer.store import Store

ENDPOINT: Final = "/v1/chat/completions"
WINDOW: Final = "24h"
TOKEN_KEY = "summarizer_token"
CUSTOM_ID_LENGTH = 32
OPEN = ("preparing", "submitted")
FINISHED_BADLY = ("failed", "expired", "cancelled")

SCHEMA = """
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
BATCH_COLUMNS = ["token", "batch_id", "input_file_id", "status", "engine", "model", "prompt_version"]
ITEM_COLUMNS = ["custom_id", "content_hash", "cache_key", "transcript_hash", "inbox_path"]

_ready: weakref.WeakSet[Store] = weakref.WeakSet()


def ensure_schema(store: Store) -> None:
    if store in _ready:
        return
    for statement in SCHEMA.split(";"):
        if statement.strip():
            store.execute(statement)
    _ready.add(store)


# ---------------------------------------------------------------------------- lookups for the inbox


def open_batch_for(store: Store, content_hash: str) -> str | None:
    """The batch still working on this content, if any (the normal path then leaves it alone)."""
    ensure_schema(store)
    rows = store.execute(
        """SELECT b.batch_id, b.token FROM inbox_batch_items i JOIN inbox_batches b ON b.token = i.token
           WHERE i.content_hash = ? AND i.status = 'submitted' AND b.status IN ('preparing', 'submitted')""",
        (content_hash,),
    )
    return str(rows[0][0] or rows[0][1]) if rows else None


def batched_hashes(store: Store) -> set[str]:
    """Contents that went into any batch (what `--collect` processes)."""
    ensure_schema(store)
    return {str(r[0]) for r in store.execute("SELECT DISTINCT content_hash FROM inbox_batch_items")}


def batch_usage(store: Store, content_hash: str) -> Usage | None:
    """What the batch charged for this content's extraction, for the run report."""
    ensure_schema(store)
    rows = store.execute(
        """SELECT prompt_tokens, cached_tokens, completion_tokens, cost FROM inbox_batch_items
           WHERE content_hash = ? AND status = 'collected' ORDER BY updated DESC LIMIT 1""",
        (content_hash,),
    )
    if not rows:
        return None
    prompt, cached, completion, cost = rows[0]
    return Usage(
        calls=1, prompt_tokens=prompt or 0, cached_tokens=cached or 0, completion_tokens=completion or 0, cost=cost
    )


def collected_result(store: Store, content_hash: str) -> ExtractionResult | None:
    """The extraction a batch returned for this content, by the cache key stored at submission.

    A key computed now may differ (the vault index changed while the batch ran), and missing the
    cache would mean paying full price for what the batch already answered.
    """
    ensure_schema(store)
    rows = store.execute(
        """SELECT cache_key FROM inbox_batch_items WHERE content_hash = ? AND status = 'collected'
           ORDER BY updated DESC""",
        (content_hash,),
    )
    for (key,) in rows:
        found = store.cached_extraction(str(key))
        if found is not None:
            return found
    return None


# ---------------------------------------------------------------------------- requests


def _llm_engine(pipeline: Pipeline) -> LLMEngine:
    from summarizer.engines import LLMEngine

    engine = pipeline.engine
    if not isinstance(engine, LLMEngine):
        raise ConfigError(
            "--batch needs an OpenAI-compatible model: set SUMMARIZER_MODEL and OPENAI_API_KEY "
            "(the offline engine makes no calls to batch)"
        )
    return engine


def request_body(engine: LLMEngine, prompt: Any) -> dict[str, Any]:
    """The chat request the pipeline would send in strict mode, as a Batch API body."""
    from openai.lib import type_to_response_format_param

    params = engine.client.request_params(engine.output_tokens)  # same model/temperature/token limit/cache key
    return {
        **params,
        "messages": prompt.messages("strict"),
        "response_format": type_to_response_format_param(MeetingExtraction),
    }


# ---------------------------------------------------------------------------- submit


def submit(pipeline: Pipeline, run: InboxRun, ordered: list[Candidate]) -> RunReport:
    """Queue every transcript that fits one request in one batch; the rest wait for a normal run."""
    store = pipeline.store
    ensure_schema(store)
    engine = _llm_engine(pipeline)
    results: list[ItemResult] = []
    lines: list[tuple[Candidate, str, str, str, dict[str, Any]]] = []
    seen: set[str] = set()
    for c in ordered:
        row = run.journal.row(c.content_hash)
        if c.content_hash in seen or (row is not None and row["status"] == "done"):
            results.append(ItemResult(c.name, "skipped", "duplicate content: a normal run archives it"))
            continue
        seen.add(c.content_hash)
        waiting = open_batch_for(store, c.content_hash)
        if waiting is not None:
            results.append(ItemResult(c.name, "skipped", f"already in batch {waiting}"))
            continue
        try:
            transcript = pipeline.read(c.path)
            candidates = pipeline.candidates(transcript)
            key = engine.cache_key(transcript, candidates)
            if collected_result(store, c.content_hash) is not None or store.cached_extraction(key) is not None:
                results.append(ItemResult(c.name, "skipped", "already extracted: a normal run writes it, no call"))
                continue
            plan = pipeline.plan(transcript)
        except SummarizerError as err:
            run.journal.fail(c, err.reason)
            results.append(ItemResult(c.name, "failed", error=err.reason, fields={"path": c.rel}))
            continue
        if plan.calls > 1:
            results.append(ItemResult(c.name, "skipped", f"needs {len(plan.chunks)} parts: left for a normal run"))
            continue
        body = request_body(engine, engine.prompt(transcript, candidates))
        lines.append((c, c.content_hash[:CUSTOM_ID_LENGTH], key, transcript.content_hash(), body))
    report = RunReport(results)
    if not lines:
        report.extra["batch"] = None
        return report

    token = uuid.uuid4().hex
    store.execute(
        "INSERT INTO inbox_batches VALUES (?, NULL, NULL, 'preparing', ?, ?, ?, ?, ?, ?, NULL)",
        (token, engine.name, engine.model, engine.prompt_version, len(lines), _now(), _now()),
    )
    for c, custom_id, key, transcript_hash, _ in lines:
        store.execute(
            """INSERT INTO inbox_batch_items (token, custom_id, content_hash, cache_key, transcript_hash,
                   inbox_path, status, updated) VALUES (?, ?, ?, ?, ?, ?, 'submitted', ?)""",
            (token, custom_id, c.content_hash, key, transcript_hash, c.rel, _now()),
        )
    run.crash.hit("batch-after-record")
    jsonl = "".join(
        json.dumps({"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}) + "\n"
        for _, custom_id, _, _, body in lines
    ).encode("utf-8")
    try:
        client = engine.client.client()
        uploaded = client.files.create(file=("summarizer-inbox.jsonl", jsonl), purpose="batch")
        _set_batch(store, token, input_file_id=uploaded.id)
        run.crash.hit("batch-after-upload")
        batch = client.batches.create(
            input_file_id=uploaded.id,
            endpoint=ENDPOINT,
            completion_window=WINDOW,
            metadata={TOKEN_KEY: token},
        )
        run.crash.hit("batch-after-create")
        _set_batch(store, token, batch_id=batch.id, status="submitted")
    except Exception as err:
        message = f"could not submit the batch: {' '.join(str(err).split())[:300]}"
        _set_batch(store, token, status="failed", error=message)
        _fail_items(store, token, message)
        for c, *_ in lines:
            report.results.append(ItemResult(c.name, "failed", error=message, fields={"path": c.rel}))
        return report
    for c, *_ in lines:
        report.results.append(
            ItemResult(c.name, "skipped", f"submitted in batch {batch.id}", fields={"path": c.rel, "batch": batch.id})
        )
    report.extra["batch"] = {"id": batch.id, "requests": len(lines), "token": token}
    return report


def _set_batch(store: Store, token: str, **values: Any) -> None:
    values["updated"] = _now()
    columns = ", ".join(f"{name} = ?" for name in values)
    store.execute(f"UPDATE inbox_batches SET {columns} WHERE token = ?", (*values.values(), token))


def _fail_items(store: Store, token: str, error: str, custom_ids: list[str] | None = None) -> None:
    if custom_ids is None:
        store.execute(
            "UPDATE inbox_batch_items SET status = 'failed', error = ?, updated = ? WHERE token = ? "
            "AND status = 'submitted'",
            (error, _now(), token),
        )
        return
    for custom_id in custom_ids:
        store.execute(
            "UPDATE inbox_batch_items SET status = 'failed', error = ?, updated = ? WHERE token = ? AND custom_id = ?",
            (error, _now(), token, custom_id),
        )


# ---------------------------------------------------------------------------- collect


def collect(pipeline: Pipeline, crash: CrashPoints) -> list[str]:
    """Fetch every batch still open; returns one line per batch for the user."""
    store = pipeline.store
    ensure_schema(store)
    rows = [
        dict(zip(BATCH_COLUMNS, r, strict=True))
        for r in store.execute(
            f"SELECT {', '.join(BATCH_COLUMNS)} FROM inbox_batches WHERE status IN ('preparing', 'submitted') "
            "ORDER BY created"
        )
    ]
    if not rows:
        return []
    try:
        engine = _llm_engine(pipeline)
    except ConfigError:
        return [f"{len(rows)} batch(es) pending; configure the model to collect them"]
    client = engine.client.client()
    notes: list[str] = []
    for row in rows:
        try:
            if row["status"] == "preparing":
                found = _find_by_token(client, row["token"])
                if found is None:
                    _set_batch(store, row["token"], status="abandoned", error="never created (run interrupted)")
                    _fail_items(store, row["token"], "batch never created")
                    notes.append("an interrupted batch was never created; its transcripts go the normal way")
                    continue
                _set_batch(store, row["token"], batch_id=found, status="submitted")
                row["batch_id"] = found
            notes.append(_collect_one(pipeline, client, row, crash))
        except SummarizerError:
            raise
        except Exception as err:  # the API is down: leave the batch for the next run
            notes.append(f"batch {row['batch_id'] or row['token']}: not collected ({' '.join(str(err).split())[:200]})")
    return notes


def _find_by_token(client: Any, token: str) -> str | None:
    for batch in client.batches.list(limit=100):
        if (batch.metadata or {}).get(TOKEN_KEY) == token:
            return str(batch.id)
    return None


def _collect_one(pipeline: Pipeline, client: Any, row: dict[str, Any], crash: CrashPoints) -> str:
    store = pipeline.store
    token, batch_id = row["token"], row["batch_id"]
    batch = client.batches.retrieve(batch_id)
    if batch.status in FINISHED_BADLY:
        _set_batch(store, token, status=batch.status, error=_batch_errors(batch))
        _fail_items(store, token, f"batch {batch.status}")
        return f"batch {batch_id} {batch.status}: its transcripts go the normal way"
    if batch.status != "completed":
        counts = batch.request_counts
        done = f" ({counts.completed}/{counts.total})" if counts is not None and counts.total else ""
        return f"batch {batch_id} is {batch.status}{done}; its transcripts wait for it"

    items = {
        r[0]: dict(zip(ITEM_COLUMNS, r, strict=True))
        for r in store.execute(
            f"SELECT {', '.join(ITEM_COLUMNS)} FROM inbox_batch_items WHERE token = ? AND status = 'submitted'",
            (token,),
        )
    }
    lines: list[dict[str, Any]] = []
    for file_id in (batch.output_file_id, batch.error_file_id):
        if file_id:
            text = client.files.content(file_id).text
            lines.extend(json.loads(t) for t in text.splitlines() if t.strip())
    ok = 0
    failed: dict[str, str] = {}
    for line in lines:
        custom_id = line.get("custom_id")
        item = items.pop(custom_id, None) if isinstance(custom_id, str) else None
        if item is None:
            continue  # not ours, or already collected by an interrupted run
        try:
            result = parse_line(line, row, pipeline.resolved.settings.prices)
        except ValueError as err:
            failed[item["custom_id"]] = str(err)
            continue
        store.cache_extraction(item["cache_key"], item["transcript_hash"], result)
        u = result.usage
        store.execute(
            """UPDATE inbox_batch_items SET status = 'collected', error = NULL, prompt_tokens = ?,
                   cached_tokens = ?, completion_tokens = ?, cost = ?, updated = ?
               WHERE token = ? AND custom_id = ?""",
            (u.prompt_tokens, u.cached_tokens, u.completion_tokens, u.cost, _now(), token, item["custom_id"]),
        )
        ok += 1
        crash.hit("batch-mid-collect")
    for custom_id, error in failed.items():
        _fail_items(store, token, error, [custom_id])
    if items:
        _fail_items(store, token, "no result line for this request", list(items))
    _set_batch(store, token, status="collected")
    bad = len(failed) + len(items)
    tail = f"; {bad} left for normal processing" if bad else ""
    return f"batch {batch_id}: {ok} result(s) collected{tail}"


def parse_line(line: dict[str, Any], batch: dict[str, Any], prices: Any = None) -> ExtractionResult:
    """One output line -> a validated extraction; ValueError says why a line is unusable."""
    from openai.types.chat import ChatCompletion

    from summarizer.pricing import estimate_cost

    if line.get("error"):
        raise ValueError(f"request failed: {line['error']}")
    response = line.get("response") or {}
    if response.get("status_code") != 200:
        raise ValueError(f"request failed with status {response.get('status_code')}")
    try:
        completion = ChatCompletion.model_validate(response.get("body"))
    except ValidationError as err:
        raise ValueError(f"not a chat completion: {err.error_count()} problem(s)") from err
    if not completion.choices:
        raise ValueError("the answer has no choices")
    choice = completion.choices[0]
    if choice.finish_reason != "stop" or not choice.message.content:
        raise ValueError(f"unusable answer (finish_reason {choice.finish_reason}, refusal {choice.message.refusal!r})")
    try:
        extraction = MeetingExtraction.model_validate_json(choice.message.content)
    except ValidationError as err:
        raise ValueError(f"the answer does not match the schema: {err.error_count()} problem(s)") from err
    usage = Usage(calls=1)
    if completion.usage is not None:
        details = completion.usage.prompt_tokens_details
        cached = (details.cached_tokens or 0) if details is not None else 0
        prompt, out = completion.usage.prompt_tokens, completion.usage.completion_tokens
        cost = estimate_cost(str(batch["model"]), prompt, out, cached, prices, batch=True)
        usage = Usage(calls=1, prompt_tokens=prompt, cached_tokens=cached, completion_tokens=out, cost=cost)
    return ExtractionResult(
        extraction=extraction,
        engine=str(batch["engine"]),
        model=str(batch["model"]),
        prompt_version=str(batch["prompt_version"]),
        usage=usage,
    )


def _batch_errors(batch: Any) -> str | None:
    errors = getattr(batch, "errors", None)
    data = getattr(errors, "data", None) or []
    return "; ".join(str(getattr(e, "message", e)) for e in data)[:500] or None
