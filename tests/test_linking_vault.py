"""Related and the account come from the vault, for both engines (through the real CLI).

The bundled example (examples/vault) is the meeting of issue 11: a customer meeting whose
transcript names Northwind, with Priya Raman (company: Northwind Studio) and Marcus Oyelaran.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli, make_vault

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "vault"
TRANSCRIPT = "Inbox/2026-03-02 - Website relaunch planning with Northwind.md"


def example_vault(tmp_path: Path, extra_config: str = "") -> Path:
    vault = tmp_path / "vault"
    shutil.copytree(EXAMPLE, vault, ignore=shutil.ignore_patterns(".summarizer"))
    with (vault / ".summarizer.toml").open("a", encoding="utf-8") as fh:
        fh.write(extra_config)
    return vault


def related(note: str) -> list[str]:
    return note.split("## Related\n\n")[1].splitlines()


def answer(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "title": "Website relaunch planning",
        "meeting_date": "2026-03-02",
        "note_type": "internal",
        "account": None,
        "account_category": None,
        "participants": ["Dana Whitfield", "Priya Raman", "Marcus Oyelaran"],
        "summary": "They planned the relaunch.",
        "action_items": [
            {
                "text": "Share the component library",
                "owner": "Marcus",
                "due": None,
                "priority": "none",
                "evidence": "I'll share the component library with Priya tomorrow.",
            }
        ],
        "decisions": [],
        "key_information": [],
        "related": [],
    }
    base.update(over)
    return base


def summarise(vault: Path, *args: str) -> tuple[str, str]:
    result = cli("summarise", vault / TRANSCRIPT, "--vault", vault, *args)
    assert result.exit_code == 0, result.stderr
    return Path(result.stdout.strip()).read_text(encoding="utf-8"), result.stderr


def test_offline_engine_takes_the_account_and_backlinks_from_the_vault(tmp_path: Path) -> None:
    note, stderr = summarise(example_vault(tmp_path), "--engine", "offline", "--explain")
    assert "type: customer" in note and "account: Northwind Studio" in note
    assert "**Account**: [[Northwind Studio]]" in note and "- type/customer" in note
    # Every attendee with a note, once each, in attendee order; the account stays out.
    assert related(note) == ["- [[Dana Whitfield]]", "- [[Priya Raman]]", "- [[Marcus Oyelaran]]"]
    assert "from the vault: named in the title, and the organisation of Priya Raman" in stderr


def test_model_engine_lists_attendees_and_owners_even_when_the_model_lists_nobody(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    model_env.enqueue(
        fo.reply(answer(title="Relaunch planning with Northwind", participants=["Dana Whitfield", "Priya Raman"]))
    )
    note, _ = summarise(example_vault(tmp_path))
    # Marcus did not make the participant list but was given work: he is listed too.
    assert related(note) == ["- [[Dana Whitfield]]", "- [[Priya Raman]]", "- [[Marcus Oyelaran]]"]
    assert "**Account**: [[Northwind Studio]]" in note and "type: customer" in note


def test_a_company_mentioned_in_an_internal_meeting_does_not_become_its_account(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    model_env.enqueue(
        fo.reply(
            answer(
                title="CMS options review",
                participants=["Dana Whitfield", "Marcus Oyelaran"],
                related=[{"name": "Northwind", "kind": "organisation"}],
            )
        )
    )
    note, _ = summarise(example_vault(tmp_path))
    assert "type: internal" in note and "**Account**: None" in note
    assert related(note) == ["- [[Dana Whitfield]]", "- [[Marcus Oyelaran]]", "- [[Northwind Studio]]"]


def test_the_model_account_is_kept_and_a_person_account_brings_its_organisation(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    model_env.enqueue(
        fo.reply(
            answer(
                note_type="people",
                account="Priya",
                account_category="vendor",
                related=[{"name": "Priya Raman", "kind": "person"}, {"name": "WordPress", "kind": "concept"}],
            )
        )
    )
    note, _ = summarise(example_vault(tmp_path))
    assert "type: people" in note and "**Account**: [[Priya Raman]]" in note and "- type/vendor" in note
    # Priya is the account (left out); her organisation is listed, last with the organisations.
    assert related(note) == ["- [[Dana Whitfield]]", "- [[Marcus Oyelaran]]", "- [[Northwind Studio]]"]


def test_an_outside_organisation_of_the_attendees_is_the_account_when_the_owner_has_another(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    files = {
        "People/Dana Whitfield.md": "---\ntype: people\ncompany: '[[Lumen Books]]'\n---\n",
        "People/Marcus Oyelaran.md": "---\ntype: people\ncompany: Lumen Books\n---\n",
        "People/Priya Raman.md": "---\ntype: people\ncompany: Northwind Studio\n---\n",
        "Companies/Lumen Books.md": "---\ntype: companies\n---\n",
        "Companies/Northwind Studio.md": "---\ntype: partner\n---\n",
        TRANSCRIPT: "Dana Whitfield: Hello.\nPriya Raman: Hi.\n",
    }
    vault = make_vault(tmp_path / "v", 'owner = "Dana Whitfield"\n', files)
    model_env.enqueue(fo.reply(answer(title="Relaunch check-in")))
    note, _ = summarise(vault)
    assert "account: Northwind Studio" in note and "- type/partner" in note and "type: customer" in note
    assert "[[Lumen Books]]" not in note.split("## Related")[0]


def test_stubs_only_for_speakers_with_a_type(tmp_path: Path) -> None:
    vault = example_vault(tmp_path, 'stub_folder = "Stubs"\n')
    (vault / TRANSCRIPT).write_text(
        "Dana Whitfield: Felix, can you review the PRs for the API today?\n"
        "Felix Adler: Sure, I'll review the PRs for the API by Friday.\n"
        "Marcus Oyelaran: The APIs and PR queue are long; EL said so too.\n",
        encoding="utf-8",
    )
    note, _ = summarise(vault, "--engine", "offline")
    assert sorted(p.name for p in (vault / "Stubs").iterdir()) == ["Felix Adler.md"]
    assert (vault / "Stubs" / "Felix Adler.md").read_text(encoding="utf-8").startswith("---\ntype: people\n")
    assert "- [[Felix Adler]]" in related(note)


def test_a_one_to_one_with_a_person_is_a_people_note(tmp_path: Path, model_env: FakeOpenAI) -> None:
    files = {
        "People/Jai Menon.md": "---\ntype: people\ncompany: Microsoft\n---\n",
        "People/Jason Vallery.md": "---\ntype: people\n---\n",
        "People/Jeff Denworth.md": "---\ntype: people\n---\n",
        "Companies/Microsoft.md": "---\ntype: customer\n---\n",
        TRANSCRIPT: "Jai Menon: Hello.\nJason Vallery: Hi.\n",
    }
    vault = make_vault(tmp_path / "v", 'owner = "Jason Vallery"\n', files)
    one_to_one = answer(title="1:1 with Jai", participants=["Jai Menon", "Jason Vallery"], action_items=[])
    model_env.enqueue(fo.reply(one_to_one))
    note, _ = summarise(vault, "--explain")
    assert "type: people" in note and "person: Jai Menon" in note and "**Account**: [[Jai Menon]]" in note
    assert "- type/customer" in note  # his organisation's type: the vault's word for him
    # The account stays out; the owner (as in the reference note) and the account's company are in.
    assert related(note) == ["- [[Jason Vallery]]", "- [[Microsoft]]"]

    # Someone the title names who did not take part does not make it a 1:1 with them.
    model_env.enqueue(fo.reply({**one_to_one, "title": "Planning with Jeff Denworth"}))
    note, _ = summarise(vault, "--force", "--model", "test-model-2")  # another model: not the cache
    assert "type: internal" in note and "**Account**: None" in note
