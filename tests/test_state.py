"""The state store across versions: every layout ever shipped is upgraded in place (after a copy),
and the commands then work on it; a database from a newer version is refused in one line."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from summarizer.store import SCHEMA_VERSION
from tests.helpers import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "vault"
LAYOUTS = sorted((Path(__file__).parent / "data" / "state_layouts").glob("v*.sql"))
TRANSCRIPT = "Inbox/2026-03-02 - Website relaunch planning with Northwind.md"


def vault_with_state(tmp_path: Path, sql: str) -> Path:
    vault = tmp_path / "vault"
    shutil.copytree(EXAMPLE, vault, ignore=shutil.ignore_patterns(".summarizer"))
    (vault / ".summarizer").mkdir()
    with sqlite3.connect(vault / ".summarizer" / "state.db") as db:
        db.executescript(sql)
    return vault


def notes_columns(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return len(db.execute("PRAGMA table_info(notes)").fetchall())


def test_every_layout_ever_shipped_has_a_fixture() -> None:
    assert [p.stem for p in LAYOUTS] == [f"v{n}" for n in range(1, SCHEMA_VERSION + 1)]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda p: p.stem)
def test_an_older_state_db_is_kept_then_upgraded_and_every_command_works_on_it(
    tmp_path: Path, layout: Path
) -> None:
    version = int(layout.stem[1:])
    vault = vault_with_state(tmp_path, layout.read_text(encoding="utf-8"))
    state = vault / ".summarizer" / "state.db"
    columns_before = notes_columns(state)

    summarised = cli("summarise", TRANSCRIPT, "--vault", vault, "--engine", "offline")

    assert summarised.exit_code == 0, summarised.stdout + summarised.stderr
    assert Path(summarised.stdout.strip()).is_file()
    with sqlite3.connect(state) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT source_ref FROM notes WHERE note_path LIKE 'Meetings/%Old%'").fetchall() == [
            ("Inbox/old.txt",)
        ]
        assert db.execute("SELECT count(*) FROM notes").fetchone()[0] == 2
        # Layout 4's runs: the summarise just made is recorded, whatever layout the file had.
        assert ("summarise", "done") in db.execute("SELECT command, status FROM runs").fetchall()
        assert {r[1] for r in db.execute("PRAGMA table_info(calls)")} >= {"run_id", "item"}
        # Layout 5's learned server limits: present whatever layout the file had, a stored row kept.
        learned = db.execute("SELECT endpoint, context_window, slots FROM server_limits").fetchall()
        assert learned == ([("http://127.0.0.1:1/v1|local-model", 4096, 1)] if version >= 5 else [])
    # Every shipped layout predates the version stamp: each is recognised by its tables, and one
    # that needs upgrading is kept first.
    copies = sorted(p.name for p in (vault / ".summarizer").glob("state.db.bak-*"))
    if version < SCHEMA_VERSION:
        assert copies == [f"state.db.bak-v{version}"]
        copy = vault / ".summarizer" / copies[0]
        assert notes_columns(copy) == columns_before
        stamped = re.search(r"PRAGMA user_version = (\d+)", layout.read_text(encoding="utf-8"))
        with sqlite3.connect(copy) as db:  # untouched, as shipped (layouts 1-3 predate the stamp)
            assert db.execute("PRAGMA user_version").fetchone()[0] == (int(stamped.group(1)) if stamped else 0)
    else:
        assert copies == []

    inbox = cli("inbox", "--vault", vault, "--engine", "offline", "--settle", "0", "--json")
    assert inbox.exit_code == 0, inbox.stdout + inbox.stderr
    assert not (vault / TRANSCRIPT).exists()  # summarised again and archived

    regenerated = cli("regenerate", "--all", "--vault", vault, "--engine", "offline", "--json")
    assert regenerated.exit_code == 0, regenerated.stdout + regenerated.stderr
    assert "Traceback" not in summarised.stderr + inbox.stderr + regenerated.stderr


def test_a_second_open_does_not_copy_or_migrate_again(tmp_path: Path) -> None:
    vault = vault_with_state(tmp_path, LAYOUTS[0].read_text(encoding="utf-8"))
    for _ in range(2):
        assert cli("summarise", TRANSCRIPT, "--vault", vault, "--engine", "offline", "--out", "-").exit_code == 0
    assert sorted(p.name for p in (vault / ".summarizer").glob("state.db.bak-*")) == ["state.db.bak-v1"]


def test_a_state_db_from_a_newer_version_is_refused_in_one_line(tmp_path: Path) -> None:
    vault = vault_with_state(tmp_path, f"PRAGMA user_version = {SCHEMA_VERSION + 1};")
    before = (vault / TRANSCRIPT).read_bytes()

    result = cli("summarise", TRANSCRIPT, "--vault", vault, "--engine", "offline")

    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "state.db" in line and "newer summarizer" in line
    assert (vault / TRANSCRIPT).read_bytes() == before
    assert not list((vault / "Meetings").glob("*.md")) if (vault / "Meetings").exists() else True


def test_the_example_vault_ships_no_state_and_readme_first_command_leaves_git_clean(tmp_path: Path) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "examples/vault/.summarizer"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    assert tracked.stdout == ""
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "examples/vault/.summarizer/state.db"], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0


def test_a_db_written_by_the_previous_version_gains_the_runs_and_every_call_its_run(tmp_path: Path) -> None:
    """Layout 3 as the previous release wrote it (stamped `user_version = 3`): kept, then upgraded."""
    v3 = (Path(__file__).parent / "data" / "state_layouts" / "v3.sql").read_text(encoding="utf-8")
    vault = vault_with_state(tmp_path, v3 + "\nPRAGMA user_version = 3;\n")
    state = vault / ".summarizer" / "state.db"

    result = cli("summarise", TRANSCRIPT, "--vault", vault, "--engine", "offline")

    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (vault / ".summarizer").glob("state.db.bak-*")) == ["state.db.bak-v3"]
    with sqlite3.connect(vault / ".summarizer" / "state.db.bak-v3") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3
        assert not db.execute("SELECT name FROM sqlite_master WHERE name = 'runs'").fetchall()
    with sqlite3.connect(state) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT command, status, done, failed FROM runs").fetchall() == [("summarise", "done", 1, 0)]
        # The call logged before the upgrade keeps its place, with no run.
        assert db.execute("SELECT label, run_id, item FROM calls").fetchall() == [("Inbox/old.txt", None, None)]
    log = cli("log", "--vault", vault, "--calls", "--json")
    assert log.exit_code == 0, log.stderr
    assert [c["label"] for c in json.loads(log.stdout)["calls"]] == ["Inbox/old.txt"]
