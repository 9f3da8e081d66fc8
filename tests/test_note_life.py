"""Issue 11: a note stays linked and whole through its whole life, through the real CLI.

One transcript, one note, whatever order `summarise`, `inbox` and `regenerate` run in, with every
`source_ref` and Source link resolving; a renamed or moved note keeps every edit through
`regenerate`; `--render-only` works with the transcript gone; every command finds the vault from
the current folder; a transcript whose name a wikilink cannot hold is archived under one it can.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli, make_vault, snapshot
from tests.test_inbox import answer_by_topic, archived, check_vault, inbox_names, meeting, notes, spawn_inbox

ARCHIVE = "Inbox/_archive"


@pytest.fixture(autouse=True)
def no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUMMARIZER_INBOX_SETTLE", "0")


def front(note: Path) -> dict[str, Any]:
    _, head, _ = note.read_text(encoding="utf-8").split("---\n", 2)
    loaded = yaml.safe_load(head)
    assert isinstance(loaded, dict)
    return loaded


def source_line(note: Path) -> tuple[str, str]:
    found = re.search(r"^\*Source: \[\[([^|\]]+)\|([^\]]*)\]\]\*$", note.read_text(encoding="utf-8"), re.M)
    assert found, f"no Source line in {note}"
    return found.group(1), found.group(2)


def assert_linked(vault: Path, note: Path) -> str:
    """The note's source_ref and Source link name the same file, and it is there."""
    ref = front(note)["source_ref"]
    assert source_line(note)[0] == ref
    assert (vault / ref).is_file(), f"{note.name} points at a missing {ref}"
    return str(ref)


def state(vault: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(vault / ".summarizer" / "state.db") as db:
        return list(db.execute(sql).fetchall())


# ---------------------------------------------------------------------------- one transcript, one note


def test_summarise_then_inbox_archives_and_relinks_the_same_note(tmp_path: Path, model_env: FakeOpenAI) -> None:
    files = {"2026-03-02 - kiwi.txt": meeting("kiwi")}
    vault = make_vault(tmp_path / "vault", "", {f"Inbox/{n}": t for n, t in files.items()})
    answer_by_topic(model_env)
    made = cli("summarise", vault / "Inbox" / "2026-03-02 - kiwi.txt", "--vault", vault)
    assert made.exit_code == 0, made.stderr
    note = Path(made.stdout.strip())
    note.write_text(note.read_text(encoding="utf-8") + "\nMy own line.\n", encoding="utf-8")

    result = cli("inbox", "--vault", vault, "--json")

    assert result.exit_code == 0, result.stdout + result.stderr
    (item,) = json.loads(result.stdout)["items"]
    assert item["adopted"] is True and item["note"] == "Meetings/2026-03-02 - Kiwi review.md"
    assert "already summarised in Meetings/2026-03-02 - Kiwi review.md" in item["detail"]
    assert notes(vault) == [note], "no second note"
    assert inbox_names(vault) == []
    ref = assert_linked(vault, note)
    assert ref.startswith(f"{ARCHIVE}/") and ref.endswith("/2026-03-02 - kiwi.txt")
    assert "My own line." in note.read_text(encoding="utf-8")
    assert len(model_env.chat_requests()) == 1, "the inbox made no call"
    check_vault(vault, files)
    # The store follows: the note's generated text now links to the archive too.
    ((recorded_ref, rendered),) = state(vault, "SELECT source_ref, rendered FROM notes")
    assert recorded_ref == ref and f"source_ref: {ref}\n" in rendered

    # Then summarise on the archived transcript, and regenerate: still the one note, still linked.
    again = cli("summarise", vault / ref, "--vault", vault)
    assert again.exit_code == 0 and f"already summarised: {note}" in again.stderr
    regenerated = cli("regenerate", note, "--vault", vault)
    assert regenerated.exit_code == 0, regenerated.stderr
    assert notes(vault) == [note] and assert_linked(vault, note) == ref
    assert "My own line." in note.read_text(encoding="utf-8")


def test_inbox_dry_run_says_the_note_exists_and_changes_nothing(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = make_vault(tmp_path / "vault", "", {"Inbox/2026-03-02 - fig.txt": meeting("fig")})
    answer_by_topic(model_env)
    assert cli("summarise", vault / "Inbox" / "2026-03-02 - fig.txt", "--vault", vault).exit_code == 0
    before = snapshot(vault)
    result = cli("inbox", "--vault", vault, "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    (item,) = json.loads(result.stdout)["items"]
    assert "already summarised in Meetings/2026-03-02 - Fig review.md: would archive it" in item["detail"]
    assert snapshot(vault) == before and len(model_env.chat_requests()) == 1


def test_a_note_pointing_at_another_copy_is_left_alone_and_the_copy_archived(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    """The same words dropped in the inbox again (other bytes: CRLF) after the first was archived."""
    vault = make_vault(tmp_path / "vault", "", {"Inbox/2026-03-02 - lime.txt": meeting("lime")})
    answer_by_topic(model_env)
    assert cli("inbox", "--vault", vault).exit_code == 0
    (note,) = notes(vault)
    ref = assert_linked(vault, note)
    (vault / "Inbox" / "lime again.txt").write_bytes(meeting("lime").replace("\n", "\r\n").encode())

    result = cli("inbox", "--vault", vault, "--json")

    assert result.exit_code == 0, result.stderr
    (item,) = json.loads(result.stdout)["items"]
    assert item["duplicate"] is True and item["note"] == "Meetings/2026-03-02 - Lime review.md"
    assert notes(vault) == [note] and assert_linked(vault, note) == ref
    assert len(archived(vault)) == 2 and inbox_names(vault) == []
    assert len(model_env.chat_requests()) == 1


@pytest.mark.parametrize("step", ["after-plan:1", "after-note-write:1", "after-note-recorded:1", "after-move:1"])
def test_an_inbox_killed_while_adopting_a_note_is_finished_by_the_next_run(
    tmp_path: Path, model_env: FakeOpenAI, step: str
) -> None:
    files = {"2026-03-02 - plum.txt": meeting("plum")}
    vault = make_vault(tmp_path / "vault", "", {f"Inbox/{n}": t for n, t in files.items()})
    answer_by_topic(model_env)
    made = cli("summarise", vault / "Inbox" / "2026-03-02 - plum.txt", "--vault", vault)
    note = Path(made.stdout.strip())

    crashed = spawn_inbox(vault, crash_at=step)
    crashed.communicate(timeout=120)
    assert crashed.returncode == 137

    result = cli("inbox", "--vault", vault)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert notes(vault) == [note] and inbox_names(vault) == []
    assert_linked(vault, note)
    check_vault(vault, files)
    assert state(vault, "SELECT status FROM inbox_transcripts") == [("done",)]
    assert len(model_env.chat_requests()) == 1


def test_summarise_waits_for_a_running_inbox_then_finds_its_note(tmp_path: Path, model_env: FakeOpenAI) -> None:
    """`summarise` during an `inbox` run: the vault lock keeps them apart, and one note results."""
    from summarizer.vault import Vault
    from summarizer.vaultlock import vault_lock

    vault = make_vault(tmp_path / "vault", "", {"Inbox/2026-03-02 - kiwi.txt": meeting("kiwi")})
    transcript = vault / "Inbox" / "2026-03-02 - kiwi.txt"
    answer_by_topic(model_env)
    with vault_lock(Vault.open(vault), wait=False):  # an inbox run in progress
        held = cli("summarise", transcript, "--vault", vault)
    assert held.exit_code == 2 and "holds the vault lock" in held.stderr
    assert notes(vault) == []

    assert cli("inbox", "--vault", vault).exit_code == 0
    (note,) = notes(vault)
    (archived_copy,) = archived(vault)
    after = cli("summarise", archived_copy, "--vault", vault)
    assert after.exit_code == 0 and f"already summarised: {note}" in after.stderr
    assert notes(vault) == [note] and len(model_env.chat_requests()) == 1


# ---------------------------------------------------------------------------- a renamed note keeps its edits

TRANSCRIPT = """\
Alice Moreau: Thanks for joining. We need the Q3 budget locked this week.
Bob Chen: I'll send the revised forecast by Friday.
Alice Moreau: I will book the offsite venue.
Alice Moreau: Great. Then we agreed to cut the travel budget by ten percent.
Bob Chen: Understood. Headcount stays flat and the offsite is in May.
"""


def extraction(summary: str, key_info: list[str], forecast: str) -> dict[str, Any]:
    return {
        "title": "Q3 budget review",
        "meeting_date": None,
        "note_type": "internal",
        "account": None,
        "account_category": None,
        "participants": ["Alice Moreau", "Bob Chen"],
        "summary": summary,
        "action_items": [
            {
                "text": forecast,
                "owner": "Bob Chen",
                "due": "2026-03-06",
                "priority": "high",
                "evidence": "I'll send the revised forecast by Friday.",
            },
            {
                "text": "Book the offsite venue",
                "owner": "Alice Moreau",
                "due": None,
                "priority": "none",
                "evidence": "I will book the offsite venue.",
            },
        ],
        "decisions": [
            {"text": "Cut the travel budget by 10%.", "evidence": "we agreed to cut the travel budget by ten percent"}
        ],
        "key_information": key_info,
        "related": [],
    }


FIRST = extraction(
    "Alice and Bob reviewed the Q3 budget and agreed to cut travel spending.",
    ["Headcount stays flat.", "The offsite is in May."],
    "Send the revised forecast",
)
SECOND = extraction(
    "The Q3 budget was reviewed; travel spending will be cut by a tenth.",
    ["Headcount stays flat.", "The offsite is in May.", "The budget must be locked this week."],
    "Send the updated forecast",
)
NAME = "2026-03-02 - Budget review.txt"


def _made(tmp_path: Path, model_env: FakeOpenAI) -> tuple[Path, Path]:
    vault = make_vault(tmp_path / "vault", 'owner = "Alice Moreau"\n', {f"Inbox/{NAME}": TRANSCRIPT})
    model_env.enqueue(fo.reply(FIRST))
    made = cli("summarise", vault / "Inbox" / NAME, "--vault", vault)
    assert made.exit_code == 0, made.stderr
    return vault, Path(made.stdout.strip())


def test_a_renamed_and_moved_note_keeps_every_edit_through_regenerate_all(
    tmp_path: Path, model_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault, note = _made(tmp_path, model_env)
    text = note.read_text(encoding="utf-8")
    edits = [
        ("source: transcript\n", "source: transcript\nstatus: reviewed\n"),  # an added key
        ("- generated\n", "- generated\n- important\n"),  # an added tag
        ("Send the revised forecast @Bob Chen", "Send the revised forecast to finance @Bob Chen"),  # reworded
        ("- [?] Book the offsite venue @Myself", "- [x] Book the offsite venue @Myself"),  # ticked
        ("- The offsite is in May.\n", ""),  # a deleted line
        (
            "Alice and Bob reviewed the Q3 budget and agreed to cut travel spending.",
            "We cut travel by 10% and locked Q3.",
        ),  # an edited summary
    ]
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    text += "\n## Follow-up\n\nCall Bob on Thursday.\n"  # an added section
    moved = vault / "Projects" / "Budget" / "Q3 budget (my name).md"
    moved.parent.mkdir(parents=True)
    moved.write_text(text, encoding="utf-8")
    note.unlink()  # renamed and moved in Obsidian
    monkeypatch.setenv("SUMMARIZER_MODEL", "another-model")
    model_env.enqueue(fo.reply(SECOND))

    result = cli("regenerate", "--all", "--vault", vault, "--json")

    assert result.exit_code == 0, result.stdout + result.stderr
    (item,) = json.loads(result.stdout)["items"]
    assert item["name"] == "Projects/Budget/Q3 budget (my name).md"
    assert "found as the renamed Meetings/2026-03-02 - Q3 budget review.md" in item["detail"]
    assert model_env.chat_requests()[-1]["model"] == "another-model"
    after = moved.read_text(encoding="utf-8")
    assert "status: reviewed\n" in after and "- important\n" in after
    assert "Send the revised forecast to finance @Bob Chen" in after
    assert "- [x] Book the offsite venue @Myself" in after
    assert "The offsite is in May." not in after, "a deleted line stays deleted"
    assert "We cut travel by 10% and locked Q3." in after and "a tenth" not in after
    assert after.endswith("## Follow-up\n\nCall Bob on Thursday.\n")
    assert "- The budget must be locked this week." in after, "new generated text arrives"
    assert not note.exists()
    # The record moved with the note, and so did its history.
    recorded = state(vault, "SELECT note_path, model FROM notes")
    assert recorded == [("Projects/Budget/Q3 budget (my name).md", "another-model")]
    history = vault / ".summarizer" / "history" / "Projects" / "Budget" / "Q3 budget (my name).md"
    assert [p.read_text(encoding="utf-8") for p in history.glob("*.md")] == [text]


def test_a_renamed_note_is_regenerated_by_name_too_and_its_copy_stays_apart(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    vault, note = _made(tmp_path, model_env)
    renamed = note.with_name("Budget.md")
    note.rename(renamed)
    text = renamed.read_text(encoding="utf-8").replace("- generated\n", "- generated\n- mine\n")
    renamed.write_text(text, encoding="utf-8")
    result = cli("regenerate", renamed, "--vault", vault, "--render-only")
    assert result.exit_code == 0, result.stderr
    assert "- mine\n" in renamed.read_text(encoding="utf-8")
    assert state(vault, "SELECT note_path FROM notes") == [("Meetings/Budget.md",)]

    # A copy of a note that is still where it was does not take its record.
    copy = vault / "Meetings" / "Budget copy.md"
    copy.write_text(text.replace("- mine\n", ""), encoding="utf-8")
    copied = cli("regenerate", copy, "--vault", vault, "--render-only", "--dry-run", "--json")
    assert copied.exit_code == 0, copied.stderr
    (item,) = json.loads(copied.stdout)["items"]
    assert "renamed" not in item["detail"]


def test_a_hand_written_note_naming_the_same_transcript_does_not_take_a_gone_notes_record(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    vault, note = _made(tmp_path, model_env)
    note.unlink()
    mine = vault / "Journal" / "thoughts.md"
    mine.parent.mkdir()
    mine.write_text(f"---\nsource_ref: Inbox/{NAME}\n---\n\n# My thoughts\n\nNothing like a note.\n", encoding="utf-8")
    before = mine.read_bytes()
    result = cli("regenerate", mine, "--vault", vault, "--render-only", "--json")
    assert result.exit_code == 0, result.stderr
    assert "not a generated note" in json.loads(result.stdout)["items"][0]["detail"]
    assert mine.read_bytes() == before


# ---------------------------------------------------------------------------- --render-only, transcript gone


def test_render_only_works_from_the_stored_extraction_without_the_transcript(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    vault, note = _made(tmp_path, model_env)
    (vault / "Inbox" / NAME).unlink()
    before = note.read_text(encoding="utf-8")
    # A changed note template proves the note is re-rendered, not merely left alone.
    template = (Path(__file__).resolve().parent.parent / "summarizer" / "templates" / "note.md.j2").read_text(
        encoding="utf-8"
    )
    override = vault / ".summarizer" / "templates" / "note.md.j2"
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text(template.replace("## Summary", "## Overview"), encoding="utf-8")

    result = cli("regenerate", note, "--vault", vault, "--render-only", "--json")

    assert result.exit_code == 0, result.stdout + result.stderr
    (item,) = json.loads(result.stdout)["items"]
    assert item["origin"] == "stored extraction; transcript not found" and item["written"] is True
    after = note.read_text(encoding="utf-8")
    assert after == before.replace("## Summary", "## Overview")
    assert f"source_ref: Inbox/{NAME}\n" in after, "the link is left as it was"
    assert len(model_env.chat_requests()) == 1


def test_render_only_keeps_each_items_evidence_verdict_without_the_transcript(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    vault = make_vault(tmp_path / "vault", 'owner = "Alice Moreau"\n', {f"Inbox/{NAME}": TRANSCRIPT})
    unverified = json.loads(json.dumps(FIRST))
    unverified["decisions"][0]["evidence"] = "we agreed to cancel every offsite forever"
    model_env.enqueue(fo.reply(unverified))
    note = Path(cli("summarise", vault / "Inbox" / NAME, "--vault", vault).stdout.strip())
    before = note.read_text(encoding="utf-8")
    assert "- Cut the travel budget by 10%. #unverified" in before
    (vault / "Inbox" / NAME).unlink()

    result = cli("regenerate", note, "--vault", vault, "--render-only", "--json")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["items"][0]["changed"] is False
    assert note.read_text(encoding="utf-8") == before


def test_render_only_works_from_the_note_itself_without_the_transcript_or_a_record(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    seed = root / "tests" / "data" / "seed"
    note_rel = "People/Jai Menon/2025-10-06 - Jason offer decision discussion.md"
    vault = make_vault(tmp_path / "vault", 'owner = "Jason Vallery"\nowner_aliases = ["Jason"]\n')
    note = vault / note_rel
    note.parent.mkdir(parents=True)
    note.write_text((seed / "original-note.md").read_text(encoding="utf-8"), encoding="utf-8")
    result = cli("regenerate", note, "--vault", vault, "--render-only")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert note.read_bytes() == (seed / "consistent-note.md").read_bytes()


# ---------------------------------------------------------------------------- finding the vault


def test_every_command_finds_the_vault_from_the_current_folder(
    tmp_path: Path, model_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = make_vault(tmp_path / "vault", "", {"Inbox/2026-03-02 - kiwi.txt": meeting("kiwi")})
    (vault / "Meetings").mkdir()
    answer_by_topic(model_env)
    monkeypatch.chdir(vault / "Meetings")

    assert cli("inbox").exit_code == 0
    (note,) = notes(vault)
    regenerated = cli("regenerate", "--all", "--render-only")
    assert regenerated.exit_code == 0, regenerated.stderr
    assert "no vault found" not in regenerated.stderr
    by_name = cli("regenerate", note.name, "--render-only", "--dry-run")
    assert by_name.exit_code == 0, by_name.stderr
    (archived_copy,) = archived(vault)
    again = cli("summarise", archived_copy)
    assert again.exit_code == 0 and "already summarised" in again.stderr
    shown = cli("config")
    assert f"vault: {vault}" in shown.stdout

    # SUMMARIZER_VAULT comes before the current folder, for every command alike.
    other = make_vault(tmp_path / "other")
    monkeypatch.setenv("SUMMARIZER_VAULT", str(other))
    assert f"vault: {other}" in cli("config").stdout
    nothing = cli("regenerate", "--all", "--render-only")
    assert nothing.exit_code == 0 and "no notes to regenerate" in nothing.stderr


def test_outside_any_vault_every_command_says_how_to_name_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for args in (("inbox",), ("regenerate", "--all")):
        result = cli(*args)
        assert result.exit_code == 2 and "no vault found: pass --vault PATH" in result.stderr, args
    assert "vault: (none found)" in cli("config").stdout


# ---------------------------------------------------------------------------- names a link cannot hold


@pytest.mark.parametrize(
    ("name", "linkable"),
    [
        ("2025-03-02 - a|b pipe.txt", "2025-03-02 - a b pipe.txt"),
        ("2025-03-02 - [[draft]] #3 ^x.txt", "2025-03-02 - ((draft)) 3 x.txt"),
        ("2025-03-02 - 10:30 sync.txt", "2025-03-02 - 10 30 sync.txt"),
    ],
)
def test_the_inbox_archives_an_unlinkable_name_as_a_linkable_one(
    tmp_path: Path, model_env: FakeOpenAI, name: str, linkable: str
) -> None:
    vault = make_vault(tmp_path / "vault", "", {f"Inbox/{name}": meeting("kiwi")})
    answer_by_topic(model_env)

    result = cli("inbox", "--vault", vault)

    assert result.exit_code == 0, result.stdout + result.stderr
    (note,) = notes(vault)
    (archived_copy,) = archived(vault)
    assert archived_copy.name == linkable
    ref = assert_linked(vault, note)
    assert ref.endswith(f"/{linkable}")
    assert source_line(note)[1] == Path(linkable).stem
    assert front(note)["source_name"] == name, "the original name is kept"
    keys = list(front(note))
    assert keys.index("source_name") == keys.index("source_ref") + 1

    # Regenerating keeps it (and the meeting date read from the original name).
    assert front(note)["date"] == "2025-03-02"
    model_env.default = fo.reply(json.loads(json.dumps(fo_extraction("Kiwi review"))))
    assert cli("regenerate", note, "--vault", vault).exit_code == 0
    assert front(note)["source_name"] == name and assert_linked(vault, note) == ref


def fo_extraction(title: str) -> dict[str, Any]:
    from tests.test_inbox import extraction as inbox_extraction

    return inbox_extraction(title)


def test_summarise_then_inbox_with_an_unlinkable_name_ends_linked(tmp_path: Path, model_env: FakeOpenAI) -> None:
    name = "2026-03-02 - a|b.txt"
    vault = make_vault(tmp_path / "vault", "", {f"Inbox/{name}": meeting("fig")})
    answer_by_topic(model_env)
    made = cli("summarise", vault / "Inbox" / name, "--vault", vault)
    assert made.exit_code == 0 and "warning: 2026-03-02 - a|b.txt: Obsidian cannot link" in made.stderr
    note = Path(made.stdout.strip())

    assert cli("inbox", "--vault", vault).exit_code == 0

    assert notes(vault) == [note]
    ref = assert_linked(vault, note)
    assert ref.endswith("/2026-03-02 - a b.txt") and front(note)["source_name"] == name
    ((rendered,),) = state(vault, "SELECT rendered FROM notes")
    assert f"source_ref: {ref}\nsource_name: {name}\n" in rendered, "the merge base matches the note"
