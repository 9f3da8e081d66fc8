"""Run one function over many items: N workers, an adaptive limit, progress, a report.

Shared by the batch commands (`inbox`, later `regenerate`), so nothing here
knows about transcripts or notes. A command supplies a function that turns one
item into an `ItemResult`; the runner calls it from a thread pool, catches
what it raises (one bad item never stops the others), shows progress (a rich
live display on a terminal, plain lines otherwise) and returns a `RunReport`
that renders as a table or as JSON.

`AdaptiveLimiter` bounds how many model requests are in flight across the
whole run. The SDK already retries 429s with the server's `retry-after`; the
limiter adds AIMD on top so the run stops pushing once the provider says
"too many": it halves the limit on a 429 (once per round: a 429 on a
request sent before the last cut does not cut again) and adds one back after a run of successes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from summarizer.models import Usage
from summarizer.parallel import PartCancelled, cancelled, stop_siblings
from summarizer.turns import admit, yield_turn

if TYPE_CHECKING:
    from rich.console import Console

    from summarizer.llm import CallResult, Prompt
    from summarizer.modelseam import Extractor, HttpStatus

Status = Literal["done", "skipped", "failed"]
STATUSES: tuple[Status, ...] = ("done", "skipped", "failed")
T = TypeVar("T")
ProgressFn = Callable[[str], None]
FAST_RUN = 2  # successes per +1 while regaining what a cut gave away
PROBE_RUNS = 4  # x limit successes per +1 beyond the level that drew the last 429


# ---------------------------------------------------------------------------- adaptive limiter


class AdaptiveLimiter:
    """A concurrency limit that halves on 429 and grows back by one after a run of successes.

    Thread-safe. `observe(status)` is fed every HTTP status the model client
    sees (including the 429s the SDK retries internally); `slot()` wraps one
    model request.
    """

    def __init__(self, maximum: int, *, minimum: int = 1, grow_after: int | None = None) -> None:
        self.maximum = max(1, maximum)
        self.minimum = max(1, min(minimum, self.maximum))
        self.limit = self.maximum
        self._grow_after = grow_after
        self._cond = threading.Condition()
        self.in_flight = 0
        self.max_in_flight = 0
        self.rate_limited = 0  # 429s seen
        self.decreases = 0
        self.increases = 0
        self._successes = 0
        self._epoch = 0  # bumped by each cut; a request remembers the epoch it was sent in
        self._local = threading.local()
        self._served_since_cut = True
        self._known_good = self.maximum  # below this, regrow quickly

    def resize(self, maximum: int) -> None:
        """Set a new ceiling (and start there), e.g. once the run's concurrency is known."""
        with self._cond:
            self.maximum = max(1, maximum)
            self.minimum = min(self.minimum, self.maximum)
            self.limit = self._known_good = self.maximum
            self._cond.notify_all()

    def request_slots(self, slots: int) -> None:
        """The `SlotsObserver` side: the server's own limit, learned mid-run, becomes the ceiling (and, as
        with `resize`, the limit: a cut after an earlier 429 is forgotten; slots are learned before a
        first request, when there has been none)."""
        if slots != self.maximum:
            self.resize(slots)

    def acquire(self, *, blocking: bool = True) -> bool:
        """Take a slot, waiting for one unless `blocking` is false; whether one was taken."""
        with self._cond:
            while self.in_flight >= self.limit:
                if not blocking:
                    return False
                self._cond.wait()
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._local.epoch = self._epoch
            return True

    def release(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify()

    @contextmanager
    def slot(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def http_status(self, event: HttpStatus) -> None:
        """The `HttpObserver` side: every status the model client sees."""
        self.observe(event.status, event.limit)

    def wrap(self, inner: Extractor) -> Extractor:
        """The `Wrapper` side: `inner` with every request (whole meeting, part or merge) behind a slot."""
        return LimitedExtractor(inner, self)

    def observe(self, status: int, kind: str | None = None) -> None:
        """React to one HTTP answer: 429 cuts the limit, a 2xx counts toward growing it.

        A 429 of `kind` "tokens" (a full tokens-per-minute window) does not cut: fewer requests in
        flight would not free the window, only leave it under-used once it reopens (the SDK already
        waits out the retry-after).

        Growth is one step per run of successes: a short run (`FAST_RUN`) while below the level
        where the last 429 struck (getting back what the cut gave away), a long one
        (`PROBE_RUNS` x the limit) at or above it (probing carefully for more room).
        """
        with self._cond:
            if status == 429:
                self.rate_limited += 1
                self._successes = 0
                if kind == "tokens":
                    return
                sent_in = getattr(self._local, "epoch", None)
                if (sent_in is not None and sent_in < self._epoch) or not self._served_since_cut:
                    # Sent before the last cut (the SDK is retrying it), or nothing got through since
                    # that cut (the provider's window is simply full; retry-after handles the wait).
                    return
                self._served_since_cut = False
                self._known_good = max(self.minimum, min(self.limit, self.in_flight) - 1)
                new = max(self.minimum, self.limit // 2)
                if new < self.limit:
                    self.limit = new
                    self.decreases += 1
                self._epoch += 1
                return
            if 200 <= status < 300:
                self._served_since_cut = True
            if 200 <= status < 300 and self.limit < self.maximum:
                self._successes += 1
                run = self._grow_after or (FAST_RUN if self.limit < self._known_good else PROBE_RUNS * self.limit)
                if self._successes >= run:
                    self._successes = 0
                    self.limit += 1
                    self.increases += 1
                    self._cond.notify_all()

    def snapshot(self) -> dict[str, int]:
        with self._cond:
            return {
                "limit": self.limit,
                "maximum": self.maximum,
                "max_in_flight": self.max_in_flight,
                "rate_limited": self.rate_limited,
                "decreases": self.decreases,
                "increases": self.increases,
            }


class LimitedExtractor:
    """An `Extractor` whose requests each hold one of the limiter's slots."""

    def __init__(self, inner: Extractor, limiter: AdaptiveLimiter) -> None:
        self.inner = inner
        self.limiter = limiter

    @property
    def model(self) -> str:
        return self.inner.model

    def extract(self, prompt: Prompt, *, label: str) -> CallResult:
        admit()  # the job's place among those at the model, once its request is ready
        if not self.limiter.acquire(blocking=False):
            yield_turn()  # the request is ready: another worker may prepare its own while this one waits
            self.limiter.acquire()
        try:
            if cancelled():  # a part of a meeting whose sibling failed while this one waited for the slot
                raise PartCancelled(label)
            # The turn, if still held, passes on once the request is built (the client's request hook).
            return self.inner.extract(prompt, label=label)
        except PartCancelled:
            raise
        except BaseException:
            stop_siblings()  # before the slot goes to a sibling part that would be sent for nothing
            raise
        finally:
            self.limiter.release()


# ---------------------------------------------------------------------------- results and report


@dataclass
class ItemResult:
    """What happened to one item; `fields` carries command-specific details (note, archive...)."""

    name: str
    status: Status
    detail: str = ""
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0
    fields: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "usage": self.usage.model_dump(),
            **self.fields,
        }


@dataclass
class RunReport:
    """Every item's result, totals and wall time: the final table and `--json`."""

    results: list[ItemResult] = field(default_factory=list)
    wall_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    other: Usage = field(default_factory=Usage)  # calls of the run logged for none of its items

    @property
    def usage(self) -> Usage:
        """Every item's calls, plus those logged for none of them: what the call log holds for the run."""
        return sum((r.usage for r in self.results), self.other)

    def count(self, status: Status) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, 1 when anything did (usage errors never get this far)."""
        return 1 if self.count("failed") else 0

    def to_dict(self) -> dict[str, Any]:
        usage = self.usage
        return {
            "totals": {
                **{status: self.count(status) for status in STATUSES},
                "calls": usage.calls,
                "tokens_in": usage.prompt_tokens,
                "tokens_cached": usage.cached_tokens,
                "tokens_out": usage.completion_tokens,
                "cost": None if usage.cost is None else round(usage.cost, 6),
                "wall_seconds": round(self.wall_seconds, 3),
            },
            **({"unattributed": self.other.model_dump()} if self.other.calls else {}),
            **self.extra,
            "items": [r.to_dict() for r in self.results],
        }


def format_cost(cost: float | None) -> str:
    return "n/a" if cost is None else f"${cost:.4f}"


def render_table(report: RunReport, console: Console, title: str = "Run") -> None:
    """One row per item, then the totals: done / skipped / failed, tokens, cost, wall time.

    Names, details and errors come from file names and file contents: they go in as `Text`, never as
    markup, so a `[x]` or `[/]` in a file name shows as typed instead of vanishing or raising.
    """
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    table.add_column("status")
    table.add_column("item", overflow="fold")
    table.add_column("result", overflow="fold")
    table.add_column("tokens in/cached/out", justify="right")
    table.add_column("cost", justify="right")
    styles = {"done": "green", "skipped": "yellow", "failed": "red"}
    for r in report.results:
        u = r.usage
        tokens = f"{u.prompt_tokens}/{u.cached_tokens}/{u.completion_tokens}" if u.calls else "-"
        table.add_row(
            Text(r.status, style=styles[r.status]),
            Text(r.name),
            Text(r.error, no_wrap=True, overflow="ellipsis") if r.error else Text(r.detail),  # errors: one line
            tokens,
            format_cost(u.cost) if u.calls else "-",
        )
    console.print(table)
    o = report.other
    if o.calls:
        console.print(
            f"{o.calls} call(s) for no item above (tokens {o.prompt_tokens}/{o.cached_tokens}/"
            f"{o.completion_tokens}, {format_cost(o.cost)}) are in the totals",
            highlight=False,
        )
    u = report.usage
    console.print(
        f"done {report.count('done')} · skipped {report.count('skipped')} · failed {report.count('failed')} · "
        f"{u.calls} call(s) · tokens in {u.prompt_tokens} (cached {u.cached_tokens}) · out {u.completion_tokens} · "
        f"estimated cost {format_cost(u.cost)} · wall time {report.wall_seconds:.2f}s",
        highlight=False,
    )


# ---------------------------------------------------------------------------- progress display


class Display(Protocol):
    def start(self, total: int) -> None: ...
    def begin(self, name: str) -> None: ...
    def update(self, name: str, message: str) -> None: ...
    def finish(self, result: ItemResult) -> None: ...
    def stop(self) -> None: ...


class PlainDisplay:
    """One line per event, for logs and pipes (no cursor tricks)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.total = 0
        self.finished = 0
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def start(self, total: int) -> None:
        self.total = total

    def begin(self, name: str) -> None:
        pass

    def update(self, name: str, message: str) -> None:
        self._line(f"  {name}: {message}")

    def finish(self, result: ItemResult) -> None:
        with self._lock:
            self.finished += 1
            n = self.finished
        said = result.error or result.detail
        self._line(f"[{n}/{self.total}] {result.status:<7} {result.name}" + (f"  {said}" if said else ""))

    def stop(self) -> None:
        pass


class LiveDisplay:
    """A rich progress bar with the items in flight; finished items scroll above it.

    Item names and messages are escaped (descriptions) or printed as `Text`: never read as markup.
    """

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._overall: Any = None
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()

    def start(self, total: int) -> None:
        self.progress.start()
        self._overall = self.progress.add_task("total", total=total)

    def begin(self, name: str) -> None:
        with self._lock:
            self._tasks[name] = self.progress.add_task(f"  {escape(name)}", total=None)

    def update(self, name: str, message: str) -> None:
        with self._lock:
            task = self._tasks.get(name)
        if task is not None:
            self.progress.update(task, description=f"  {escape(name)}: {escape(message)}")

    def finish(self, result: ItemResult) -> None:
        from rich.text import Text

        with self._lock:
            task = self._tasks.pop(result.name, None)
        if task is not None:
            self.progress.remove_task(task)
        style = {"done": "green", "skipped": "yellow", "failed": "red"}[result.status]
        said = result.error or result.detail
        line = Text.assemble((f"{result.status:<7}", style), " ", result.name, f"  {said}" if said else "")
        self.progress.console.print(line, highlight=False)
        self.progress.advance(self._overall)

    def stop(self) -> None:
        self.progress.stop()


def escape(text: str) -> str:
    """`text` safe inside rich markup (a `[x]` or `[/]` in a file name is shown, not parsed)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


class SafeDisplay:
    """A display whose failures never reach the run: progress is a nicety, the work and report are not.

    The runner wraps its display in this, so an exception in `begin`, `update` (called from inside
    an item's work), `finish` (called after it) or `start`/`stop` cannot fail an item, abort the
    thread pool or lose the report. The first such error is kept in `error` for the curious.
    """

    def __init__(self, inner: Display) -> None:
        self.inner = inner
        self.error: BaseException | None = None

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as error:  # a display problem must not cost the user their run
            if self.error is None:
                self.error = error

    def start(self, total: int) -> None:
        self._call(self.inner.start, total)

    def begin(self, name: str) -> None:
        self._call(self.inner.begin, name)

    def update(self, name: str, message: str) -> None:
        self._call(self.inner.update, name, message)

    def finish(self, result: ItemResult) -> None:
        self._call(self.inner.finish, result)

    def stop(self) -> None:
        self._call(self.inner.stop)


def make_display(stream: IO[str], console: Console | None = None) -> Display:
    """Live on a terminal, plain lines otherwise. rich is imported only for a stream that may be a
    terminal (a tty, or one rich is told to treat as such): a piped or scheduled run does without it."""
    if console is None:
        if not _may_be_terminal(stream):
            return PlainDisplay(stream)
        from rich.console import Console

        console = Console(file=stream)
    return LiveDisplay(console) if console.is_terminal else PlainDisplay(stream)


def _may_be_terminal(stream: IO[str]) -> bool:
    """rich's own rule where it can be told without rich: TTY_COMPATIBLE=0/1, a non-empty FORCE_COLOR,
    else isatty (rich then has the last word)."""
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    if os.environ.get("FORCE_COLOR") is not None:
        return os.environ["FORCE_COLOR"] != ""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


# ---------------------------------------------------------------------------- the runner


@dataclass
class Runner(Generic[T]):
    """Call `fn(item, progress)` for each item with `workers` threads and collect the results.

    `account(item, result)`, when given, runs on each result (failed ones included) before it is
    shown: the command's run ledger sets the item's usage from the call log and records it."""

    fn: Callable[[T, ProgressFn], ItemResult]
    name_of: Callable[[T], str]
    workers: int = 4
    display: Display | None = None
    account: Callable[[T, ItemResult], object] | None = None

    def run(self, items: Sequence[T]) -> RunReport:
        start = time.perf_counter()
        display = None if self.display is None else SafeDisplay(self.display)
        if display is not None:
            display.start(len(items))
        results: list[ItemResult | None] = [None] * len(items)

        def one(index: int) -> None:
            item = items[index]
            name = self.name_of(item)
            if display is not None:
                display.begin(name)
            began = time.perf_counter()
            try:
                result = self.fn(item, lambda message: display.update(name, message) if display else None)
            except Exception as error:  # one bad item must not stop the others
                result = ItemResult(name, "failed", error=" ".join(str(error).split()) or type(error).__name__)
            result.seconds = time.perf_counter() - began
            if self.account is not None:
                self.account(item, result)
            results[index] = result
            if display is not None:
                display.finish(result)

        try:
            if items:
                with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(items)))) as pool:
                    # Items start in order: callers may rely on earlier items having started first.
                    list(pool.map(one, range(len(items))))
        finally:
            if display is not None:
                display.stop()
        done = [r for r in results if r is not None]
        return RunReport(done, time.perf_counter() - start)
