"""Linking through the real CLI: misspelled names resolve to vault notes, nothing dangles."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli, make_vault

PEOPLE = {
    "People/Maneesh Sah.md": "---\ntype: people\naliases:\n- Maneesh\n---\n",
    "People/Ronen Cohen.md": "---\ntype: people\n---\n",
    "People/Jeff Denworth.md": "---\ntype: people\n---\n",
    "People/Jason Vallery.md": "---\ntype: people\n---\n",
    "People/Jason Bourne.md": "---\ntype: people\n---\n",
    "People/Jai Menon.md": "---\ntype: people\n---\n",
    "Companies/VAST.md": "---\ntype: customer\naliases:\n- VAST Data\n---\n",
}
TRANSCRIPT = (
    "Jai Menon: Did you talk to Manish?\n"
    "Jason Vallery: Yes, and I'll meet Renan from VAST Data on Friday.\n"
    "Jai Menon: Jeff will join too. Jason from the other team was there as well.\n"
)
NAME = "2025-10-06 - Offer chat.md"


def response(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "title": "Offer chat",
        "meeting_date": "2025-10-06",
        "note_type": "people",
        "account": "Jay Menon",
        "account_category": "customer",
        "participants": ["Jai Menon", "Jason Vallery"],
        "summary": "Jason updated Jai on the offer.",
        "action_items": [
            {
                "text": "Meet Renan",
                "owner": "Jason Vallery",
                "due": "2025-10-10",
                "priority": "high",
                "evidence": "I'll meet Renan from VAST Data on Friday.",
            },
            {
                "text": "Join the meeting",
                "owner": "Jeff",
                "due": None,
                "priority": "none",
                "evidence": "Jeff will join too.",
            },
        ],
        "decisions": [],
        "key_information": [],
        "related": [
            {"name": "Manish", "kind": "person"},
            {"name": "Renan", "kind": "person"},
            {"name": "VAST Data", "kind": "organisation"},
            {"name": "Jason", "kind": "person"},
            {"name": "Crusoe", "kind": "organisation"},
            {"name": "Jai Menon", "kind": "person"},
            {"name": "Maneesh Sah", "kind": "person"},
        ],
    }
    base.update(over)
    return base


def run(tmp_path: Path, server: FakeOpenAI, config: str = 'owner = "Jason Vallery"\n', *args: str) -> tuple[Any, Path]:
    vault = make_vault(tmp_path / "v", config, {**PEOPLE, f"Inbox/{NAME}": TRANSCRIPT})
    server.enqueue(fo.reply(response()))
    return cli("summarise", vault / "Inbox" / NAME, "--vault", vault, *args), vault


def test_misspelled_names_link_to_existing_notes_only(tmp_path: Path, model_env: FakeOpenAI) -> None:
    result, vault = run(tmp_path, model_env)
    assert result.exit_code == 0, result.stderr
    note = Path(result.stdout.strip()).read_text(encoding="utf-8")
    related = note.split("## Related\n\n")[1].splitlines()
    # Attendees, then action owners, then people discussed, then organisations; never the account.
    assert related == [
        "- [[Jason Vallery]]",
        "- [[Jeff Denworth]]",
        "- [[Maneesh Sah]]",
        "- [[Ronen Cohen]]",
        "- [[VAST]]",
    ]
    assert "**Account**: [[Jai Menon]]" in note and "person: Jai Menon" in note
    assert "- account/jai-menon" in note
    assert "@Myself 📅 2025-10-10" in note and "@Jeff Denworth" in note
    for target in re.findall(r"\[\[([^\]|]+)", note):
        if not target.startswith("Inbox/"):
            assert list(vault.rglob(f"{target}.md")), f"dangling link [[{target}]]"


def test_the_vault_knows_the_names_before_the_call(tmp_path: Path, model_env: FakeOpenAI) -> None:
    run(tmp_path, model_env)
    user = model_env.chat_requests()[0]["messages"][1]["content"]
    known = user.split("People and organisations known in the vault")[1]
    assert "Maneesh Sah" in known and "VAST" in known


def test_explain_reports_links_and_unresolved(tmp_path: Path, model_env: FakeOpenAI) -> None:
    result, _ = run(tmp_path, model_env, 'owner = "Jason Vallery"\n', "--explain")
    assert result.exit_code == 0
    assert "Manish" in result.stderr and "Maneesh Sah" in result.stderr
    assert "Crusoe" in result.stderr  # stayed unresolved, said so
    assert "Jason Bourne" in result.stderr  # ambiguous first name: candidates shown


def test_stub_notes_when_the_vault_asks_for_them(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = make_vault(
        tmp_path / "v",
        'owner = "Jason Vallery"\nstub_folder = "Stubs"\n',
        {**PEOPLE, f"Inbox/{NAME}": TRANSCRIPT + "Felix Adler: Count me in.\n"},
    )
    answer = response(participants=["Jai Menon", "Jason Vallery", "Felix Adler"])
    answer["related"] += [{"name": "PRs", "kind": "concept"}, {"name": "API", "kind": "concept"}]
    model_env.enqueue(fo.reply(answer))
    result = cli("summarise", vault / "Inbox" / NAME, "--vault", vault)
    assert result.exit_code == 0, result.stderr
    # The speaker with no note gets a typed stub; names only mentioned (Crusoe, PRs, API) get none.
    assert sorted(p.name for p in (vault / "Stubs").iterdir()) == ["Felix Adler.md"]
    assert (vault / "Stubs" / "Felix Adler.md").read_text(encoding="utf-8") == (
        "---\ntype: people\ntags:\n- stub\n---\n\n# Felix Adler\n"
    )
    note = Path(result.stdout.strip()).read_text(encoding="utf-8")
    assert "- [[Felix Adler]]" in note and "[[Crusoe]]" not in note
    assert "created stub note" in result.stderr
