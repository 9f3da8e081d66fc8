"""`summarizer watch`: process each inbox transcript once it has settled, for as long as it runs.

The watch is a long-lived inbox run: it holds the vault lock for its whole life (so `inbox` and
`regenerate` on the same vault exit 2 or queue with --wait, as they would behind any run), recovers
what a killed run left half done, then processes what is already waiting. After that it sleeps
until `watchfiles` reports a change in the inbox folder, or until a file still being written has
settled (the same rule as `inbox --settle`), or until a back-off ends; each wake-up is one pass of
the inbox machinery (`InboxRun`: scan, journal, note, archive) over what has settled.

A transcript that failed because the model server was down (unreachable, 5xx, timed out, rate
limited) is tried again after an exponential back-off, capped; one that failed for its own
reason is not tried again until the file changes. A stop (Ctrl-C, SIGTERM) lets the item in flight
finish and leaves the rest for the next start; a kill -9 is rolled back by the journal then.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from summarizer.errors import ConfigError, SummarizerError
from summarizer.inbox import InboxRun, check_options, open_pipeline
from summarizer.inbox_scan import ARCHIVE_DIRNAME, Candidate, InboxOptions
from summarizer.runlog import RunLedger
from summarizer.runner import ItemResult
from summarizer.vaultlock import vault_lock

if TYPE_CHECKING:
    from watchfiles import Change

BACKOFF_FIRST = 5.0  # seconds after the first model-server failure; doubles up to BACKOFF_MAX
BACKOFF_MAX = 300.0
STEP_MS = 50  # watchfiles: quiet time that ends a group of changes
TIMER_SLACK = 0.05  # wake just after a file settles, not just before (file times are coarse)
Say = Callable[[str], None]


@dataclass
class WatchOptions:
    inbox: InboxOptions = field(default_factory=InboxOptions)
    backoff: float = BACKOFF_FIRST
    backoff_max: float = BACKOFF_MAX


class Backoff:
    """Exponential and capped: the first failure waits `first`, each further one twice as long."""

    def __init__(self, first: float, cap: float) -> None:
        self.first = first
        self.cap = max(cap, first)
        self.delay = 0.0
        self._until: float | None = None

    def failed(self) -> float:
        self.delay = self.first if not self.delay else min(self.cap, self.delay * 2)
        self._until = time.monotonic() + self.delay
        return self.delay

    def succeeded(self) -> None:
        self.delay, self._until = 0.0, None

    def remaining(self) -> float | None:
        """Seconds left to wait, None when not backing off."""
        if self._until is None:
            return None
        left = self._until - time.monotonic()
        return left if left > 0 else None


class StatusLines:
    """The runner's display for a watch: one line per finished item, with the time."""

    def __init__(self, out: Say) -> None:
        self.out = out
        self._lock = threading.Lock()

    def line(self, result: ItemResult) -> None:
        said = result.error or result.detail
        if result.fields.get("retry_later"):
            said += "; will try again after the back-off"
        with self._lock:
            self.out(f"{time.strftime('%H:%M:%S')} {result.status:<7} {result.name}" + (f"  {said}" if said else ""))

    def start(self, total: int) -> None:
        pass

    def begin(self, name: str) -> None:
        pass

    def update(self, name: str, message: str) -> None:
        pass

    def finish(self, result: ItemResult) -> None:
        self.line(result)

    def stop(self) -> None:
        pass


class _Gate:
    """watchfiles' `stop_event`: stops it with ours, and tells us once its watcher is live (it asks
    `is_set()` only from inside the watch loop, after the OS watch is in place)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.live = threading.Event()

    def is_set(self) -> bool:
        self.live.set()
        return self.stop.is_set()


_ENDED = object()


class Watch:
    """Passes of the inbox run over what has settled, woken by file events and timers."""

    def __init__(self, run: InboxRun, options: WatchOptions, stop: threading.Event, out: Say, say: Say) -> None:
        self.run = run
        self.options = options
        self.stop = stop
        self.say = say
        self.lines = StatusLines(out)
        self.backoff = Backoff(options.backoff, options.backoff_max)
        self.inbox = run.vault.inside(run.inbox_rel)
        self.archive = run.vault.inside(run.archive_rel)
        self.failed: dict[str, tuple[int, int]] = {}  # rel -> (size, mtime) of a file that failed on its own
        self.shown: dict[str, str] = {}  # name -> the last scan remark shown, so each is said once
        self.events: queue.Queue[object] = queue.Queue()

    # ------------------------------------------------------------------ one pass

    def step(self) -> float | None:
        """Process what has settled; returns seconds until a timed re-check is due (None: events only)."""
        recovery = self.run.recovery
        seen = len(recovery.recovered)
        for line in recovery.recover()[seen:]:  # an item that failed half way (say, a full disk)
            self.say(f"recovered: {line}")
        scan = self.run.scan()
        for remark in scan.skipped:
            said = remark.error or remark.detail
            if not remark.fields.get("settling") and self.shown.get(remark.name) != said:
                self.shown[remark.name] = said
                self.lines.line(remark)
        waiting = [c for c in scan.candidates if self.failed.get(c.rel) != (c.size, c.mtime_ns)]
        backing_off = self.backoff.remaining()
        if waiting and backing_off is None and not self.stop.is_set():
            self._process(waiting)
            backing_off = self.backoff.remaining()
        due = [t for t in (scan.settles_in, backing_off) if t is not None]
        return min(due) + TIMER_SLACK if due else None

    def _process(self, candidates: list[Candidate]) -> None:
        self.run.forget_index()  # notes written since the last batch count as links now
        by_name = {c.name: c for c in candidates}
        pipeline = self.run.pipeline
        ledger = self.run.ledger = RunLedger.begin(pipeline.store, "watch", pipeline.engine)  # a pass is a run
        try:
            report = self.run.execute(self.run.prepare(candidates), self.lines, self.stop)
        except BaseException as error:
            ledger.fail(error)
            raise
        ledger.finish(report)
        server_down = False
        for result in report.results:
            c = by_name.get(result.name)
            if c is None:
                continue
            self.shown.pop(c.name, None)
            if result.status == "failed" and result.fields.get("retry_later"):
                server_down = True
            elif result.status == "failed":
                self.failed[c.rel] = (c.size, c.mtime_ns)
            else:
                self.failed.pop(c.rel, None)
        if server_down:
            delay = self.backoff.failed()
            self.say(f"the model server is unavailable; trying again in {delay:g}s")
        elif report.count("done"):
            self.backoff.succeeded()

    # ------------------------------------------------------------------ the loop

    def relevant(self, change: Change, path: str) -> bool:
        """A change worth a pass: not a deletion (our own archiving makes those), not hidden, not archived."""
        from watchfiles import Change

        where = Path(path)
        if change == Change.deleted or where.name.startswith("."):
            return False
        if self.archive in where.parents or where == self.archive:
            return False
        try:  # `_archive` only counts below the inbox: the vault itself may sit under such a folder
            return ARCHIVE_DIRNAME not in where.relative_to(self.inbox).parts
        except ValueError:
            return False

    def _watch_thread(self, gate: _Gate) -> None:
        from watchfiles import watch

        try:
            for changes in watch(
                self.inbox,
                watch_filter=self.relevant,
                stop_event=gate,
                step=STEP_MS,
                raise_interrupt=False,
                ignore_permission_denied=True,
            ):
                self.events.put(changes)
        except Exception as err:  # reported by the main thread
            self.events.put(err)
        finally:
            gate.live.set()
            self.events.put(_ENDED)

    def loop(self) -> None:
        gate = _Gate(self.stop)
        watcher = threading.Thread(target=self._watch_thread, args=(gate,), name="summarizer-watch", daemon=True)
        watcher.start()
        gate.live.wait()  # the OS watch is in place: a file dropped from now on is never missed
        self.say(f"watching {self.run.inbox_rel}/ (settle {self.options.inbox.settle:g}s); Ctrl-C or SIGTERM stops")
        try:
            due = self.step()
            while not self.stop.is_set():
                try:
                    got = [self.events.get(timeout=due)]
                except queue.Empty:
                    got = []  # a timer: a file has settled, or the back-off is over
                while not self.events.empty():
                    got.append(self.events.get_nowait())  # a burst of changes makes one pass
                for event in got:
                    if isinstance(event, Exception):
                        raise SummarizerError(f"watching {self.run.inbox_rel}/ failed: {event}")
                if self.stop.is_set():
                    break
                if _ENDED in got:
                    raise SummarizerError(f"watching {self.run.inbox_rel}/ stopped unexpectedly")
                due = self.step()
        finally:
            self.stop.set()
            watcher.join(timeout=5)


def run_watch(vault_root: Path, options: WatchOptions, stop: threading.Event, out: Say, say: Say) -> None:
    """The whole command: lock, open, recover, collect batches, then passes until `stop` is set."""
    from summarizer import batchapi
    from summarizer.vault import Vault

    check_options(options.inbox)
    if options.backoff <= 0:
        raise ConfigError(f"--backoff must be more than zero seconds, got {options.backoff}")
    vault = Vault.open(vault_root)
    with vault_lock(vault, options.inbox.wait, say):
        pipeline, _limiter = open_pipeline(vault, options.inbox, say)
        try:
            run = InboxRun(pipeline, options.inbox)
            inbox = vault.inside(run.inbox_rel)
            if not inbox.is_dir():
                inbox.mkdir(parents=True)
                say(f"created the inbox folder {run.inbox_rel}/")
            for line in run.recovery.recover():  # first, as `inbox` does: before batches are collected
                say(f"recovered: {line}")
            for line in batchapi.collect(pipeline, run.crash):
                say(line)
            Watch(run, options, stop, out, say).loop()
            say("stopped")
        finally:
            pipeline.close()
