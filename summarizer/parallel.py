"""Run the parts of one job in parallel; the first part that fails for good ends the job at once.

`ThreadPoolExecutor` cannot do that: leaving its `with` block waits for every running part, and
even `shutdown(wait=False)` leaves worker threads that the interpreter joins at exit, so a
command would still sit there until a slow server finished parts nobody wants. Here the workers
are daemon threads: on the first failure no new part starts, the error is raised at once, and
the parts still running are abandoned (their answers are dropped).

Every part may start at once (one thread each) while a limiter around the model client decides how
many requests are in flight: a part waiting for a slot must then not be sent once a sibling has
failed. The limiter asks `cancelled()` after taking a slot, and calls `stop_siblings()` when a
request fails, before giving the slot back (see `runner.LimitedExtractor`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

from summarizer.turns import admit, yield_turn

T = TypeVar("T")

_STOP: ContextVar[threading.Event | None] = ContextVar("part_stop", default=None)


class PartCancelled(Exception):
    """A part not sent because a sibling part failed for good (never the job's error)."""


def cancelled() -> bool:
    """On a part's thread: a sibling part has failed, so this one should not be sent."""
    stop = _STOP.get()
    return stop is not None and stop.is_set()


def stop_siblings() -> None:
    """On a part's thread: this part failed for good; its siblings still waiting are not sent."""
    stop = _STOP.get()
    if stop is not None:
        stop.set()


def run_parts(work: Callable[[int], T], count: int, workers: int) -> list[T]:
    """`[work(0), ..., work(count - 1)]` on up to `workers` threads, in order; the first error is raised."""
    if count <= 0:
        return []
    admit()  # the job's place among those at the model, before its parts start (they run on other threads)
    yield_turn()  # this thread now only waits for the parts
    outcomes: queue.Queue[tuple[int, BaseException | None, T | None]] = queue.Queue()
    stop = threading.Event()
    lock = threading.Lock()
    upcoming = iter(range(count))

    def worker() -> None:
        _STOP.set(stop)
        while not stop.is_set():
            with lock:
                index = next(upcoming, None)
            if index is None:
                return
            try:
                result = work(index)
            except PartCancelled:  # the sibling that failed hands over the job's error
                return
            except BaseException as error:  # handed to the caller, who raises it
                stop.set()
                outcomes.put((index, error, None))
                return
            outcomes.put((index, None, result))

    for number in range(max(1, min(workers, count))):
        threading.Thread(target=worker, name=f"part-worker-{number}", daemon=True).start()
    results: dict[int, T] = {}
    while len(results) < count:
        index, error, result = outcomes.get()
        if error is not None:
            stop.set()
            raise error
        results[index] = result  # type: ignore[assignment]
    return [results[i] for i in range(count)]
