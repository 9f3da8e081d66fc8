"""An edited summary survives `summarizer regenerate` whole: the person's text wins, and
`--dry-run` shows what the new run would have written instead (loopback model server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fakeopenai import FakeOpenAI, reply
from tests.helpers import cli, copy_tree, make_vault

ROOT = Path(__file__).resolve().parent.parent
CASE = ROOT / "golden" / "regenerate" / "edited-note"
TRANSCRIPT = "Inbox/2026-03-02 - Website relaunch planning with Northwind.md"
# Worded too differently from the first summary to be matched to it by similarity.
NEW_SUMMARY = "Mobile-first relaunch agreed with Northwind: fixed budget, June 1 launch, CMS still open."


def first_note(tmp_path: Path, fake: FakeOpenAI) -> tuple[Path, Path]:
    vault = make_vault(tmp_path / "vault", 'owner = "Dana Whitfield"\nowner_aliases = ["Dana"]\n')
    copy_tree(CASE / "vault", vault)
    (vault / TRANSCRIPT).parent.mkdir(parents=True, exist_ok=True)
    (vault / TRANSCRIPT).write_text((CASE / "transcript.md").read_text(encoding="utf-8"), encoding="utf-8")
    fake.enqueue(reply(json.loads((CASE / "first.json").read_text(encoding="utf-8"))))
    made = cli("summarise", vault / TRANSCRIPT, "--vault", vault)
    assert made.exit_code == 0, made.stderr
    return vault, Path(made.stdout.strip())


def summary_of(note: str) -> str:
    return note.split("## Summary\n\n", 1)[1].split("\n## ", 1)[0]


def second_answer(fake: FakeOpenAI) -> None:
    answer: dict[str, Any] = json.loads((CASE / "response.json").read_text(encoding="utf-8"))
    fake.enqueue(reply({**answer, "summary": NEW_SUMMARY}))


def test_an_edited_summary_wins_whole_and_dry_run_shows_the_new_one(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault, note = first_note(tmp_path, model_env)
    text = note.read_text(encoding="utf-8")
    old = "The CMS choice is still open pending Marcus's write-up of options."
    mine = "The CMS choice waits for Marcus; I lean towards a headless CMS."
    assert old in summary_of(text)
    note.write_text(text.replace(old, mine), encoding="utf-8")
    edited_summary = summary_of(note.read_text(encoding="utf-8"))

    second_answer(model_env)
    dry = cli("regenerate", note, "--vault", vault, "--model", "test-model-2", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "kept your edit in ## Summary; the new run wrote:\n    " + NEW_SUMMARY in dry.stdout
    assert summary_of(note.read_text(encoding="utf-8")) == edited_summary  # a dry run writes nothing

    done = cli("regenerate", note, "--vault", vault, "--model", "test-model-2")
    assert done.exit_code == 0, done.stderr
    after = note.read_text(encoding="utf-8")
    assert summary_of(after) == edited_summary  # theirs alone: not theirs and the new one run together
    assert NEW_SUMMARY not in after
    assert "title: Northwind website relaunch planning" in after  # the rest did follow the new run


def test_a_summary_rewritten_beyond_recognition_is_not_doubled_either(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault, note = first_note(tmp_path, model_env)
    text = note.read_text(encoding="utf-8")
    mine = "Short version: mobile-first, 45k budget, June 1 launch."
    note.write_text(text.replace(summary_of(text), mine), encoding="utf-8")

    second_answer(model_env)
    done = cli("regenerate", note, "--vault", vault, "--model", "test-model-2")
    assert done.exit_code == 0, done.stderr
    assert summary_of(note.read_text(encoding="utf-8")) == mine


def test_an_untouched_summary_follows_the_new_run(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault, note = first_note(tmp_path, model_env)
    text = note.read_text(encoding="utf-8")
    note.write_text(text.replace("## Decisions\n", "## Decisions\n- My own decision.\n"), encoding="utf-8")

    second_answer(model_env)
    dry = cli("regenerate", note, "--vault", vault, "--model", "test-model-2", "--dry-run")
    assert "kept your edit" not in dry.stdout
    done = cli("regenerate", note, "--vault", vault, "--model", "test-model-2")
    assert done.exit_code == 0, done.stderr
    after = note.read_text(encoding="utf-8")
    assert summary_of(after) == NEW_SUMMARY and "- My own decision." in after
