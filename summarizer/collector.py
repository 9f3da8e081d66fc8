"""When Python's cyclic garbage collector runs, around start-up and during a run.

Start-up (the SDK, pydantic and our modules) creates a few hundred thousand objects that live as long
as the process; the collector walks them again and again as they appear, about a tenth of the time to
the first request. So the command line collects rarely until the model client is built (`hold` /
`release`), and a run leaves what exists at its start out of collections altogether
(`start_up_spared`).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

START_UP_THRESHOLD = 100_000  # allocations between young collections while held (the default is 700)

_lock = threading.Lock()
_held: tuple[int, ...] | None = None


def hold() -> None:
    """At process start: collect rarely until `release()` (never called: the process just collects less)."""
    global _held
    with _lock:
        if _held is None:
            _held = gc.get_threshold()
            gc.set_threshold(START_UP_THRESHOLD, *_held[1:])


def release() -> None:
    """Start-up is over: collect as usual again."""
    global _held
    with _lock:
        if _held is not None:
            gc.set_threshold(*_held)
            _held = None


@contextmanager
def start_up_spared() -> Iterator[None]:
    """Leave the objects alive now out of the cyclic collector while a run goes on, and give them back after.

    After start-up they number in the hundreds of thousands (the SDK's types, pydantic schemas, templates),
    all long-lived: a full collection mid-run walks every one and stalls every worker for 50-100 ms.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()  # nothing is kept from the collector past the run (in-process callers, tests)
