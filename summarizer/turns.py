"""Turns at the interpreter: a batch run's workers do their CPU work before a model request one at a time.

With N worker threads starting at once, the interpreter lock hands each a few milliseconds in turn,
so every transcript is read and planned at 1/N speed and the first request leaves only when all
of them are nearly ready. Taking turns sends the first request after one transcript's work, the
second after two, and so on, for the same total. A worker gives its turn up when it is about to
wait: for a request slot (`runner.LimitedExtractor`), for its parts (`parallel.run_parts`), or
for another item (`yield_turn()` anywhere).

`Admission` bounds the jobs at the model at once (the inbox's transcripts), taken at the last moment.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

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


# ---------------------------------------------------------------------------- admission to the model

_ADMISSION: ContextVar[Admission | None] = ContextVar("admission", default=None)


class Admission:
    """One of a run's places for a job at the model (the inbox's `concurrency` transcripts), taken as late
    as possible: when the job's first request is ready to go, or before its parts start, so a waiting
    job has read and planned its transcript already. Released when the job leaves `admitted_by`."""

    def __init__(self, places: threading.BoundedSemaphore) -> None:
        self._places = places
        self._held = False

    def enter(self) -> None:
        if self._held:
            return
        if not self._places.acquire(blocking=False):
            yield_turn()  # about to wait: another worker may prepare meanwhile
            self._places.acquire()
        self._held = True

    def leave(self) -> None:
        if self._held:
            self._held = False
            self._places.release()


@contextmanager
def admitted_by(places: threading.BoundedSemaphore) -> Iterator[None]:
    """Run a job (on this thread) that takes one of `places` once it is about to call the model."""
    admission = Admission(places)
    token = _ADMISSION.set(admission)
    try:
        yield
    finally:
        _ADMISSION.reset(token)
        admission.leave()


def admit() -> None:
    """The job on this thread is about to call the model: take its place, waiting for one if need be
    (a no-op outside `admitted_by`, and for a job already admitted)."""
    admission = _ADMISSION.get()
    if admission is not None:
        admission.enter()
