"""The vault index: what it finds, what it skips, and that the cache spares re-reading notes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from summarizer import vault_index
from summarizer.vault_index import (
    HEAD_BYTES,
    IndexedNote,
    VaultIndex,
    classify,
    default_cache_path,
    read_frontmatter,
)

OLD = time.time() - 86_400  # notes older than the racy window, as in a real vault


def write(vault: Path, rel: str, text: str, *, mtime: float | None = OLD) -> Path:
    """Write a note; by default backdated so the cache trusts it (see RACY_NS)."""
    path = vault / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    v = tmp_path / "vault"
    write(v, "People/Jai Menon.md", "---\ntype: person\n---\n# Jai\n")
    write(v, "People/Maneesh Sah.md", "---\naliases: [Maneesh]\n---\n")
    write(v, "People/Ronen Cohen.md", "no frontmatter at all\n")
    write(v, "Companies/VAST.md", "---\ntype: company\naliases: VAST Data\n---\n")
    write(v, "Meetings/2025-10-06 Offer.md", "---\ntype: people\nparticipants: [Jai Menon]\n---\n")
    write(v, "Home.md", "---\ntags: [x]\n---\n")
    write(v, "Inbox/2025-10-06 transcript.md", "---\naliases: [Should Not Appear]\n---\n")
    write(v, ".obsidian/workspace.md", "")
    write(v, ".trash/Old Person.md", "")
    write(v, ".summarizer/notes.md", "")
    write(v, "Archive/Old/Gone.md", "")
    write(v, "Archive/Kept.md", "")
    (v / "People" / "photo.png").write_bytes(b"\x89PNG")
    return v


def test_index_finds_notes_with_aliases_type_and_kind(vault: Path) -> None:
    index = VaultIndex.build(vault, cache_path=None)
    by_path = {n.path: n for n in index.notes}
    assert by_path["People/Maneesh Sah.md"].aliases == ("Maneesh",)
    assert by_path["Companies/VAST.md"].aliases == ("VAST Data",)  # a string alias is one alias
    assert by_path["Companies/VAST.md"].type == "company"
    assert by_path["People/Jai Menon.md"].kind == "person"
    assert by_path["People/Ronen Cohen.md"].kind == "person"  # from the folder
    assert by_path["Companies/VAST.md"].kind == "organisation"
    assert by_path["Meetings/2025-10-06 Offer.md"].kind == "meeting"  # `type: people` is a meeting here
    assert by_path["Home.md"].folder == ""
    assert index.names["Jai Menon"][0].folder == "People"
    assert [n.name for n in index.aliases["Maneesh"]] == ["Maneesh Sah"]
    assert "Ronen Cohen" in index and "photo" not in index


def test_hidden_and_excluded_folders_are_skipped(vault: Path) -> None:
    names = set(VaultIndex.build(vault, cache_path=None).names)
    assert not names & {"2025-10-06 transcript", "workspace", "Old Person", "notes"}
    assert {"Gone", "Kept"} <= names
    names = set(VaultIndex.build(vault, cache_path=None, exclude=("Archive/Old/", "inbox")).names)
    assert "Gone" not in names and "Kept" in names
    assert "2025-10-06 transcript" not in names  # matched case-insensitively
    names = set(VaultIndex.build(vault, cache_path=None, exclude=()).names)
    assert "2025-10-06 transcript" in names and "workspace" not in names  # hidden always skipped


def test_second_build_reads_nothing(vault: Path) -> None:
    cache = default_cache_path(vault)
    first = VaultIndex.build(vault, cache_path=cache)
    assert first.stats.read == first.stats.scanned == len(first.notes) > 0
    assert first.stats.cache_written and cache.is_file()
    second = VaultIndex.build(vault, cache_path=cache)
    assert second.stats.read == 0
    assert second.stats.cached == len(first.notes)
    assert not second.stats.cache_written  # nothing changed, nothing rewritten
    assert second.notes == first.notes


def test_only_changed_added_and_removed_notes_are_touched(vault: Path) -> None:
    cache = vault / ".summarizer" / "index-cache.json"
    VaultIndex.build(vault, cache_path=cache)
    write(vault, "People/Maneesh Sah.md", "---\naliases: [Maneesh, Manish S]\n---\n", mtime=OLD + 10)
    write(vault, "People/New Person.md", "---\naliases: [Newbie]\n---\n")
    (vault / "Home.md").unlink()
    index = VaultIndex.build(vault, cache_path=cache)
    assert index.stats.read == 2
    assert index.stats.removed == 1
    assert index.names["Maneesh Sah"][0].aliases == ("Maneesh", "Manish S")
    assert "Home" not in index and "New Person" in index
    assert VaultIndex.build(vault, cache_path=cache).stats.read == 0


def test_same_size_edit_is_seen_through_mtime(vault: Path) -> None:
    cache = vault / ".summarizer" / "index-cache.json"
    VaultIndex.build(vault, cache_path=cache)
    write(vault, "People/Maneesh Sah.md", "---\naliases: [Maneesx]\n---\n", mtime=OLD + 5)  # same size
    index = VaultIndex.build(vault, cache_path=cache)
    assert index.stats.read == 1
    assert index.names["Maneesh Sah"][0].aliases == ("Maneesx",)


def test_a_note_written_during_the_scan_window_is_reread_next_time(vault: Path) -> None:
    """Racy rule: a just-written note could change again within the same mtime tick."""
    cache = vault / ".summarizer" / "index-cache.json"
    write(vault, "People/Fresh.md", "---\naliases: [F]\n---\n", mtime=None)
    VaultIndex.build(vault, cache_path=cache)
    again = VaultIndex.build(vault, cache_path=cache)
    assert again.stats.read == 1
    assert again.stats.cached == again.stats.scanned - 1


def test_damaged_or_foreign_cache_is_ignored(vault: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.json"
    cache.write_text("{not json", encoding="utf-8")
    index = VaultIndex.build(vault, cache_path=cache)
    assert index.stats.read == index.stats.scanned
    assert json.loads(cache.read_text(encoding="utf-8"))["version"] == vault_index.CACHE_VERSION
    other = tmp_path / "other"
    write(other, "People/Jai Menon.md", "---\naliases: [Foreign]\n---\n")
    foreign = VaultIndex.build(other, cache_path=cache)  # same relative path, other vault
    assert foreign.stats.read == 1
    assert foreign.names["Jai Menon"][0].aliases == ("Foreign",)


def test_bad_cache_entries_are_reread(vault: Path) -> None:
    cache = vault / ".summarizer" / "index-cache.json"
    VaultIndex.build(vault, cache_path=cache)
    data = json.loads(cache.read_text(encoding="utf-8"))
    data["notes"]["People/Jai Menon.md"] = ["x", 1, [], None, "person"]
    cache.write_text(json.dumps(data), encoding="utf-8")
    assert VaultIndex.build(vault, cache_path=cache).stats.read == 1


def test_unwritable_cache_location_still_builds(vault: Path) -> None:
    blocker = vault / "blocker"
    blocker.write_text("a file where a folder should be", encoding="utf-8")
    index = VaultIndex.build(vault, cache_path=blocker / "cache.json")
    assert "Jai Menon" in index and not index.stats.cache_written


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("---\naliases: [A, B]\n---\nbody", {"aliases": ["A", "B"]}),
        ("\ufeff---\r\ntype: person\r\n---\r\nbody", {"type": "person"}),
        ("---\ntype: x\n...\nbody", {"type": "x"}),
        ("---\ntype: x\n---", {"type": "x"}),  # closing fence at end of file
        ("---\n---\nbody", None),
        ("---\ntype: [unclosed\n---\n", None),  # broken YAML: no frontmatter, not a crash
        ("---\n- a list\n---\n", None),
        ("---\ntype: x\nno closing fence\n", None),
        ("no frontmatter\n---\ntype: x\n---\n", None),
        ("----\ntype: x\n---\n", None),
    ],
)
def test_read_frontmatter(tmp_path: Path, text: str, expected: dict[str, object] | None) -> None:
    path = tmp_path / "n.md"
    path.write_text(text, encoding="utf-8")
    assert read_frontmatter(path) == expected


def test_frontmatter_longer_than_one_read_and_body_never_parsed(tmp_path: Path) -> None:
    aliases = [f"Alias number {i}" for i in range(HEAD_BYTES // 10)]
    fm = "---\naliases:\n" + "".join(f"- {a}\n" for a in aliases) + "---\n"
    path = tmp_path / "n.md"
    # The body is not YAML and would break a parser that read the whole file.
    path.write_text(fm + "key: [unclosed\n" * 10_000, encoding="utf-8")
    assert len(fm) > HEAD_BYTES
    data = read_frontmatter(path)
    assert data is not None and data["aliases"] == aliases


def test_weird_alias_values_are_cleaned(tmp_path: Path) -> None:
    write(tmp_path, "People/X.md", "---\naliases: [' Spaced   out ', 42, null, true, [n], Spaced out]\n---\n")
    write(tmp_path, "People/Y.md", "---\nalias: Legacy\n---\n")
    index = VaultIndex.build(tmp_path, cache_path=None)
    assert index.names["X"][0].aliases == ("Spaced out", "42")
    assert index.names["Y"][0].aliases == ("Legacy",)


def test_add_registers_a_stub_and_bumps_version(vault: Path) -> None:
    index = VaultIndex.build(vault, cache_path=None)
    before = (len(index), index.version)
    stub = IndexedNote.from_frontmatter("People/Jan Niemus.md", {"type": "person", "aliases": ["Jan"]})
    index.add(stub)
    assert (len(index), index.version) == (before[0] + 1, before[1] + 1)
    assert index.get("Jan Niemus") == stub and index.aliases["Jan"] == [stub]
    index.add(IndexedNote.from_frontmatter("People/Jan Niemus.md", {"aliases": ["J. N."]}))
    assert len(index) == before[0] + 1  # same path replaced, not duplicated
    assert "Jan" not in index.aliases and index.get("Jan Niemus") is not None
    assert index.get("Jan Niemus").aliases == ("J. N.",)  # type: ignore[union-attr]


def test_get_prefers_the_shortest_path(tmp_path: Path) -> None:
    write(tmp_path, "Deep/Er/Note.md", "")
    write(tmp_path, "Note.md", "")
    index = VaultIndex.build(tmp_path, cache_path=None)
    assert len(index.names["Note"]) == 2
    assert index.get("Note") is not None and index.get("Note").path == "Note.md"  # type: ignore[union-attr]


def test_classify_prefers_meeting_markers_then_type_then_folder() -> None:
    assert classify("People", "person", ["source_ref"]) == "meeting"
    assert classify("Companies", "person") == "person"
    assert classify("Clients/Companies", None) == "organisation"
    assert classify("Projects", None) == "project"
    assert classify("", None) == "other"


def test_a_persons_organisation_is_indexed_and_cached(tmp_path: Path) -> None:
    v = tmp_path / "vault"
    write(v, "People/Priya Raman.md", "---\ntype: people\ncompany: '[[Northwind Studio|Northwind]]'\n---\n")
    write(v, "People/Ann Lee.md", "---\norganisation: [Acme, Other]\n---\n")
    write(v, "People/Bo.md", "---\ncompany: ''\n---\n")
    write(v, "Orgs/Acme.md", "---\ntype: companies\n---\n")
    cache = default_cache_path(v)
    first = VaultIndex.build(v, cache_path=cache)
    assert [(n.name, n.org) for n in first.notes] == [
        ("Acme", None),
        ("Ann Lee", "Acme"),
        ("Bo", None),
        ("Priya Raman", "Northwind Studio"),
    ]
    assert first.get("Acme") is not None and first.get("Acme").kind == "organisation"  # type: ignore[union-attr]
    second = VaultIndex.build(v, cache_path=cache)
    assert second.stats.read == 0 and second.notes == first.notes
