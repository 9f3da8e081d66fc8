"""Turns at the interpreter: a batch run's workers do their CPU work before a model request one at a time.

With N worker threads starting at once, the interpreter lock hands each a few milliseconds in turn,
so every transcript is read and planned at 1/N speed and the first request leaves only when all
of them are nearly ready. Taking turns sends the first request after one transcript's work, the
second after two, and so on, for the same total. A worker gives its turn up when it is about to
wait: for a request slot (`runner.LimitedExtractor`), for its parts (`parallel.run_parts`), or
for another item (`yield_turn()` anywhere).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_held = threading.local()


class Turns:
    """One turn for a set of threads; each thread holds it from `turn()` until it yields or leaves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @contextmanager
    def turn(self) -> Iterator[None]:
        self._lock.acquire()
        _held.lock = self._lock
        try:
            yield
        finally:
            yield_turn()


def yield_turn() -> None:
    """Give up this thread's turn, if it holds one (a no-op elsewhere): call before waiting."""
    lock: threading.Lock | None = getattr(_held, "lock", None)
    if lock is not None:
        _held.lock = None
        lock.release()
