"""Issue 15 and 12 through the CLI: `inbox` says why nothing happened, and the next run cleans the
temp files a killed run left behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli, make_vault, snapshot
from tests.test_inbox import by_topic, inbox_names, inbox_vault, meeting, notes


@pytest.fixture(autouse=True)
def no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUMMARIZER_INBOX_SETTLE", "0")


# ---------------------------------------------------------------------------- why nothing happened


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_no_inbox_folder_is_said(tmp_path: Path, model_env: FakeOpenAI, dry_run: list[str]) -> None:
    vault = make_vault(tmp_path / "vault")
    result = cli("inbox", "--vault", vault, *dry_run)
    assert result.exit_code == 0, result.stderr
    assert "no inbox folder at Inbox/" in result.stderr
    assert not (vault / "Inbox").exists()


def test_an_inbox_folder_from_the_settings_is_named(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = make_vault(tmp_path / "vault", 'inbox = "Drop/Here"\narchive = "Drop/Done"\n')
    result = cli("inbox", "--vault", vault)
    assert result.exit_code == 0
    assert "no inbox folder at Drop/Here/" in result.stderr


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_only_matching_nothing_is_said(tmp_path: Path, model_env: FakeOpenAI, dry_run: list[str]) -> None:
    vault = inbox_vault(tmp_path / "vault", {"2026-03-01 - kiwi.txt": meeting("kiwi")})
    result = cli("inbox", "--vault", vault, "--only", "*.vtt", *dry_run)
    assert result.exit_code == 0
    assert "--only '*.vtt' matched no file in Inbox/" in result.stderr
    assert inbox_names(vault) == ["2026-03-01 - kiwi.txt"]
    assert model_env.chat_requests() == []


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_limit_zero_is_said(tmp_path: Path, model_env: FakeOpenAI, dry_run: list[str]) -> None:
    vault = inbox_vault(tmp_path / "vault", {"2026-03-01 - kiwi.txt": meeting("kiwi")})
    before = snapshot(vault)
    result = cli("inbox", "--vault", vault, "--limit", "0", *dry_run)
    assert result.exit_code == 0
    assert "--limit 0: nothing to process" in result.stderr
    assert snapshot(vault) == before
    assert model_env.chat_requests() == []


def test_an_empty_inbox_is_said(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = make_vault(tmp_path / "vault")
    (vault / "Inbox").mkdir()
    result = cli("inbox", "--vault", vault)
    assert result.exit_code == 0
    assert "nothing waiting in Inbox/" in result.stderr


def test_nothing_is_said_when_something_was_done(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = inbox_vault(tmp_path / "vault", {"2026-03-01 - kiwi.txt": meeting("kiwi")})
    model_env.default = fo.responder(by_topic)
    result = cli("inbox", "--vault", vault, "--limit", "1")
    assert result.exit_code == 0
    assert "nothing" not in result.stderr and "matched no file" not in result.stderr
    assert len(notes(vault)) == 1


def test_a_negative_limit_is_a_usage_error(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = inbox_vault(tmp_path / "vault", {"2026-03-01 - kiwi.txt": meeting("kiwi")})
    result = cli("inbox", "--vault", vault, "--limit", "-1")
    assert result.exit_code == 2
    assert "--limit must be zero or more, got -1" in result.stderr


# ---------------------------------------------------------------------------- stray temp files (issue 12)


def _old(path: Path, text: str = "half") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    past = time.time() - 3600
    os.utime(path, (past, past))
    return path


@pytest.mark.parametrize("command", ["inbox", "regenerate"])
def test_stray_temp_files_of_a_killed_run_are_removed_by_the_next_run(
    tmp_path: Path, model_env: FakeOpenAI, command: str
) -> None:
    vault = inbox_vault(tmp_path / "vault", {"2026-03-01 - kiwi.txt": meeting("kiwi")})
    model_env.default = fo.responder(by_topic)
    assert cli("inbox", "--vault", vault).exit_code == 0
    [note] = notes(vault)
    state = vault / ".summarizer"
    strays = [
        _old(state / ".inbox.pid.1a2b3c4d.tmp"),  # what a regenerate killed mid-write left (issue 12)
        _old(note.parent / f".{note.name}.deadbeef.tmp"),  # next to a note we wrote
    ]
    kept = [
        _old(state / ".inbox.pid.not-ours.tmp"),  # not write_atomic's pattern
        _old(state / "notes.tmp"),
        _old(vault / "Elsewhere" / ".Plan.md.0badf00d.tmp"),  # a folder we never wrote a note to
        _old(note.parent / ".hidden-but-mine.md"),
    ]
    fresh = note.parent / f".{note.name}.cafe0123.tmp"  # newer than the lock: someone is writing it
    fresh.write_text("in flight", encoding="utf-8")
    future = time.time() + 3600
    os.utime(fresh, (future, future))
    kept.append(fresh)

    args = ["--all"] if command == "regenerate" else []
    result = cli(command, "--vault", vault, *args)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert [p for p in strays if p.exists()] == []
    assert [p for p in kept if not p.exists()] == []


@pytest.mark.parametrize("command", [["inbox", "--dry-run"], ["regenerate", "--all", "--dry-run"]])
def test_a_dry_run_removes_nothing(tmp_path: Path, model_env: FakeOpenAI, command: list[str]) -> None:
    vault = make_vault(tmp_path / "vault")
    (vault / "Inbox").mkdir()
    stray = _old(vault / ".summarizer" / ".inbox.pid.1a2b3c4d.tmp")
    result = cli(*command, "--vault", vault)
    assert result.exit_code == 0, result.stderr
    assert stray.exists()
