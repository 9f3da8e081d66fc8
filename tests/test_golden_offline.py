"""The note a newcomer sees first: README's first command on the bundled example, offline engine.

Byte for byte against golden/offline-example/expected.md; `pytest --update-golden` rewrites it.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import cli, copy_tree

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = ROOT / "golden" / "offline-example" / "expected.md"
TRANSCRIPT = "Inbox/2026-03-02 - Website relaunch planning with Northwind.md"


def _offline_note(tmp_path: Path) -> str:
    vault = tmp_path / "vault"
    copy_tree(ROOT / "examples" / "vault", vault)
    result = cli("summarise", vault / TRANSCRIPT, "--out", "-")
    assert result.exit_code == 0, result.stderr
    assert "no model configured" in result.stderr
    return result.stdout


def test_bundled_example_offline_note(tmp_path: Path, update_golden: bool) -> None:
    actual = _offline_note(tmp_path)
    if update_golden:
        if not EXPECTED.exists() or EXPECTED.read_text(encoding="utf-8") != actual:
            EXPECTED.write_text(actual, encoding="utf-8", newline="")
            print(f"updated {EXPECTED.relative_to(ROOT)}: review it with git diff")
        return
    assert actual == EXPECTED.read_text(encoding="utf-8")


def test_bundled_example_reads_as_a_person_would_write_it(tmp_path: Path) -> None:
    """The points the issue found on this note, checked on the note itself."""
    note = _offline_note(tmp_path)
    summary = note.split("## Summary", 1)[1].split("## Action Items", 1)[0]
    actions = note.split("## Action Items", 1)[1].split("## Decisions", 1)[0]
    key_info = note.split("## Key Information", 1)[1].split("---", 1)[0]
    assert "“" not in summary and " said:" not in summary  # no quote chains
    assert not re.search(r"\b(?:I|we|you|your)\b", summary + actions + key_info)
    assert "first" not in summary.split(".")[0]  # "June first" is not a topic
    assert "Send Priya Raman the brand assets @Myself 📅 2026-03-06" in actions  # "you" resolved
    assert "Share the component library with Priya @Marcus Oyelaran 📅 2026-03-03" in actions  # dated twin kept
    assert "design review" in actions and "2026-03-16" in actions  # "March sixteenth"
    for line in key_info.strip().splitlines():  # no repeat of another section
        text = line.removeprefix("- ").rstrip(".")
        assert text and text not in summary and text not in actions
