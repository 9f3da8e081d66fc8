"""`summarizer watch`: the real command in a subprocess, real file events in a temporary vault.

Each test starts `python -m summarizer.cli watch` against the loopback model server, drops files
in the inbox, waits (bounded) for what the vault or the server shows, then stops the watch with
SIGTERM (or SIGKILL) and checks the exit status, notes, archive and journal.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli
from tests.test_inbox import ROOT, by_topic, check_vault, inbox_names, inbox_vault, meeting, notes, state
from tests.test_inbox_crash import HoldAfter

DEADLINE = 60.0  # seconds: a bound for a slow, shared machine, never an expected duration


class Watch:
    """A running `summarizer watch` (or another command); its output lines are collected as they come."""

    def __init__(self, vault: Path, *args: str, env: dict[str, str] | None = None, command: str = "watch") -> None:
        environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "summarizer.cli", command, "--vault", str(vault), *args],
            cwd=ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (self.proc.stdout, self.proc.stderr)
        ]
        for reader in self.readers:
            reader.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.put(line.rstrip("\n"))

    def wait_line(self, text: str) -> str:
        """The first output line containing `text` (bounded wait)."""
        for line in self.seen:
            if text in line:
                return line
        end = time.monotonic() + DEADLINE
        while (left := end - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {DEADLINE}s; saw: {self.seen}")

    def output(self) -> str:
        while not self.lines.empty():
            self.seen.append(self.lines.get_nowait())
        return "\n".join(self.seen)

    def stop(self, sig: int | None = signal.SIGTERM) -> int:
        """Send `sig` (None: none, it exits by itself) and return the exit status."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=DEADLINE)
        for reader in self.readers:
            reader.join(timeout=DEADLINE)  # everything the process wrote is in `lines`
        return code


@pytest.fixture
def watches() -> Iterator[list[Watch]]:
    """Every watch a test starts is killed at the end, whatever happened."""
    started: list[Watch] = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait(timeout=DEADLINE)


def until(condition: Callable[[], bool], what: str, proc: subprocess.Popen[str] | None = None) -> None:
    """Wait (bounded) for a condition on the file system or the server, failing fast if `proc` died."""
    end = time.monotonic() + DEADLINE
    pause = threading.Event()
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the watch exited ({proc.returncode}) before {what}")
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        pause.wait(0.05)


def archived_names(vault: Path) -> list[str]:
    archive = vault / "Inbox" / "_archive"
    return sorted(p.name for p in archive.rglob("*") if p.is_file()) if archive.is_dir() else []


def journal(vault: Path) -> dict[str, str]:
    return {str(path): str(status) for path, status in state(vault, "SELECT inbox_path, status FROM inbox_transcripts")}


# ---------------------------------------------------------------------------- the happy path


def test_processes_what_waits_then_what_arrives_settled_and_stops_on_sigterm(
    tmp_path: Path, model_env: FakeOpenAI, watches: list[Watch]
) -> None:
    vault = inbox_vault(tmp_path / "vault", {"2026-03-01 - kiwi.txt": meeting("kiwi")})
    model_env.default = fo.responder(by_topic)
    w = Watch(vault, "--settle", "2")
    watches.append(w)
    w.wait_line("done    2026-03-01 - kiwi.txt")  # what was already waiting, without any event
    w.wait_line("watching Inbox/")

    (vault / "Inbox" / "2026-03-02 - fig.txt").write_text(meeting("fig"), encoding="utf-8")
    # A recorder writing slowly: half now, the rest a while later, both within the settle time.
    slow = vault / "Inbox" / "2026-03-03 - lime.txt"
    first, second = meeting("lime").split("Bob Chen:")
    with slow.open("w", encoding="utf-8") as handle:
        handle.write(first)
        handle.flush()
        threading.Event().wait(0.3)  # the recorder pauses (not an assertion: the settle rule is)
        handle.write("Bob Chen:" + second)
    until(lambda: len(archived_names(vault)) == 3, "three transcripts archived", w.proc)

    assert w.stop() == 0
    files = {
        "2026-03-01 - kiwi.txt": meeting("kiwi"),
        "2026-03-02 - fig.txt": meeting("fig"),
        "2026-03-03 - lime.txt": meeting("lime"),
    }
    # The slow file was summarised whole, once: its archived copy holds both parts.
    assert check_vault(vault, files) == dict.fromkeys(files, "archive")
    assert len(notes(vault)) == 3
    assert len(model_env.chat_requests()) == 3
    # The model saw the slow file whole: its second part is in the one prompt about lime.
    [lime] = [str(body["messages"]) for body in model_env.chat_requests() if "topic is lime" in str(body["messages"])]
    assert "I'll send the lime figures" in lime
    assert set(journal(vault).values()) == {"done"}
    out = w.output()
    assert out.count("done    2026-03-03 - lime.txt") == 1
    assert "stopped" in out
    assert not (vault / ".summarizer" / "inbox.pid").exists()
    # Each pass is a run in the log, and its items are the transcripts it summarised.
    logged = json.loads(cli("log", "--vault", vault, "--json", "-n", "0").stdout)
    items = logged if isinstance(logged, list) else logged.get("items", logged.get("rows", []))
    assert sorted(i["transcript"].rsplit("/", 1)[-1] for i in items if i.get("command") == "watch") == sorted(files)


# ---------------------------------------------------------------------------- the lock


def idle_watch(tmp_path: Path, watches: list[Watch]) -> tuple[Path, Watch]:
    """A watch over an empty inbox, ready (its lock held, its OS watch in place)."""
    vault = inbox_vault(tmp_path / "vault", {})
    (vault / "Inbox").mkdir()
    w = Watch(vault, "--settle", "0")
    watches.append(w)
    w.wait_line("watching Inbox/")
    return vault, w


def test_inbox_and_regenerate_exit_2_naming_the_lock_while_watch_runs(
    tmp_path: Path, model_env: FakeOpenAI, watches: list[Watch]
) -> None:
    vault, w = idle_watch(tmp_path, watches)
    result = cli("inbox", "--vault", vault)
    assert result.exit_code == 2
    assert f"another summarizer run holds the vault lock (pid {w.proc.pid})" in result.stderr
    result = cli("regenerate", "--vault", vault, "--all")
    assert result.exit_code == 2
    assert "vault lock" in result.stderr
    assert w.stop(signal.SIGINT) == 0
    # Once it stopped, the lock is free again.
    assert cli("inbox", "--vault", vault).exit_code == 0


def test_inbox_with_wait_queues_until_the_watch_stops(
    tmp_path: Path, model_env: FakeOpenAI, watches: list[Watch]
) -> None:
    vault, w = idle_watch(tmp_path, watches)
    queued = Watch(vault, "--wait", command="inbox")
    watches.append(queued)
    queued.wait_line(f"waiting for the vault lock held by pid {w.proc.pid}")
    assert queued.proc.poll() is None
    assert w.stop() == 0
    assert queued.stop(None) == 0


def test_a_second_watch_exits_2(tmp_path: Path, model_env: FakeOpenAI, watches: list[Watch]) -> None:
    vault, w = idle_watch(tmp_path, watches)
    second = Watch(vault)
    watches.append(second)
    assert second.stop(None) == 2
    assert f"holds the vault lock (pid {w.proc.pid})" in second.output()
    assert w.stop() == 0


# ---------------------------------------------------------------------------- crash safety and stopping


def test_sigkill_mid_call_then_restart_processes_what_was_left(
    tmp_path: Path, model_env: FakeOpenAI, watches: list[Watch]
) -> None:
    files = {f"2026-03-0{i} - {t}.txt": meeting(t) for i, t in enumerate(["kiwi", "fig", "plum"], 1)}
    vault = inbox_vault(tmp_path / "vault", files)
    hold = HoldAfter(1)  # the first transcript goes through; the second call is held
    model_env.default = fo.responder(hold)
    w = Watch(vault, "--settle", "0", "--concurrency", "1")
    watches.append(w)
    until(lambda: hold.held.is_set() and len(archived_names(vault)) == 1, "one done, a call held", w.proc)
    assert w.stop(signal.SIGKILL) == -signal.SIGKILL
    assert len(inbox_names(vault)) == 2

    model_env.default = fo.responder(by_topic)
    again = Watch(vault, "--settle", "0")
    watches.append(again)
    until(lambda: len(archived_names(vault)) == 3, "the rest archived after the restart", again.proc)
    assert again.stop() == 0
    assert check_vault(vault, files) == dict.fromkeys(files, "archive")
    assert len(notes(vault)) == 3
    assert set(journal(vault).values()) == {"done"}


def test_crash_after_the_note_is_written_is_rolled_forward_by_the_next_watch(
    tmp_path: Path, model_env: FakeOpenAI, watches: list[Watch]
) -> None:
    files = {"2026-03-01 - kiwi.txt": meeting("kiwi")}
    vault = inbox_vault(tmp_path / "vault", files)
    model_env.default = fo.responder(by_topic)
    w = Watch(vault, "--settle", "0", env={"SUMMARIZER_CRASH_AT": "after-note-write:1"})
    watches.append(w)
    assert w.stop(None) == 137
    assert inbox_names(vault) == ["2026-03-01 - kiwi.txt"] and len(notes(vault)) == 1

    again = Watch(vault, "--settle", "0")
    watches.append(again)
    again.wait_line("recovered:")
    until(lambda: len(archived_names(vault)) == 1, "the transcript archived", again.proc)
    assert again.stop() == 0
    assert check_vault(vault, files) == dict.fromkeys(files, "archive")
    assert len(model_env.chat_requests()) == 1  # the note was not paid for twice


def test_a_second_sigint_stops_at_once_and_the_next_start_finishes(
    tmp_path: Path, model_env: FakeOpenAI, watches: list[Watch]
) -> None:
    files = {"2026-03-01 - kiwi.txt": meeting("kiwi")}
    vault = inbox_vault(tmp_path / "vault", files)
    hold = HoldAfter(0)  # the call is held until the server stops
    model_env.default = fo.responder(hold)
    w = Watch(vault, "--settle", "0")
    watches.append(w)
    until(hold.held.is_set, "the model call in flight", w.proc)
    w.proc.send_signal(signal.SIGINT)
    w.wait_line("stopping after the transcript in flight")
    assert w.stop(signal.SIGINT) == 130
    assert "stopped at once" in w.output()
    assert inbox_names(vault) == ["2026-03-01 - kiwi.txt"]

    model_env.default = fo.responder(by_topic)
    again = Watch(vault, "--settle", "0")
    watches.append(again)
    until(lambda: len(archived_names(vault)) == 1, "the transcript archived", again.proc)
    assert again.stop() == 0
    assert check_vault(vault, files) == dict.fromkeys(files, "archive")


def test_sigterm_lets_the_transcript_in_flight_finish(
    tmp_path: Path, model_env: FakeOpenAI, watches: list[Watch]
) -> None:
    files = {"2026-03-01 - kiwi.txt": meeting("kiwi")}
    vault = inbox_vault(tmp_path / "vault", files)
    arrived = threading.Event()

    def slow(body: dict[str, object]) -> fo.Behaviour:
        arrived.set()
        return fo.delayed(1.0, by_topic(body))

    model_env.default = fo.responder(slow)
    w = Watch(vault, "--settle", "0")
    watches.append(w)
    until(arrived.is_set, "the model call in flight", w.proc)
    assert w.stop() == 0  # sent while the server still holds the answer
    assert check_vault(vault, files) == dict.fromkeys(files, "archive")
    assert journal(vault) == {"Inbox/2026-03-01 - kiwi.txt": "done"}


# ---------------------------------------------------------------------------- back-off and failures


def test_backs_off_while_the_model_server_fails_then_catches_up(
    tmp_path: Path, model_env: FakeOpenAI, watches: list[Watch]
) -> None:
    files = {"2026-03-01 - kiwi.txt": meeting("kiwi")}
    vault = inbox_vault(tmp_path / "vault", files)
    # 503 and 502 say the server (or its proxy) is down; a 500 on a first call would be taken as a
    # possible refusal of the response format and cost one request in the next format instead.
    model_env.enqueue(fo.server_error(503), fo.server_error(502))
    model_env.default = fo.responder(by_topic)
    w = Watch(vault, "--settle", "0", "--backoff", "0.2", env={"SUMMARIZER_MAX_RETRIES": "0"})
    watches.append(w)
    until(lambda: len(archived_names(vault)) == 1, "the transcript archived after the outage", w.proc)
    assert w.stop() == 0
    out = w.output()
    assert "the model server is unavailable; trying again in 0.2s" in out
    assert "the model server is unavailable; trying again in 0.4s" in out  # doubled
    assert out.count("will try again after the back-off") == 2
    assert [r.response_status for r in model_env.requests if r.path.endswith("/chat/completions")] == [503, 502, 200]
    assert check_vault(vault, files) == dict.fromkeys(files, "archive")


def test_a_transcript_failing_on_its_own_waits_until_it_changes(
    tmp_path: Path, model_env: FakeOpenAI, watches: list[Watch]
) -> None:
    vault = inbox_vault(tmp_path / "vault", {"2026-03-01 - empty.txt": ""})
    model_env.default = fo.responder(by_topic)
    w = Watch(vault, "--settle", "0")
    watches.append(w)
    w.wait_line("failed  2026-03-01 - empty.txt")
    # Another file arriving makes a new pass: the failed one is not tried again.
    (vault / "Inbox" / "2026-03-02 - fig.txt").write_text(meeting("fig"), encoding="utf-8")
    w.wait_line("done    2026-03-02 - fig.txt")
    # Fixed by the user: tried again, and summarised.
    (vault / "Inbox" / "2026-03-01 - empty.txt").write_text(meeting("kiwi"), encoding="utf-8")
    w.wait_line("done    2026-03-01 - empty.txt")
    assert w.stop() == 0
    assert w.output().count("failed  2026-03-01 - empty.txt") == 1
    assert len(notes(vault)) == 2 and inbox_names(vault) == []


def test_bad_options_exit_2_before_anything(tmp_path: Path) -> None:
    vault = inbox_vault(tmp_path / "vault", {})
    result = cli("watch", "--vault", vault, "--settle", "-1")
    assert result.exit_code == 2 and "--settle" in result.stderr
    result = cli("watch", "--vault", vault, "--backoff", "0")
    assert result.exit_code == 2 and "--backoff" in result.stderr
    assert not (vault / "Inbox").exists()
