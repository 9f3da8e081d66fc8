"""Run the parts of one job in parallel; the first part that fails for good ends the job at once.

`ThreadPoolExecutor` cannot do that: leaving its `with` block waits for every running part, and
even `shutdown(wait=False)` leaves worker threads that the interpreter joins at exit, so a
command would still sit there until a slow server finished parts nobody wants. Here the workers
are daemon threads: on the first failure no new part starts, the error is raised at once, and
the parts still running are abandoned (their answers are dropped).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def run_parts(work: Callable[[int], T], count: int, workers: int) -> list[T]:
    """`[work(0), ..., work(count - 1)]` on up to `workers` threads, in order; the first error is raised."""
    if count <= 0:
        return []
    outcomes: queue.Queue[tuple[int, BaseException | None, T | None]] = queue.Queue()
    stop = threading.Event()
    lock = threading.Lock()
    upcoming = iter(range(count))

    def worker() -> None:
        while not stop.is_set():
            with lock:
                index = next(upcoming, None)
            if index is None:
                return
            try:
                result = work(index)
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
