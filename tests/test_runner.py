"""The shared runner: user-derived text is never rich markup, and a display cannot break a run."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from summarizer.runner import (
    AdaptiveLimiter,
    ItemResult,
    LiveDisplay,
    PlainDisplay,
    ProgressFn,
    Runner,
    RunReport,
    render_table,
)

NAMES = ["team[/]notes.txt", "[x] todo.txt", "plain.txt", "back\\"]


def _work(name: str, progress: ProgressFn) -> ItemResult:
    progress(f"reading [bold]{name}[/bold] [/]")
    if name == "plain.txt":
        raise ValueError("bad [/] line in [x] file")
    return ItemResult(name, "done", detail=f"wrote [red]{name}[/]")


def _console(buffer: io.StringIO, terminal: bool) -> Console:
    return Console(file=buffer, width=300, force_terminal=terminal, color_system=None, highlight=False)


def test_table_shows_names_details_and_errors_as_typed() -> None:
    report = RunReport(
        [
            ItemResult("team[/]notes.txt", "done", detail="note [x] made"),
            ItemResult("[x] todo.txt", "skipped", detail="[/]"),
            ItemResult("[bold]b.txt", "failed", error="bad [/] line"),
        ]
    )
    out = io.StringIO()
    render_table(report, _console(out, False))
    text = out.getvalue()
    for shown in ("team[/]notes.txt", "note [x] made", "[x] todo.txt", "[bold]b.txt", "bad [/] line"):
        assert shown in text


def test_live_display_run_with_markup_in_names_completes() -> None:
    out = io.StringIO()
    runner: Runner[str] = Runner(_work, lambda n: n, workers=2, display=LiveDisplay(_console(out, True)))
    report = runner.run(NAMES)
    assert [r.name for r in report.results] == NAMES
    assert [r.status for r in report.results] == ["done", "done", "failed", "done"]
    assert report.results[2].error == "bad [/] line in [x] file"
    text = out.getvalue()
    assert "team[/]notes.txt  wrote [red]team[/]notes.txt[/]" in text
    assert "[x] todo.txt" in text
    assert "bad [/] line in [x] file" in text


def test_plain_display_writes_names_as_typed() -> None:
    out = io.StringIO()
    Runner(_work, lambda n: n, workers=1, display=PlainDisplay(out)).run(NAMES)
    assert "team[/]notes.txt: reading [bold]team[/]notes.txt[/bold] [/]" in out.getvalue()
    assert "failed  plain.txt  bad [/] line in [x] file" in out.getvalue()


class _Broken:
    """A display that raises from every method."""

    def __init__(self, where: str) -> None:
        self.where = where

    def _maybe(self, name: str) -> None:
        if name == self.where:
            raise RuntimeError(f"display broke in {name}")

    def start(self, total: int) -> None:
        self._maybe("start")

    def begin(self, name: str) -> None:
        self._maybe("begin")

    def update(self, name: str, message: str) -> None:
        self._maybe("update")

    def finish(self, result: ItemResult) -> None:
        self._maybe("finish")

    def stop(self) -> None:
        self._maybe("stop")


@pytest.mark.parametrize("where", ["start", "begin", "update", "finish", "stop"])
def test_a_failing_display_neither_fails_items_nor_aborts_the_run(where: str) -> None:
    def ok(name: str, progress: ProgressFn) -> ItemResult:
        progress("working")
        return ItemResult(name, "done")

    report = Runner(ok, lambda n: n, workers=2, display=_Broken(where)).run(["a", "b", "c"])
    assert [(r.name, r.status) for r in report.results] == [("a", "done"), ("b", "done"), ("c", "done")]
    assert report.exit_code == 0


def test_a_jobs_place_at_the_model_is_taken_once_when_it_asks_and_always_given_back() -> None:
    import threading

    from summarizer.turns import admit, admitted_by

    places = threading.BoundedSemaphore(1)
    with admitted_by(places):
        pass  # served from the cache: never asked the model
    assert places.acquire(blocking=False), "no place was taken"
    places.release()

    with admitted_by(places):
        admit()
        admit()  # a repair or a retry of the same job: the same place
        assert not places.acquire(blocking=False)
    assert places.acquire(blocking=False), "given back"
    places.release()

    try:
        with admitted_by(places):
            admit()
            raise RuntimeError("the model failed")
    except RuntimeError:
        pass
    assert places.acquire(blocking=False), "given back after a failure too"
    places.release()
    admit()  # outside a job (summarise, eval): nothing to take
    assert places.acquire(blocking=False)


def test_a_limiter_resized_below_its_requests_in_flight_admits_none_until_they_drop_below() -> None:
    limiter = AdaptiveLimiter(4)
    for _ in range(3):
        assert limiter.acquire(blocking=False)
    limiter.request_slots(1)  # the server stated its slots mid-run
    assert not limiter.acquire(blocking=False)
    limiter.release()
    limiter.release()
    assert not limiter.acquire(blocking=False), "one still in flight fills the one slot"
    limiter.release()
    assert limiter.acquire(blocking=False)
