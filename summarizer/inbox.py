"""`summarizer inbox`: summarise every transcript waiting in the vault's inbox, safely.

Each transcript goes through the same `Pipeline` draft-then-commit as `summarise`: the note is
written atomically, THEN the transcript moves to `<archive>/<YYYY-MM-DD>/`, and the note's
`source_ref` already points at that archived file. A failure leaves the transcript in the inbox
with the error recorded; the rest go on. A transcript whose content already has a note (made by
`summarise`) gets no second one: it is archived and that note relinked (`InboxRun._adopt`).

This module is the run itself; the parts live by job: `inbox_scan` (what is waiting),
`inbox_journal` (crash points and recovery of a killed run; the journal's rows are kept by
`store`), `archive` (moves that never overwrite), `vaultlock` (one writing run per vault) and
`batchapi` (the Batch API path).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from summarizer.archive import Archiver
from summarizer.collector import start_up_spared
from summarizer.errors import ConfigError, ModelError, SummarizerError
from summarizer.inbox_journal import CRASH_ENV, CrashPoints, Recovery, sha
from summarizer.inbox_scan import Candidate, InboxOptions, Scan, file_hash, scan_inbox
from summarizer.models import Usage
from summarizer.modelseam import RateLimitedError, ServerUnavailableError
from summarizer.noteformat import is_linkable
from summarizer.runlog import RunLedger
from summarizer.runner import (
    AdaptiveLimiter,
    Display,
    ItemResult,
    ProgressFn,
    Runner,
    RunReport,
)
from summarizer.store import JournalRow, now
from summarizer.templatesets import Catalogue, catalogue_for, for_transcript
from summarizer.turns import Turns, admitted_by
from summarizer.vaultlock import vault_lock

if TYPE_CHECKING:
    from summarizer.models import ExtractionResult, Transcript
    from summarizer.notefind import FoundNote
    from summarizer.pipeline import Pipeline
    from summarizer.vault import Vault

__all__ = ["Candidate", "InboxOptions", "InboxRun", "check_options", "open_pipeline", "run_inbox"]

RATE_LIMIT_ROUNDS = 3  # whole-transcript retries after the SDK gave up on 429s


def is_rate_limited(error: BaseException) -> bool:
    return _caused_by(error, RateLimitedError)


def is_retry_later(error: BaseException) -> bool:
    """The model server was down, failing (5xx) or rate limiting: the transcript is not at fault."""
    return _caused_by(error, RateLimitedError) or _caused_by(error, ServerUnavailableError)


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, kind):
            return True
        cause = cause.__cause__
    return False


# ---------------------------------------------------------------------------- one run


class InboxRun:
    """Scan and process the inbox of one vault (the caller holds the vault lock)."""

    def __init__(self, pipeline: Pipeline, options: InboxOptions) -> None:
        self.pipeline = pipeline
        self.store = pipeline.store
        self.options = options
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
        self.crash = CrashPoints(os.environ.get(CRASH_ENV))
        self.archiver = Archiver(self.vault, self.archive_rel)
        self.recovery = Recovery(pipeline, self.archiver, self.crash)
        self._primary_done: dict[str, threading.Event] = {}
        self._firsts: set[int] = set()
        self.turns = Turns()
        self.catalogue: Catalogue | None = None  # the template sets, read once per batch (`prepare`)
        # Transcripts at the model at once (`concurrency`); their requests, parts included, are bounded
        # separately by the run's limiter (the server's slots).
        self.at_model = threading.BoundedSemaphore(settings.concurrency)
        self.ledger: RunLedger | None = None  # set for a run that may call the model (not a dry run)

    def scan(self) -> Scan:
        ignore = self.store.note_paths_under(self.inbox_rel)
        return scan_inbox(self.vault, self.inbox_rel, self.archive_rel, self.options, ignore)

    def order(self, candidates: list[Candidate]) -> list[Candidate]:
        """First file of each content first, its copies after: a copy waits for the first's note.
        Each batch starts afresh (`watch` runs one after another for as long as it lives)."""
        firsts: dict[str, Candidate] = {}
        copies: list[Candidate] = []
        self._primary_done = {}
        self.archiver.forget_claims()  # the last batch's notes are on disk now, or were never written
        for c in candidates:
            if c.content_hash in firsts:
                copies.append(c)
            else:
                firsts[c.content_hash] = c
                self._primary_done[c.content_hash] = threading.Event()
        self._firsts = {id(c) for c in firsts.values()}
        return [*firsts.values(), *copies]

    def prepare(self, candidates: list[Candidate]) -> list[Candidate]:
        """`order`ed, with the vault index built before this batch writes any note."""
        ordered = self.order(candidates)
        try:  # per batch: `watch` sees sets added meanwhile
            self.catalogue = catalogue_for(self.pipeline)
        except SummarizerError:
            self.catalogue = None  # each transcript reads the sets itself and fails alone, naming the fault
        if ordered and self.pipeline.engine.name != "offline":
            # The names the index offers the model are part of the extraction cache key, so every
            # item of the batch (and a re-run after a crash) must see the same index.
            self.pipeline.index  # noqa: B018
        return ordered

    def execute(
        self, ordered: list[Candidate], display: Display | None, stop: threading.Event | None = None
    ) -> RunReport:
        """Process (or dry-run) `prepare`d candidates; once `stop` is set, items not yet started are
        left for the next run and the ones in flight finish."""
        fn = self.dry_run if self.options.dry_run else self.process

        def item(c: Candidate, progress: ProgressFn) -> ItemResult:
            if stop is not None and stop.is_set():
                if id(c) in self._firsts:
                    self._primary_done[c.content_hash].set()  # its copies need not wait
                return ItemResult(c.name, "skipped", "not started: stopping; next run", fields={"path": c.rel})
            return fn(c, progress)

        # Twice as many workers as request slots: while the limiter's slots are busy, the spare
        # workers read, plan and write notes, so no slot waits for CPU work.
        workers = 2 * self.pipeline.resolved.settings.concurrency
        ledger = self.ledger
        account = None if ledger is None else (lambda c, r: ledger.item(c.rel, r, transcript=c.rel))
        runner = Runner(item, lambda c: c.name, workers=workers, display=display, account=account)
        if ordered and not self.options.dry_run:
            self.pipeline.warmed()  # workers start once the SDK is in: they would only slow its import
        with start_up_spared():
            return runner.run(ordered)

    def forget_index(self) -> None:
        """Drop the vault index (a long-running `watch` rebuilds it per batch, seeing new notes)."""
        shared = self.pipeline.shared_index
        with shared.lock:
            shared.index = None

    # ------------------------------------------------------------------ one item

    def process(self, c: Candidate, progress: ProgressFn) -> ItemResult:
        first = id(c) in self._firsts
        try:
            if not first:
                return self._copy_of_this_run(c)
            try:
                with self.turns.turn():  # one worker at a time prepares its request (see `turns`)
                    return self._process_first(c, progress)
            finally:
                self._primary_done[c.content_hash].set()
        except SummarizerError as err:
            failed = self._failed(c, err.for_row(c.path.name))
            if is_retry_later(err):
                failed.fields["retry_later"] = True  # the model server's fault: `watch` tries again later
            return failed
        except OSError as err:
            return self._failed(c, f"{err.strerror or err}")

    def _failed(self, c: Candidate, error: str) -> ItemResult:
        row = self.store.journal_row(c.content_hash)
        if row is None or row.status not in ("planned", "written"):
            self.store.journal_fail(c.content_hash, c.rel, error)
        # A planned/written row is left for recover(), which knows whether the note exists.
        return ItemResult(c.name, "failed", error=error, fields={"path": c.rel})

    def _copy_of_this_run(self, c: Candidate) -> ItemResult:
        self._primary_done[c.content_hash].wait()
        row = self.store.journal_row(c.content_hash)
        if row is None or row.status != "done":
            return ItemResult(
                c.name,
                "skipped",
                "same content as another inbox file that was not finished; next run",
                fields={"path": c.rel},
            )
        return self._archive_duplicate(c, row)

    def _archive_duplicate(self, c: Candidate, row: JournalRow) -> ItemResult:
        target = self.archiver.target(c.path)
        self.store.duplicate_plan(c.content_hash, c.rel, self.archiver.rel(target), row.note_path)
        self.crash.hit("after-duplicate-plan")

        def renamed(new: Path) -> None:
            self.store.duplicate_set(c.content_hash, c.rel, archive=self.archiver.rel(new))

        archive_rel = self.archiver.rel(self.archiver.move(c.path, target, on_clash=renamed))
        self.crash.hit("after-duplicate-move")
        self.store.duplicate_set(c.content_hash, c.rel, status="done")
        return ItemResult(
            c.name,
            "done",
            f"duplicate of {row.note_path}; archived, no new note",
            fields={"path": c.rel, "note": row.note_path, "archive": archive_rel, "duplicate": True},
        )

    def _unchanged(self, c: Candidate) -> bool:
        try:
            stat = c.path.stat()
        except FileNotFoundError:
            return False
        return (stat.st_size, stat.st_mtime_ns) == (c.size, c.mtime_ns)

    def _process_first(self, c: Candidate, progress: ProgressFn) -> ItemResult:
        row = self.store.journal_row(c.content_hash)
        if row is not None and row.status == "done":
            return self._archive_duplicate(c, row)
        waiting = self.store.open_batch_for(c.content_hash)
        if waiting is not None:
            return ItemResult(c.name, "skipped", f"waiting for batch {waiting}", fields={"path": c.rel})
        if not self._unchanged(c) or file_hash(c.path) != c.content_hash:
            return ItemResult(c.name, "skipped", "still being written (changed since the scan); next run")

        pipeline = for_transcript(self.pipeline, c.path, catalogue=self.catalogue)
        transcript = pipeline.read(c.path)
        existing = pipeline.existing_notes(transcript)
        if existing:
            return self._adopt(c, existing)
        archive = self.archiver.target(c.path)
        archive_rel = self.archiver.rel(archive)
        result, cached = self._extract(c, pipeline, transcript, progress)
        engine = pipeline.engine
        # What this run's call log holds for the transcript: a batch result collected above included.
        usage = self.ledger.usage(c.rel) if self.ledger else (Usage() if cached else result.usage)
        # One draft, from the extraction chosen above: the vault index may change meanwhile (another
        # worker's stub notes), and a new cache key would mean a second paid call.
        draft = pipeline.draft(transcript, result, archive_rel, source=c.path, cached=cached)
        target = self.archiver.claim(draft.target)
        note_rel = self.vault.relative(target)
        self.store.journal_plan(c.content_hash, c.rel, note_rel, sha(draft.text), archive_rel)
        self.store.journal_usage(c.content_hash, usage, engine.name, engine.model, engine.prompt_version)
        self.crash.hit("after-plan")
        progress("writing the note")
        written = pipeline.commit(draft, at=target).note_path or target
        if written != target:
            note_rel = self.vault.relative(written)
        self.crash.hit("after-note-write")
        self.store.journal_set(c.content_hash, status="written", note_path=note_rel, note_sha=sha(draft.text))
        self.crash.hit("after-note-recorded")
        moved = self.archiver.move(
            c.path, archive, on_clash=lambda new: self.recovery.rearchive(c.content_hash, written, new)
        )
        archive_rel = self.archiver.rel(moved)
        self.crash.hit("after-move")
        self.store.journal_set(c.content_hash, status="done", done_at=now(), error=None)
        self.crash.hit("after-done")
        detail = f"-> {note_rel}" + (" (from cache, no call)" if cached and not usage.calls else "")
        if draft.unsupported:
            detail += f"; {draft.unsupported} item(s) with evidence not found"
        return ItemResult(
            c.name,
            "done",
            detail,
            usage=usage,
            fields={"path": c.rel, "note": note_rel, "archive": archive_rel, "cached": cached},
        )

    # ------------------------------------------------------------------ a transcript that already has a note

    def _adopt(self, c: Candidate, existing: list[FoundNote]) -> ItemResult:
        """The transcript already has a note (`summarise` made it): archive the transcript and point
        that note at the archived file, rather than write a second note. Journalled like a new note
        (planned, written, done), so a run killed midway is rolled forward by the next one."""
        stale = [f for f in existing if self._links_here_or_nowhere(f.path, c.rel)]
        if not stale:  # its notes link to another file of the same content: this one is a duplicate
            row = JournalRow(c.content_hash, "done", c.rel, self.vault.relative(existing[0].path), None, None, None)
            return self._archive_duplicate(c, row)
        archive = self.archiver.target(c.path)
        archive_rel = self.archiver.rel(archive)
        original = None if is_linkable(c.path.name) else c.path.name
        relink = self.pipeline.note_format.relink
        texts = [relink(f.path.read_text(encoding="utf-8"), archive_rel, original) for f in stale]
        primary = stale[0].path
        note_rel = self.vault.relative(primary)
        self.store.journal_plan(c.content_hash, c.rel, note_rel, sha(texts[0]), archive_rel)
        self.crash.hit("after-plan")
        for found, text in zip(stale, texts, strict=True):
            self._relink_note(found, text, archive_rel, original)
        self.crash.hit("after-note-write")
        self.store.journal_set(c.content_hash, status="written", note_path=note_rel, note_sha=sha(texts[0]))
        self.crash.hit("after-note-recorded")

        def clash(new: Path) -> None:  # the archive name was taken meanwhile: every note follows
            new_rel = self.archiver.rel(new)
            for found in stale[1:]:
                self._relink_note(found, relink(found.path.read_text(encoding="utf-8"), new_rel), new_rel, original)
            self.recovery.rearchive(c.content_hash, primary, new)

        archive_rel = self.archiver.rel(self.archiver.move(c.path, archive, on_clash=clash))
        self.crash.hit("after-move")
        self.store.journal_set(c.content_hash, status="done", done_at=now(), error=None)
        self.crash.hit("after-done")
        others = f" (and {len(stale) - 1} other note(s))" if len(stale) > 1 else ""
        return ItemResult(
            c.name,
            "done",
            f"already summarised in {note_rel}{others}: archived and the note relinked, no new note",
            fields={"path": c.rel, "note": note_rel, "archive": archive_rel, "adopted": True},
        )

    def _links_here_or_nowhere(self, note: Path, inbox_rel: str) -> bool:
        """The note's source_ref names this inbox file, or a file that is not there (so it needs relinking)."""
        from summarizer.vault_index import read_frontmatter

        data = read_frontmatter(note) or {}
        ref = data.get("source_ref")
        if not isinstance(ref, str) or ref == inbox_rel:
            return True
        try:
            return not self.vault.inside(ref).is_file()
        except SummarizerError:
            return True

    def _relink_note(self, found: FoundNote, text: str, archive_rel: str, original: str | None) -> None:
        """Write the relinked note (only if it changed) and relink its record's generated text to match."""
        if found.path.read_text(encoding="utf-8") != text:
            self.vault.write_atomic(found.path, text)
        rendered = found.record.rendered
        relinked = self.pipeline.note_format.relink(rendered, archive_rel, original) if rendered else rendered
        self.store.relink_note(self.vault.relative(found.path), archive_rel, relinked)

    def _extract(
        self, c: Candidate, pipeline: Pipeline, transcript: Transcript, progress: ProgressFn
    ) -> tuple[ExtractionResult, bool]:
        """The pipeline's cached extraction; a transcript the SDK gave up on for 429s gets more rounds."""
        # A batch's result is cached under the key of its submission: look it up by that key,
        # since the vault index (and so a key computed now) may have changed since.
        found = self.store.collected_result(c.content_hash)
        if found is not None:
            return found, True
        rounds = 0
        while True:
            try:
                with admitted_by(self.at_model):  # its place is taken once its request is ready
                    return pipeline.extract(transcript, label=c.rel, progress=progress)
            except ModelError as err:
                if rounds >= RATE_LIMIT_ROUNDS or not is_rate_limited(err):
                    raise
                rounds += 1
                progress(f"still rate limited; round {rounds + 1} of {RATE_LIMIT_ROUNDS + 1}")

    # ------------------------------------------------------------------ dry run

    def dry_run(self, c: Candidate, progress: ProgressFn) -> ItemResult:
        from summarizer.pricing import estimate_cost

        fields: dict[str, Any] = {"path": c.rel, "dry_run": True}
        row = self.store.journal_row(c.content_hash)
        if id(c) not in self._firsts or (row is not None and row.status == "done"):
            of = row.note_path if row else "an earlier file of this run"
            return ItemResult(c.name, "skipped", f"would archive as a duplicate of {of} (no call)", fields=fields)
        waiting = self.store.open_batch_for(c.content_hash)
        if waiting is not None:
            return ItemResult(c.name, "skipped", f"waiting for batch {waiting}", fields=fields)
        pipeline = for_transcript(self.pipeline, c.path, catalogue=self.catalogue)
        transcript = pipeline.read(c.path)
        existing = pipeline.existing_notes(transcript, follow=False)
        if existing:
            of = self.vault.relative(existing[0].path)
            detail = f"already summarised in {of}: would archive it and relink that note (no call)"
            return ItemResult(c.name, "skipped", detail, fields=fields)
        if self.recovery.cached_result(transcript, c.content_hash, pipeline) is not None:
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


# ---------------------------------------------------------------------------- entry point


def check_options(options: InboxOptions) -> None:
    """Usage errors (exit 2) before the vault lock, any model call or any write."""
    from summarizer.engines import check_engine_choice

    if options.concurrency is not None and options.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if options.settle < 0:
        raise ConfigError("--settle must be zero or more seconds")
    if options.limit is not None and options.limit < 0:
        raise ConfigError(f"--limit must be zero or more, got {options.limit}")
    check_engine_choice(options.engine)


def open_pipeline(vault: Vault, options: InboxOptions, say: ProgressFn) -> tuple[Pipeline, AdaptiveLimiter]:
    """The run's pipeline behind an adaptive limiter sized to its concurrency (the caller holds the
    vault lock and closes the pipeline); template-set rules are checked before any call."""
    from summarizer.pipeline import Pipeline

    limiter = AdaptiveLimiter(1)  # sized once the settings (and so the concurrency) are known
    flags = {"model": options.model, "concurrency": options.concurrency}
    pipeline = Pipeline.open(vault.root, flags, engine=options.engine, observers=[limiter], wrappers=[limiter.wrap])
    try:
        catalogue_for(pipeline)
        for line in pipeline.notices:
            say(line)
        limiter.resize(pipeline.engine.request_slots)
        if not options.dry_run:
            pipeline.warm_up()  # the client builds while we recover, scan and read
    except BaseException:
        pipeline.close()
        raise
    return pipeline, limiter


def run_inbox(
    vault_root: Path,
    options: InboxOptions,
    *,
    display: Display | None = None,
    notice: ProgressFn | None = None,
) -> RunReport:
    """The whole command: lock, open, recover, collect batches, then process or submit."""
    from summarizer import batchapi
    from summarizer.vault import Vault

    say = notice or (lambda _message: None)
    if options.batch and options.collect:
        raise ConfigError("--batch submits and --collect retrieves: use one at a time")
    check_options(options)
    vault = Vault.open(vault_root)
    with vault_lock(vault, options.wait, say, clean=not options.dry_run):
        started = time.perf_counter()
        pipeline, limiter = open_pipeline(vault, options, say)
        ledger: RunLedger | None = None
        try:
            run = InboxRun(pipeline, options)
            if not options.dry_run:
                command = "inbox --batch" if options.batch else "inbox --collect" if options.collect else "inbox"
                ledger = run.ledger = RunLedger.begin(pipeline.store, command, pipeline.engine)
            # A dry run changes nothing, not even to finish an interrupted run: it lists what would be.
            recovering = run.recovery.would_recover() if options.dry_run else []
            for line in [] if options.dry_run else run.recovery.recover():
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
                in_batches = pipeline.store.batched_hashes()
                left = [c for c in candidates if c.content_hash not in in_batches]
                candidates = [c for c in candidates if c.content_hash in in_batches]
                if left:
                    say(f"{len(left)} transcript(s) not from a batch are left for a normal run")
            if not candidates and scan.why_empty:
                say(scan.why_empty)
            ordered = run.prepare(candidates)
            if options.batch and not options.dry_run:
                report = batchapi.submit(pipeline, run.crash, ordered, run.catalogue)
            else:
                report = run.execute(ordered, display)
            report.results = [*recovering, *scan.skipped, *report.results]
            report.wall_seconds = time.perf_counter() - started
            extra.update(
                dry_run=options.dry_run,
                batch=options.batch,
                model=pipeline.engine.model,
                engine=pipeline.engine.name,
                recovered=run.recovery.recovered,
                batches=batch_notes,
                rate_limited=limiter.rate_limited,
                limiter=limiter.snapshot(),
            )
            report.extra = {**extra, **report.extra}
            if ledger is not None:
                ledger.finish(report)
            return report
        except BaseException as error:
            if ledger is not None:
                ledger.fail(error)
            raise
        finally:
            pipeline.close()
