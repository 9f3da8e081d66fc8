"""The note format comes from the active template: a vault override that renames or reorders
sections works with `regenerate`, `regenerate --render-only` and the merge of the person's edits."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from importlib.resources import files
from pathlib import Path

import pytest

from summarizer.noteformat import NoteFormat, packaged
from tests.helpers import cli

ROOT = Path(__file__).resolve().parent.parent
TRANSCRIPT = "Inbox/2026-03-02 - Website relaunch planning with Northwind.md"
OWN_LINE = "My own line about the relaunch."


def renamed_and_reordered() -> str:
    """The packaged template with `## Summary` -> `## Overview` and Decisions before Action Items."""
    text = files("summarizer.templates").joinpath("note.md.j2").read_text(encoding="utf-8")
    text = text.replace("## Summary", "## Overview")
    actions, decisions, key = (text.index(h) for h in ("## Action Items", "## Decisions", "## Key Information"))
    return text[:actions] + text[decisions:key] + text[actions:decisions] + text[key:]


def headings(note: Path) -> list[str]:
    return [line for line in note.read_text(encoding="utf-8").split("\n") if line.startswith("## ")]


def set_template(vault: Path, text: str) -> None:
    folder = vault / ".summarizer" / "templates"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "note.md.j2").write_text(text, encoding="utf-8")


def summarised_vault(tmp_path: Path, template_first: bool) -> tuple[Path, Path]:
    vault = tmp_path / "vault"
    shutil.copytree(ROOT / "examples" / "vault", vault, ignore=shutil.ignore_patterns(".summarizer"))
    if template_first:
        set_template(vault, renamed_and_reordered())
    made = cli("summarise", TRANSCRIPT, "--vault", vault, "--engine", "offline")
    assert made.exit_code == 0, made.stderr
    note = Path(made.stdout.strip())
    if not template_first:
        set_template(vault, renamed_and_reordered())
    # The person adds a line to the summary section, whatever it is called.
    text = note.read_text(encoding="utf-8")
    text = re.sub(r"(## (?:Overview|Summary)\n\n)", rf"\g<1>{OWN_LINE}\n", text, count=1)
    note.write_text(text, encoding="utf-8")
    return vault, note


EXPECTED = ["## Overview", "## Decisions", "## Action Items", "## Key Information", "## Related"]


def test_the_format_is_read_from_the_template() -> None:
    active = NoteFormat.from_template(renamed_and_reordered())
    assert active.headings["summary"] == "Overview"
    assert active.order == ["summary", "decisions", "action_items", "key_information", "related"]
    assert active.names_for("summary") == ("Overview", "Summary")
    assert packaged().source_line("Inbox/a b.md") == "*Source: [[Inbox/a b.md|a b]]*"


@pytest.mark.parametrize("template_first", [True, False], ids=["template-from-the-start", "template-changed-later"])
@pytest.mark.parametrize("args", [["--render-only"], []], ids=["render-only", "regenerate"])
def test_a_renamed_and_reordered_template_regenerates_under_its_own_headings(
    tmp_path: Path, template_first: bool, args: list[str]
) -> None:
    vault, note = summarised_vault(tmp_path, template_first)

    result = cli("regenerate", "--all", "--vault", vault, "--engine", "offline", "--json", *args)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert headings(note) == EXPECTED  # never both Summary and Overview
    text = note.read_text(encoding="utf-8")
    assert OWN_LINE in text
    assert "Dana Whitfield, Priya Raman and Marcus Oyelaran met" in text
    item = json.loads(result.stdout)["items"][0]
    assert item["status"] in ("done", "skipped")


@pytest.mark.parametrize("args", [["--render-only"], []], ids=["render-only", "regenerate"])
def test_a_note_without_a_record_is_read_under_the_active_headings(tmp_path: Path, args: list[str]) -> None:
    """A note we have no record of is parsed back through the template's own section names."""
    vault, note = summarised_vault(tmp_path, template_first=True)
    with sqlite3.connect(vault / ".summarizer" / "state.db") as db:
        db.execute("DELETE FROM notes")
    before = note.read_text(encoding="utf-8")

    result = cli("regenerate", "--all", "--vault", vault, "--engine", "offline", "--json", *args)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert headings(note) == EXPECTED
    assert note.read_text(encoding="utf-8") == before  # nothing lost from the Overview: nothing to change
    assert json.loads(result.stdout)["items"][0]["detail"].startswith("unchanged")


def test_a_linkable_archive_name_holds_no_obsidian_comment_marker() -> None:
    from summarizer.noteformat import is_linkable, linkable_filename

    name = linkable_filename("2026-03-02 - a%%%%b [draft].txt")
    assert "%%" not in name and is_linkable(name)
