"""Inputs that are not a regular readable file, vault paths, --date, and the mode notes get."""

from __future__ import annotations

import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from summarizer.errors import TranscriptError
from summarizer.reader import read_transcript
from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import Result, cli, make_vault

TRANSCRIPT = "Alice Moreau: We lock the budget this week.\nBob Chen: I'll send the forecast by Friday.\n"
NAME = "2026-03-02 - Budget review.txt"
EXTRACTION = {
    "title": "Budget review",
    "meeting_date": None,
    "note_type": "internal",
    "account": None,
    "account_category": None,
    "participants": ["Alice Moreau", "Bob Chen"],
    "summary": "The budget is locked this week.",
    "action_items": [],
    "decisions": [],
    "key_information": [],
    "related": [],
}


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    return make_vault(tmp_path / "vault", 'engine = "offline"\n', {f"Inbox/{NAME}": TRANSCRIPT})


@pytest.fixture
def fifo(vault: Path) -> Iterator[Path]:
    path = vault / "Inbox" / "stream.txt"
    os.mkfifo(path)
    yield path
    # Should a reader ever block on it, a writer opening and closing the pipe sets it free.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(fd)


def run_unblocked(*args: str | Path) -> Result:
    """Run the CLI in a thread, so a command stuck opening a FIFO fails the test instead of hanging."""
    results: list[Result] = []
    worker = threading.Thread(target=lambda: results.append(cli(*args)), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), f"summarizer {args[0]} blocked"
    return results[0]


def one_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_summarise_refuses_a_fifo_at_once(vault: Path, fifo: Path, model_env: FakeOpenAI) -> None:
    result = run_unblocked("summarise", fifo, "--vault", vault, "--engine", "openai")
    assert result.exit_code == 2
    assert one_line(result) == f"error: {fifo}: is a named pipe (FIFO), not a transcript file"
    assert model_env.requests == [] and not (vault / ".summarizer").exists()


def test_reading_a_fifo_is_refused_without_blocking(fifo: Path) -> None:
    errors: list[TranscriptError] = []

    def read() -> None:
        try:
            read_transcript(fifo)
        except TranscriptError as err:
            errors.append(err)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "read_transcript blocked on a FIFO"
    assert [str(e) for e in errors] == [f"{fifo}: is a named pipe (FIFO), not a transcript file"]


def test_a_fifo_named_like_a_note_is_not_read_while_indexing_the_vault(
    vault: Path, model_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    os.mkfifo(vault / "People.md")
    monkeypatch.setenv("SUMMARIZER_ENGINE", "openai")
    model_env.enqueue(fo.reply(EXTRACTION))
    result = run_unblocked("summarise", vault / "Inbox" / NAME, "--vault", vault)
    assert result.exit_code == 0, result.stderr
    assert len(model_env.chat_requests()) == 1


def test_summarise_refuses_a_directory_a_socket_and_a_device(vault: Path, tmp_path: Path) -> None:
    folder = vault / "Inbox" / "folder.txt"
    folder.mkdir()
    sock_path = tmp_path / "s.txt"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        cases = [(folder, "a directory"), (sock_path, "a socket"), (Path(os.devnull), "a character device")]
        for path, kind in cases:
            result = run_unblocked("summarise", path, "--vault", vault)
            assert result.exit_code == 2, result.stderr
            assert one_line(result) == f"error: {path}: is {kind}, not a transcript file"
    assert not (vault / "Meetings").exists()


def test_summarise_refuses_an_unreadable_file(vault: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = vault / "Inbox" / NAME
    if os.geteuid() == 0:  # root reads anything: ask the reader's permission check what a user would get
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == path else real_access(p, mode))
    else:
        path.chmod(0)
    result = cli("summarise", path, "--vault", vault)
    assert result.exit_code == 2
    assert one_line(result) == f"error: {path}: cannot read file: Permission denied"


def test_a_config_file_that_is_not_a_regular_file_is_refused(vault: Path) -> None:
    config = vault / ".summarizer.toml"
    config.unlink()
    os.mkfifo(config)
    result = run_unblocked("config", "--vault", vault)
    assert result.exit_code == 2
    assert one_line(result) == f"error: {config}: is not a regular file; a config file must be a TOML file"


def test_a_missing_transcript_is_a_usage_error(vault: Path) -> None:
    result = cli("summarise", vault / "Inbox" / "nope.txt", "--vault", vault)
    assert result.exit_code == 2
    assert one_line(result) == f"error: {vault / 'Inbox' / 'nope.txt'}: no such file"


@pytest.mark.parametrize("command", ["summarise", "inbox", "regenerate", "config"])
def test_a_vault_that_is_missing_or_a_file_is_a_usage_error(vault: Path, tmp_path: Path, command: str) -> None:
    extra: list[str | Path] = {"summarise": [vault / "Inbox" / NAME], "regenerate": ["--all"]}.get(command, [])
    missing = tmp_path / "no-such-vault"
    result = cli(command, *extra, "--vault", missing)
    assert (result.exit_code, one_line(result)) == (2, f"error: {missing}: vault folder does not exist")
    a_file = tmp_path / "vault.txt"
    a_file.write_text("not a folder")
    result = cli(command, *extra, "--vault", a_file)
    assert (result.exit_code, one_line(result)) == (2, f"error: {a_file}: is a file, not a vault folder")


def test_the_vault_from_the_environment_is_checked_too(
    vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUMMARIZER_VAULT", str(tmp_path / "gone"))
    result = cli("inbox")
    assert (result.exit_code, one_line(result)) == (2, f"error: {tmp_path / 'gone'}: vault folder does not exist")


def test_an_impossible_date_is_named_as_such(vault: Path) -> None:
    result = cli("summarise", vault / "Inbox" / NAME, "--vault", vault, "--date", "2024-02-30")
    assert (result.exit_code, one_line(result)) == (2, "error: --date: 2024-02-30 is not a valid date")
    result = cli("summarise", vault / "Inbox" / NAME, "--vault", vault, "--date", "next friday")
    assert (result.exit_code, one_line(result)) == (2, "error: --date must be YYYY-MM-DD, got 'next friday'")


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_notes_get_the_mode_the_umask_gives_and_keep_it_when_overwritten(vault: Path, umask: None) -> None:
    result = cli("summarise", vault / "Inbox" / NAME, "--vault", vault)
    assert result.exit_code == 0, result.stderr
    note = Path(result.stdout.strip())
    assert stat.S_IMODE(note.stat().st_mode) == 0o640  # 0o666 less the umask 0o027, not mkstemp's 0o600
    note.chmod(0o604)
    again = cli("summarise", vault / "Inbox" / NAME, "--vault", vault, "--force")
    assert again.exit_code == 0, again.stderr
    assert Path(again.stdout.strip()) == note
    assert stat.S_IMODE(note.stat().st_mode) == 0o604
    assert [p.name for p in note.parent.iterdir()] == [note.name], "no temporary file left behind"


def test_regenerate_refuses_a_fifo_named_as_a_note_at_once(tmp_path: Path) -> None:
    vault = make_vault(tmp_path / "vault", "", {})
    fifo = vault / "Meetings" / "pipe.md"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    result = cli("regenerate", fifo, "--vault", vault, "--engine", "offline")
    assert result.exit_code == 1
    assert "pipe.md: is a named pipe (FIFO), not a note" in result.stderr


def test_regenerate_all_skips_a_fifo_named_like_a_note(tmp_path: Path) -> None:
    vault = make_vault(tmp_path / "vault", "", {})
    (vault / "Meetings").mkdir()
    os.mkfifo(vault / "Meetings" / "pipe.md")
    result = cli("regenerate", "--all", "--vault", vault, "--engine", "offline")
    assert result.exit_code == 0, result.stderr  # returned at all: reading the FIFO would block for ever
