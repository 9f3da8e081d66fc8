"""Kill real `summarizer inbox` runs (separate processes) at every step, then run again.

Each crash run is `python -m summarizer.cli inbox ...` in a subprocess. It dies either at a
named step (`SUMMARIZER_CRASH_AT=<step>:<n>` makes inbox.py call `os._exit(137)` there, as
abruptly as kill -9) or from a real SIGKILL sent while the loopback server is holding its
request. After every crash: nothing lost. After the next run: every transcript archived with
exactly one note pointing at it, no temp files, no duplicate notes, no extra model calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli, snapshot
from tests.test_inbox import (
    archived,
    by_topic,
    check_vault,
    inbox_names,
    inbox_vault,
    meeting,
    notes,
    spawn_inbox,
    state,
    topic_of,
)

TOPICS = ["kiwi", "fig", "lime", "plum"]
FILES = {f"2026-03-0{i} - {t}.txt": meeting(t) for i, t in enumerate(TOPICS, 1)}
FILES["zz copy of kiwi.txt"] = meeting("kiwi")  # same content as the first: archived as a duplicate
UNIQUE = len(set(FILES.values()))
# Whole words: the transcript says "figures", which must not read as the topic "fig".
TOPIC_OF_FILE = {name: next(t for t in TOPICS if re.search(rf"\b{t}\b", text)) for name, text in FILES.items()}


@pytest.fixture(autouse=True)
def no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUMMARIZER_INBOX_SETTLE", "0")


def assert_nothing_lost(vault: Path) -> None:
    """Mid-crash state: every original is in the inbox or the archive, and no note is doubled."""
    archived_texts = [p.read_text(encoding="utf-8") for p in archived(vault)]
    present = set(inbox_names(vault))
    for name, text in FILES.items():
        assert name in present or text in archived_texts, f"{name} lost"
    refs = [n.read_text(encoding="utf-8").split("source_ref: ", 1)[1].split("\n", 1)[0] for n in notes(vault)]
    assert len(refs) == len(set(refs)), f"two notes for one transcript: {refs}"


def finish_and_check(vault: Path, fake: FakeOpenAI) -> None:
    result = cli("inbox", "--vault", vault)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert check_vault(vault, FILES) == dict.fromkeys(FILES, "archive")
    assert len(notes(vault)) == UNIQUE
    assert not state(vault, "SELECT * FROM inbox_transcripts WHERE status != 'done'")
    assert fake.errors == []


STEPS = [
    "after-plan:1",
    "after-plan:3",
    "after-note-write:1",
    "after-note-write:2",
    "after-note-recorded:1",
    "after-note-recorded:4",
    "after-move:1",
    "after-move:3",
    "after-done:2",
    "after-duplicate-plan:1",
    "after-duplicate-move:1",
]


@pytest.mark.parametrize("concurrency", ["1", "3"])
@pytest.mark.parametrize("crash_at", STEPS)
def test_killed_at_a_step_the_next_run_finishes_without_loss_or_duplicates(
    tmp_path: Path, model_env: FakeOpenAI, crash_at: str, concurrency: str
) -> None:
    vault = inbox_vault(tmp_path / "vault", FILES)
    model_env.default = fo.responder(by_topic)

    run = spawn_inbox(vault, "--concurrency", concurrency, crash_at=crash_at)
    out, err = run.communicate(timeout=120)

    assert run.returncode == 137, f"expected a crash at {crash_at}: {out}\n{err}"
    assert_nothing_lost(vault)
    journaled = {
        TOPIC_OF_FILE[r[0].rsplit("/", 1)[1]] for r in state(vault, "SELECT inbox_path FROM inbox_transcripts")
    }
    assert journaled
    finish_and_check(vault, model_env)
    # An extraction is cached before its journal row exists: whatever the crash interrupted after
    # that point cost no second call (only requests still in flight at the kill are sent again).
    asked = [topic_of(body) for body in model_env.chat_requests()]
    assert all(asked.count(topic) == 1 for topic in journaled), asked
    assert len(asked) < UNIQUE + 2 * int(concurrency)


def test_a_kill_mid_write_leaves_a_temp_file_that_recovery_removes(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = inbox_vault(tmp_path / "vault", FILES)
    model_env.default = fo.responder(by_topic)
    run = spawn_inbox(vault, "--concurrency", "1", crash_at="after-plan:1")
    run.communicate(timeout=120)
    assert run.returncode == 137
    # one planned row, or two when the spare worker planned too just before the kill
    planned = state(vault, "SELECT note_path FROM inbox_transcripts WHERE status = 'planned'")
    assert planned
    note = vault / planned[0][0]
    assert not note.exists()
    # What write_atomic leaves when killed between creating its temp file and renaming it:
    stray = note.parent / f".{note.name}.k1ll3d.tmp"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_text("half a no", encoding="utf-8")

    finish_and_check(vault, model_env)
    assert not stray.exists()


def test_killed_after_note_write_the_note_is_adopted_not_rewritten(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = inbox_vault(tmp_path / "vault", FILES)
    model_env.default = fo.responder(by_topic)
    run = spawn_inbox(vault, "--concurrency", "1", crash_at="after-note-write:1")
    run.communicate(timeout=120)
    assert run.returncode == 137
    written = notes(vault)  # one, or two when the spare worker got there too before the kill
    assert written
    for note in written:
        note.write_text(note.read_text(encoding="utf-8") + "\nMy own edit.\n", encoding="utf-8")

    result = cli("inbox", "--vault", vault)

    assert result.exit_code == 0
    assert "recovered: archived" in result.stderr
    assert all("My own edit." in n.read_text(encoding="utf-8") for n in written)  # kept, not redone
    assert check_vault(vault, FILES) == dict.fromkeys(FILES, "archive")
    assert len(notes(vault)) == UNIQUE


class HoldAfter:
    """Answer the first `free` chat requests at once; hold the next one (and signal) until the
    server stops, so the test knows the run is mid-flight when it sends SIGKILL."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.seen = 0
        self.held = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> fo.Behaviour:
        with self._lock:
            self.seen += 1
            hold = self.seen > self.free
        if hold:
            self.held.set()
            return fo.delayed(600, by_topic(body))
        return by_topic(body)


@pytest.mark.parametrize("concurrency", ["1", "3"])
def test_sigkill_while_the_server_holds_a_request_then_again_until_done(
    tmp_path: Path, model_env: FakeOpenAI, concurrency: str
) -> None:
    vault = inbox_vault(tmp_path / "vault", FILES)
    kills = 0
    for free in range(UNIQUE + 1):
        hold = HoldAfter(free)
        model_env.default = fo.responder(hold)
        run = spawn_inbox(vault, "--concurrency", concurrency)
        while not hold.held.wait(0.05):
            if run.poll() is not None:
                break
        if run.poll() is None:
            os.kill(run.pid, signal.SIGKILL)
            kills += 1
        _, err = run.communicate(timeout=120)
        assert run.returncode in (0, -signal.SIGKILL), err
        assert_nothing_lost(vault)
        if run.returncode == 0:
            break
    assert kills >= UNIQUE - 1
    model_env.default = fo.responder(by_topic)
    finish_and_check(vault, model_env)


def test_wait_queues_behind_the_run_holding_the_lock(tmp_path: Path, model_env: FakeOpenAI) -> None:
    from filelock import FileLock

    vault = inbox_vault(tmp_path / "vault", {"2026-03-02 - kiwi.txt": meeting("kiwi")})
    model_env.default = fo.responder(by_topic)
    (vault / ".summarizer").mkdir(exist_ok=True)
    holder = os.getpid()  # a live process stands in for the run holding the lock
    (vault / ".summarizer" / "inbox.pid").write_text(str(holder), encoding="utf-8")
    lock = FileLock(str(vault / ".summarizer" / "inbox.lock"))
    lock.acquire()
    try:
        run = spawn_inbox(vault, "--wait")
        assert run.stderr is not None
        line = run.stderr.readline()
        assert f"waiting for the vault lock held by pid {holder}" in line
        assert model_env.requests == []
    finally:
        lock.release()
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert inbox_names(vault) == [] and len(notes(vault)) == 1


# ---------------------------------------------------------------------------- recovery never loses or escapes


def crash_with_one_row_written(tmp_path: Path, fake: FakeOpenAI) -> tuple[Path, dict[str, str], dict[str, Any]]:
    """A one-transcript inbox whose run died after the note was recorded, before the move."""
    files = {"2026-03-02 - kiwi.txt": meeting("kiwi")}
    vault = inbox_vault(tmp_path / "vault", files)
    fake.default = fo.responder(by_topic)
    run = spawn_inbox(vault, crash_at="after-note-recorded:1")
    run.communicate(timeout=120)
    assert run.returncode == 137
    ((status, inbox_path, note_path, archive_path),) = state(
        vault, "SELECT status, inbox_path, note_path, archive_path FROM inbox_transcripts"
    )
    assert status == "written"
    return vault, files, {"inbox": inbox_path, "note": note_path, "archive": archive_path}


@pytest.mark.parametrize("squatter", ["other content", "symlink to the same content", "same content"])
def test_recovery_deletes_the_inbox_copy_only_when_the_archive_really_holds_it(
    tmp_path: Path, model_env: FakeOpenAI, squatter: str
) -> None:
    vault, files, row = crash_with_one_row_written(tmp_path, model_env)
    text = files["2026-03-02 - kiwi.txt"]
    archive = vault / row["archive"]
    archive.parent.mkdir(parents=True, exist_ok=True)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text(text, encoding="utf-8")
    if squatter == "other content":
        archive.write_text("someone else's file", encoding="utf-8")
    elif squatter == "symlink to the same content":
        archive.symlink_to(elsewhere)
    else:
        archive.write_text(text, encoding="utf-8")  # as a move cut short leaves it

    result = cli("inbox", "--vault", vault)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert elsewhere.read_text(encoding="utf-8") == text
    (note,) = notes(vault)
    ref = note.read_text(encoding="utf-8").split("source_ref: ", 1)[1].split("\n", 1)[0].strip("'\"")
    assert (vault / ref).read_text(encoding="utf-8") == text and not (vault / ref).is_symlink()
    if squatter == "same content":
        assert ref == row["archive"]
    else:
        assert ref != row["archive"] and (archive.is_symlink() or archive.read_text(encoding="utf-8") != text)
        if archive.is_symlink():
            archive.unlink()  # the squatter is left alone; out of the way, the vault check counts real files
    assert check_vault(vault, files) == dict.fromkeys(files, "archive")
    assert state(vault, "SELECT status, archive_path FROM inbox_transcripts") == [("done", ref)]


def test_recovery_never_deletes_outside_the_vault_and_one_bad_row_does_not_stop_the_rest(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    vault, files, _row = crash_with_one_row_written(tmp_path, model_env)
    text = meeting("fig")
    outside = tmp_path / "outside.txt"
    outside.write_text(text, encoding="utf-8")
    archived_copy = vault / "Inbox/_archive/2026-01-01/outside.txt"
    archived_copy.parent.mkdir(parents=True)
    archived_copy.write_text(text, encoding="utf-8")
    (vault / "Inbox" / "a folder.txt").mkdir()  # a row's inbox path that is now a folder
    bad_rows = [
        ("1" * 64, str(outside), "Inbox/_archive/2026-01-01/outside.txt"),  # what a symlink used to leave
        ("2" * 64, "../outside.txt", "Inbox/_archive/2026-01-01/outside.txt"),
        ("3" * 64, "Inbox/a folder.txt", "Inbox/_archive/2026-01-01/outside.txt"),
    ]
    fig_hash = hashlib.sha256(text.encode()).hexdigest()
    with sqlite3.connect(vault / ".summarizer" / "state.db") as db:
        for key, inbox_path, archive_path in bad_rows:
            db.execute(
                """INSERT INTO inbox_transcripts (content_hash, status, inbox_path, note_path, note_sha,
                       archive_path, first_seen, updated)
                   VALUES (?, 'written', ?, 'Meetings/x.md', 'x', ?, 'now', 'now')""",
                (fig_hash if key.startswith("1") else key, inbox_path, archive_path),
            )

    result = cli("inbox", "--vault", vault)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert outside.read_text(encoding="utf-8") == text
    assert (vault / "Inbox" / "a folder.txt").is_dir()
    assert check_vault(vault, files) == dict.fromkeys(files, "archive")  # the good row was finished
    errors = dict(state(vault, "SELECT inbox_path, error FROM inbox_transcripts WHERE status = 'failed'"))
    assert set(errors) == {str(outside), "../outside.txt"}
    assert all("escapes the vault" in e or "not a path inside the vault" in e for e in errors.values())
    assert all("\n" not in e for e in errors.values())
    lines = [line for line in result.stderr.splitlines() if line.startswith("recovered: could not finish")]
    assert len(lines) == 2 and any("../outside.txt" in line for line in lines)


def test_a_dry_run_lists_what_recovery_would_do_and_changes_nothing(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault, _files, row = crash_with_one_row_written(tmp_path, model_env)
    before = snapshot(vault)
    rows = state(vault, "SELECT * FROM inbox_transcripts ORDER BY content_hash")

    result = cli("inbox", "--vault", vault, "--dry-run", "--json")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert snapshot(vault) == before
    assert state(vault, "SELECT * FROM inbox_transcripts ORDER BY content_hash") == rows
    items = json.loads(result.stdout)["items"]
    assert any(i["name"] == row["inbox"] and "would recover" in i["detail"] for i in items)
