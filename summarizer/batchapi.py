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

import dataclasses
import json
import uuid
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from summarizer.errors import ConfigError, SummarizerError
from summarizer.models import ExtractionResult, MeetingExtraction, Usage
from summarizer.runner import ItemResult, RunReport
from summarizer.store import BatchItem, BatchRow, Store

if TYPE_CHECKING:
    from summarizer.engines import LLMEngine
    from summarizer.inbox_journal import CrashPoints
    from summarizer.inbox_scan import Candidate
    from summarizer.llm import ModelClient
    from summarizer.pipeline import Pipeline
    from summarizer.templatesets import Catalogue

ENDPOINT: Final = "/v1/chat/completions"
WINDOW: Final = "24h"
TOKEN_KEY = "summarizer_token"
CUSTOM_ID_LENGTH = 32
OPEN = ("preparing", "submitted")
FINISHED_BADLY = ("failed", "expired", "cancelled")

BATCH_NEEDS_MODEL = (
    "--batch needs an OpenAI-compatible model: set SUMMARIZER_MODEL and OPENAI_API_KEY "
    "(the offline engine makes no calls to batch)"
)


# ---------------------------------------------------------------------------- requests


def _provider(pipeline: Pipeline) -> ModelClient:
    """The engine's OpenAI-compatible client (the Batch API is that provider's)."""
    from summarizer.engines import LLMEngine

    engine = pipeline.engine
    if not isinstance(engine, LLMEngine) or engine.provider is None:
        raise ConfigError(BATCH_NEEDS_MODEL)
    return engine.provider


def request_body(provider: ModelClient, output_tokens: int, prompt: Any) -> dict[str, Any]:
    """The chat request the pipeline would send in strict mode, as a Batch API body."""
    from openai.lib import type_to_response_format_param

    params = provider.request_params(output_tokens)  # same model/temperature/token limit/cache key
    return {
        **params,
        "messages": prompt.messages("strict"),
        "response_format": type_to_response_format_param(MeetingExtraction),
    }


# ---------------------------------------------------------------------------- submit


@dataclasses.dataclass
class _Line:
    """One transcript's request in a batch file, with the engine (template set) that made it."""

    candidate: Candidate
    custom_id: str
    cache_key: str
    transcript_hash: str
    body: dict[str, Any]
    engine: LLMEngine


def submit(
    pipeline: Pipeline, crash: CrashPoints, ordered: list[Candidate], catalogue: Catalogue | None = None
) -> RunReport:
    """Queue every transcript that fits one request in a batch (one per template set: a batch records
    one prompt version); the rest wait for a normal run. `catalogue`: the template sets as the run read
    them (None: each transcript reads them, and a broken set fails only the transcripts it concerns)."""
    from summarizer.engines import LLMEngine
    from summarizer.templatesets import for_transcript

    pipeline.warmed()  # the SDK may be mid-import on the warm-up thread: never import it alongside

    store = pipeline.store
    provider = _provider(pipeline)
    results: list[ItemResult] = []
    lines: list[_Line] = []
    seen: set[str] = set()
    for c in ordered:
        row = store.journal_row(c.content_hash)
        if c.content_hash in seen or (row is not None and row.status == "done"):
            results.append(ItemResult(c.name, "skipped", "duplicate content: a normal run archives it"))
            continue
        seen.add(c.content_hash)
        waiting = store.open_batch_for(c.content_hash)
        if waiting is not None:
            results.append(ItemResult(c.name, "skipped", f"already in batch {waiting}"))
            continue
        try:
            # The template set a normal run would use: its instructions go in the request, and the
            # result is cached under its key, where that run looks for it.
            chosen = for_transcript(pipeline, c.path, catalogue=catalogue)
            engine = chosen.engine
            assert isinstance(engine, LLMEngine)
            transcript = chosen.read(c.path)
            if chosen.existing_notes(transcript, follow=False):
                results.append(ItemResult(c.name, "skipped", "already summarised: a normal run archives it, no call"))
                continue
            candidates = chosen.candidates(transcript)
            key = engine.cache_key(transcript, candidates)
            if store.collected_result(c.content_hash) is not None or store.cached_extraction(key) is not None:
                results.append(ItemResult(c.name, "skipped", "already extracted: a normal run writes it, no call"))
                continue
            plan = chosen.plan(transcript)
        except SummarizerError as err:
            message = err.for_row(c.path.name)
            store.journal_fail(c.content_hash, c.rel, message)
            results.append(ItemResult(c.name, "failed", error=message, fields={"path": c.rel}))
            continue
        if plan.calls > 1:
            results.append(ItemResult(c.name, "skipped", f"needs {len(plan.chunks)} parts: left for a normal run"))
            continue
        body = request_body(provider, engine.output_tokens, engine.prompt(transcript, candidates))
        custom_id = c.content_hash[:CUSTOM_ID_LENGTH]
        lines.append(_Line(c, custom_id, key, transcript.content_hash(), body, engine))
    report = RunReport(results)
    by_version: dict[str, list[_Line]] = {}
    for line in lines:
        by_version.setdefault(line.engine.prompt_version, []).append(line)
    submitted = [_submit_batch(store, provider, crash, group, report) for group in by_version.values()]
    batches = [batch for batch in submitted if batch is not None]
    report.extra["batch"] = batches[0] if batches else None  # the first (most runs make one)
    report.extra["submitted"] = batches  # every batch made, one per template set
    return report


def _submit_batch(
    store: Store, provider: ModelClient, crash: CrashPoints, lines: list[_Line], report: RunReport
) -> dict[str, Any] | None:
    """One batch of requests made with one engine: recorded, uploaded, created; its items reported."""
    engine = lines[0].engine
    token = uuid.uuid4().hex
    items = [
        BatchItem(x.custom_id, x.candidate.content_hash, x.cache_key, x.transcript_hash, x.candidate.rel) for x in lines
    ]
    store.batch_record(token, engine.name, engine.model, engine.prompt_version, items)
    crash.hit("batch-after-record")
    jsonl = "".join(
        json.dumps({"custom_id": x.custom_id, "method": "POST", "url": ENDPOINT, "body": x.body}) + "\n"
        for x in lines
    ).encode("utf-8")
    try:
        client = provider.client()
        uploaded = client.files.create(file=("summarizer-inbox.jsonl", jsonl), purpose="batch")
        store.batch_set(token, input_file_id=uploaded.id)
        crash.hit("batch-after-upload")
        batch = client.batches.create(
            input_file_id=uploaded.id,
            endpoint=ENDPOINT,
            completion_window=WINDOW,
            metadata={TOKEN_KEY: token},
        )
        crash.hit("batch-after-create")
        store.batch_set(token, batch_id=batch.id, status="submitted")
    except Exception as err:
        message = f"could not submit the batch: {' '.join(str(err).split())[:300]}"
        store.batch_set(token, status="failed", error=message)
        store.batch_items_fail(token, message)
        for x in lines:
            fields = {"path": x.candidate.rel}
            report.results.append(ItemResult(x.candidate.name, "failed", error=message, fields=fields))
        return None
    for x in lines:
        fields = {"path": x.candidate.rel, "batch": batch.id}
        report.results.append(ItemResult(x.candidate.name, "skipped", f"submitted in batch {batch.id}", fields=fields))
    return {"id": batch.id, "requests": len(lines), "token": token}


# ---------------------------------------------------------------------------- collect


def collect(pipeline: Pipeline, crash: CrashPoints) -> list[str]:
    """Fetch every batch still open; returns one line per batch for the user."""
    store = pipeline.store
    rows = store.open_batches()
    if rows:
        pipeline.warmed()  # the SDK may be mid-import on the warm-up thread: never import it alongside
    if not rows:
        return []
    try:
        provider = _provider(pipeline)
    except ConfigError:
        return [f"{len(rows)} batch(es) pending; configure the model to collect them"]
    client = provider.client()
    notes: list[str] = []
    for row in rows:
        try:
            if row.status == "preparing":
                found = _find_by_token(client, row.token)
                if found is None:
                    store.batch_set(row.token, status="abandoned", error="never created (run interrupted)")
                    store.batch_items_fail(row.token, "batch never created")
                    notes.append("an interrupted batch was never created; its transcripts go the normal way")
                    continue
                store.batch_set(row.token, batch_id=found, status="submitted")
                row = dataclasses.replace(row, batch_id=found)
            notes.append(_collect_one(pipeline, client, row, crash))
        except SummarizerError:
            raise
        except Exception as err:  # the API is down: leave the batch for the next run
            notes.append(f"batch {row.batch_id or row.token}: not collected ({' '.join(str(err).split())[:200]})")
    return notes


def _find_by_token(client: Any, token: str) -> str | None:
    for batch in client.batches.list(limit=100):
        if (batch.metadata or {}).get(TOKEN_KEY) == token:
            return str(batch.id)
    return None


def _collect_one(pipeline: Pipeline, client: Any, row: BatchRow, crash: CrashPoints) -> str:
    store = pipeline.store
    token, batch_id = row.token, row.batch_id
    batch = client.batches.retrieve(batch_id)
    if batch.status in FINISHED_BADLY:
        store.batch_set(token, status=batch.status, error=_batch_errors(batch))
        store.batch_items_fail(token, f"batch {batch.status}")
        return f"batch {batch_id} {batch.status}: its transcripts go the normal way"
    if batch.status != "completed":
        counts = batch.request_counts
        done = f" ({counts.completed}/{counts.total})" if counts is not None and counts.total else ""
        return f"batch {batch_id} is {batch.status}{done}; its transcripts wait for it"

    items = store.batch_items_waiting(token)
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
        prices = pipeline.resolved.settings.prices
        # Each result line is a call made (and billed, when it has usage): logged for its transcript.
        call = {"label": item.inbox_path or item.custom_id, "model": row.model, "mode": "batch"}
        call.update(endpoint=_provider(pipeline).base_url, prompt_version=row.prompt_version)
        try:
            result = parse_line(line, row, prices)
        except ValueError as err:
            failed[item.custom_id] = str(err)
            store.log_call({**call, **line_usage(line, row, prices).model_dump(), "error": str(err)})
            continue
        store.cache_extraction(item.cache_key, item.transcript_hash, result)
        store.batch_item_collected(token, item.custom_id, result.usage)
        store.log_call({**call, **result.usage.model_dump(), "response": result.extraction.model_dump_json()})
        ok += 1
        crash.hit("batch-mid-collect")
    for custom_id, error in failed.items():
        store.batch_items_fail(token, error, [custom_id])
    if items:
        store.batch_items_fail(token, "no result line for this request", list(items))
    store.batch_set(token, status="collected")
    bad = len(failed) + len(items)
    tail = f"; {bad} left for normal processing" if bad else ""
    return f"batch {batch_id}: {ok} result(s) collected{tail}"


def parse_line(line: dict[str, Any], batch: BatchRow, prices: Any = None) -> ExtractionResult:
    """One output line -> a validated extraction; ValueError says why a line is unusable."""
    from openai.types.chat import ChatCompletion

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
    return ExtractionResult(
        extraction=extraction,
        engine=batch.engine,
        model=batch.model,
        prompt_version=batch.prompt_version,
        usage=line_usage(line, batch, prices),
    )


def line_usage(line: dict[str, Any], batch: BatchRow, prices: Any = None) -> Usage:
    """What one result line used and costs (at the batch price); nothing when it says nothing."""
    from summarizer.pricing import estimate_cost

    body = (line.get("response") or {}).get("body")
    raw = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(raw, dict):
        return Usage(calls=1)
    details = raw.get("prompt_tokens_details")
    cached = int((details.get("cached_tokens") if isinstance(details, dict) else 0) or 0)
    prompt, out = int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0)
    cost = estimate_cost(batch.model, prompt, out, cached, prices, batch=True)
    return Usage(calls=1, prompt_tokens=prompt, cached_tokens=cached, completion_tokens=out, cost=cost)


def _batch_errors(batch: Any) -> str | None:
    errors = getattr(batch, "errors", None)
    data = getattr(errors, "data", None) or []
    return "; ".join(str(getattr(e, "message", e)) for e in data)[:500] or None
