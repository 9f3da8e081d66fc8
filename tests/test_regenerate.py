"""`summarizer regenerate` through the real CLI and the loopback model server.

Golden regeneration cases live in golden/regenerate/<case>/ (one level below
golden/, so tests/test_golden.py does not pick them up). `case.toml` says:

- `transcript`/`input`: where the transcript sits in the vault, and its file here;
- `note`: the note's vault path;
- `first` (optional): the model answer that made the note via `summarise`; the
  generated text must equal `before.md`, and `edited` (optional) then replaces it
  with the person's version;
- `note_input` (instead of `first`): a note file placed as-is, with no store record;
- `move_to` (optional): where the transcript is moved before regenerating;
- `response` (optional): the model answer for the regeneration; `args`: CLI flags;
  `model_calls`: how many calls the regeneration makes;
- `expected.md`: the note afterwards. `pytest --update-golden` rewrites before.md and
  expected.md for review.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tomllib
from pathlib import Path
from typing import Any

import pytest

from summarizer.models import MeetingExtraction
from tests.fakeopenai import FakeOpenAI, reply
from tests.helpers import cli, copy_tree, make_vault, snapshot

ROOT = Path(__file__).resolve().parent.parent
CASES_DIR = ROOT / "golden" / "regenerate"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "case.toml").is_file())
SEED = ROOT / "tests" / "data" / "seed"
REFERENCE = ROOT / "golden" / "reference-note"
REF_TRANSCRIPT = (
    "Inbox/_archive/2026-01-04/2025-10-06 - Jason updated Jai that he has a complex, "
    "high-variance offer from VAST and an ex.md"
)
REF_NOTE = "People/Jai Menon/2025-10-06 - Jason offer decision discussion.md"


def _settings_toml(settings: dict[str, Any]) -> str:
    return "".join(f"{key} = {json.dumps(value, ensure_ascii=False)}\n" for key, value in settings.items())


def _check_or_update(path: Path, actual: str, update: bool) -> None:
    if update:
        if not path.exists() or path.read_text(encoding="utf-8") != actual:
            path.write_text(actual, encoding="utf-8", newline="")
        return
    assert actual == path.read_text(encoding="utf-8")


def _answer(fake: FakeOpenAI, case_dir: Path, name: str) -> None:
    response = json.loads((case_dir / name).read_text(encoding="utf-8"))
    MeetingExtraction.model_validate(response)
    fake.enqueue(reply(response))


@pytest.mark.parametrize("name", CASES)
def test_regenerate_case(name: str, tmp_path: Path, model_env: FakeOpenAI, update_golden: bool) -> None:
    case_dir = CASES_DIR / name
    case = tomllib.loads((case_dir / "case.toml").read_text(encoding="utf-8"))
    vault = make_vault(tmp_path / "vault", _settings_toml(case.get("settings", {})))
    copy_tree(case_dir / "vault", vault)
    transcript = vault / case["transcript"]
    transcript.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(case_dir / case["input"], transcript)
    note = vault / case["note"]

    if "first" in case:
        _answer(model_env, case_dir, case["first"])
        made = cli("summarise", transcript, "--vault", vault)
        assert made.exit_code == 0, made.stderr
        assert Path(made.stdout.strip()) == note
        _check_or_update(case_dir / "before.md", note.read_text(encoding="utf-8"), update_golden)
        if "edited" in case:
            shutil.copyfile(case_dir / case["edited"], note)
    else:
        note.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(case_dir / case["note_input"], note)
    if "move_to" in case:
        moved = vault / case["move_to"]
        moved.parent.mkdir(parents=True, exist_ok=True)
        transcript.rename(moved)
    calls_before = len(model_env.chat_requests())
    if "response" in case:
        _answer(model_env, case_dir, case["response"])

    result = cli("regenerate", note, "--vault", vault, *case.get("args", []))
    assert result.exit_code == 0, result.stderr + result.stdout
    assert len(model_env.chat_requests()) - calls_before == case.get("model_calls", 0)
    _check_or_update(case_dir / "expected.md", note.read_text(encoding="utf-8"), update_golden)
    history = list((vault / ".summarizer" / "history" / case["note"]).glob("*.md"))
    assert len(history) == 1, "the previous version is kept"


def test_mangled_reference_case_becomes_the_seed_note() -> None:
    """The repaired reference note is the vault's own consistent note, byte for byte."""
    assert (CASES_DIR / "mangled-reference" / "note.md").read_bytes() == (SEED / "original-note.md").read_bytes()
    assert (CASES_DIR / "mangled-reference" / "expected.md").read_bytes() == (SEED / "consistent-note.md").read_bytes()


def test_edited_case_keeps_every_edit() -> None:
    """Guards the golden file itself: each of the person's edits is in the expected note."""
    expected = (CASES_DIR / "edited-note" / "expected.md").read_text(encoding="utf-8")
    for kept in [
        "- important\nstatus: reviewed\n---",  # added tag and frontmatter key
        "- [x] Send Northwind Studio the brand assets @Myself 📅 2026-03-06 ⏫ #task #proposed ✅ 2026-03-05",
        "- [ ] Share the existing component library with Priya",  # accepted, new wording
        "- [?] Write up CMS options and their costs @Priya Raman",  # their owner on the new task
        "- [-] Set up redirects for pages whose URLs change @Marcus Oyelaran 🔽 #task #proposed ❌ 2026-03-04",
        "\n\nNote to self: ask Priya about an accessibility audit as well.\n## Action Items",
        "- Keep the current domain and URL structure (confirmed with the SEO agency).",
        "- Priya prefers Figma links over PDF exports.",
        "## Follow-up\n\nCall Marcus on Thursday about the CMS shortlist.\n",
    ]:
        assert kept in expected
    assert "Launch on June 1 is fixed because" not in expected  # untouched and no longer generated: gone


def _reference_vault(tmp_path: Path, note_text: str | None = None) -> tuple[Path, Path]:
    vault = make_vault(tmp_path / "vault", 'owner = "Jason Vallery"\nowner_aliases = ["Jason"]\n')
    transcript = vault / REF_TRANSCRIPT
    transcript.parent.mkdir(parents=True)
    shutil.copyfile(REFERENCE / "transcript.md", transcript)
    note = vault / REF_NOTE
    note.parent.mkdir(parents=True)
    note.write_text(note_text or (SEED / "original-note.md").read_text(encoding="utf-8"), encoding="utf-8")
    return vault, note


def test_dry_run_prints_a_diff_and_changes_no_byte(tmp_path: Path) -> None:
    vault, note = _reference_vault(tmp_path)
    before = snapshot(vault)
    result = cli("regenerate", note, "--vault", vault, "--render-only", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert f"--- a/{REF_NOTE}" in result.stdout
    assert "-- [?] Meet VAST CEO Renan" in result.stdout and "+- [?] Meet VAST CEO Renan" in result.stdout
    assert snapshot(vault) == before
    assert not (vault / ".summarizer" / "history").exists()


def test_missing_transcript_fails_with_one_line_and_leaves_the_note(tmp_path: Path) -> None:
    vault, note = _reference_vault(tmp_path)
    (vault / REF_TRANSCRIPT).unlink()
    before = note.read_bytes()
    result = cli("regenerate", note, "--vault", vault, "--engine", "offline")
    assert result.exit_code == 1
    assert f"{REF_NOTE}: transcript not found" in result.stdout + result.stderr
    assert note.read_bytes() == before


def test_transcript_renamed_is_found_by_content_hash(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault, note = _reference_vault(tmp_path)
    note.unlink()
    model_env.enqueue(reply(json.loads((REFERENCE / "response.json").read_text(encoding="utf-8"))))
    made = cli("summarise", vault / REF_TRANSCRIPT, "--vault", vault, "--out", note)
    assert made.exit_code == 0, made.stderr
    renamed = vault / "Inbox" / "_archive" / "2026-02-01" / "jason-offers.md"
    renamed.parent.mkdir(parents=True)
    (vault / REF_TRANSCRIPT).rename(renamed)
    result = cli("regenerate", note, "--vault", vault, "--render-only")
    assert result.exit_code == 0, result.stderr
    text = note.read_text(encoding="utf-8")
    assert "source_ref: Inbox/_archive/2026-02-01/jason-offers.md\n" in text
    assert "*Source: [[Inbox/_archive/2026-02-01/jason-offers.md|jason-offers]]*" in text
    assert len(model_env.chat_requests()) == 1


def _generated_vault(tmp_path: Path, model_env: FakeOpenAI) -> tuple[Path, list[Path]]:
    """Two notes made by summarise (dated 2025-10-06 and 2026-03-02) and one hand-written note."""
    vault = make_vault(tmp_path / "vault", 'owner = "Dana Whitfield"\n')
    notes = []
    for case, first in (("reference-note", "response.json"), ("other-owner", "response.json")):
        case_dir = ROOT / "golden" / case
        spec = tomllib.loads((case_dir / "case.toml").read_text(encoding="utf-8"))
        transcript = vault / spec["transcript"]
        transcript.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(case_dir / spec["input"], transcript)
        _answer(model_env, case_dir, first)
        made = cli("summarise", transcript, "--vault", vault)
        assert made.exit_code == 0, made.stderr
        notes.append(Path(made.stdout.strip()))
    (vault / "Hand.md").write_text("---\ntags:\n- mine\n---\n\n# Mine\n", encoding="utf-8")
    return vault, notes


def _items(stdout: str) -> list[str]:
    return sorted(item["name"] for item in json.loads(stdout)["items"])


def test_selection_all_since_and_stale(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault, (old, new) = _generated_vault(tmp_path, model_env)
    rel = [vault_rel(vault, p) for p in (old, new)]
    everything = cli("regenerate", "--all", "--vault", vault, "--render-only", "--dry-run", "--json")
    assert everything.exit_code == 0, everything.stderr
    assert _items(everything.stdout) == sorted(rel)  # the hand-written note is not 'generated'
    since = cli("regenerate", "--since", "2026-01-01", "--vault", vault, "--render-only", "--json")
    assert _items(since.stdout) == [rel[1]]
    fresh = cli("regenerate", "--stale", "--vault", vault, "--render-only", "--json")
    assert json.loads(fresh.stdout)["items"] == []  # both made with the current model, prompts, template
    stale = cli("regenerate", "--stale", "--vault", vault, "--render-only", "--json", "--model", "newer-model")
    assert _items(stale.stdout) == sorted(rel)
    db = sqlite3.connect(vault / ".summarizer" / "state.db")
    db.execute("DELETE FROM notes WHERE note_path = ?", (rel[0],))
    db.commit()
    db.close()
    unknown = cli("regenerate", "--stale", "--vault", vault, "--render-only", "--json")
    assert _items(unknown.stdout) == [rel[0]]  # no record: stale


def vault_rel(vault: Path, path: Path) -> str:
    return path.resolve().relative_to(vault.resolve()).as_posix()


def test_history_keeps_the_last_n_versions(tmp_path: Path) -> None:
    vault, note = _reference_vault(tmp_path)
    for n in range(4):
        # the mangled note plus a line of theirs: each run repairs it (a change) and keeps the line
        note.write_text((SEED / "original-note.md").read_text(encoding="utf-8") + f"\n\nedit {n}", encoding="utf-8")
        result = cli("regenerate", note, "--vault", vault, "--render-only", "--keep-history", "2")
        assert result.exit_code == 0, result.stderr
        assert note.read_text(encoding="utf-8").endswith(f"\n\nedit {n}")
    history = sorted((vault / ".summarizer" / "history" / REF_NOTE).glob("*.md"))
    assert len(history) == 2
    assert history[-1].read_text(encoding="utf-8").endswith("edit 3")
    assert "‚Äô" in history[-1].read_text(encoding="utf-8")  # the version before the repair, as it was


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "name the notes to regenerate"),
        (("--since", "yesterday"), "--since must be YYYY-MM-DD"),
        (("x.md", "--all"), "not both"),
        (("--all", "--keep-history", "0"), "--keep-history must be at least 1"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    vault = make_vault(tmp_path / "vault")
    result = cli("regenerate", *args, "--vault", vault)
    assert result.exit_code == 2
    assert message in result.stderr


def test_some_failed_exits_1_and_the_others_are_written(tmp_path: Path) -> None:
    vault, note = _reference_vault(tmp_path)
    broken = vault / "Meetings" / "broken.md"
    broken.parent.mkdir()
    broken.write_bytes(b"---\ntags: [generated]\nsource_ref: Inbox/gone.md\n---\n\n# Broken \xff\n")
    result = cli("regenerate", note, broken, "--vault", vault, "--render-only", "--json")
    assert result.exit_code == 1
    items = {item["name"]: item for item in json.loads(result.stdout)["items"]}
    assert items["Meetings/broken.md"]["status"] == "failed"
    assert "not UTF-8 text" in items["Meetings/broken.md"]["error"]
    assert items[REF_NOTE]["status"] == "done"
    assert note.read_bytes() == (SEED / "consistent-note.md").read_bytes()


def test_a_run_holding_the_vault_lock_stops_a_writing_regenerate(tmp_path: Path) -> None:
    from filelock import FileLock

    vault, note = _reference_vault(tmp_path)
    (vault / ".summarizer").mkdir(exist_ok=True)
    before = note.read_bytes()
    with FileLock(str(vault / ".summarizer" / "inbox.lock")):
        locked = cli("regenerate", note, "--vault", vault, "--render-only")
        dry = cli("regenerate", note, "--vault", vault, "--render-only", "--dry-run")
    assert locked.exit_code == 2 and "vault lock" in locked.stderr
    assert note.read_bytes() == before
    assert dry.exit_code == 0  # a dry run writes no note, so it does not wait for the lock


def test_markup_like_note_names_are_reported_as_typed(tmp_path: Path) -> None:
    """A note under `Meetings/team[/]…[x].md` runs and shows in the table as typed, not as rich markup."""
    vault, note = _reference_vault(tmp_path)
    odd = vault / "Meetings" / "team[" / "]notes [x].md"
    odd.parent.mkdir(parents=True)
    note.rename(odd)
    result = cli("regenerate", odd, "--vault", vault, "--render-only")
    assert result.exit_code == 0, result.stderr + result.stdout
    assert "Meetings/team[/]notes [x].md" in result.stdout.replace("\n", "")
    assert odd.read_bytes() == (SEED / "consistent-note.md").read_bytes()


def _crlf(text: str, bom: bool = False) -> bytes:
    return (("\ufeff" if bom else "") + text.replace("\n", "\r\n")).encode("utf-8")


@pytest.mark.parametrize("bom", [False, True])
def test_crlf_note_unchanged_is_skipped_and_not_rewritten(tmp_path: Path, bom: bool) -> None:
    """Only the line endings (and a BOM) differ from what we would write: nothing to do, no history."""
    vault, note = _reference_vault(tmp_path, (SEED / "consistent-note.md").read_text(encoding="utf-8"))
    data = _crlf(note.read_text(encoding="utf-8"), bom)
    data = b"\r".join(data.rsplit(b"\r\n", 1))  # a lone CR ends a line: still a line ending, not an edit
    note.write_bytes(data)
    result = cli("regenerate", note, "--vault", vault, "--render-only", "--json")
    assert result.exit_code == 0, result.stderr
    (item,) = json.loads(result.stdout)["items"]
    assert item["status"] == "skipped" and item["changed"] is False
    assert note.read_bytes() == data
    assert not (vault / ".summarizer" / "history").exists()
    dry = cli("regenerate", note, "--vault", vault, "--render-only", "--dry-run")
    assert dry.exit_code == 0 and "would update" not in dry.stdout and "--- a/" not in dry.stdout


@pytest.mark.parametrize("bom", [False, True])
def test_crlf_note_changed_is_written_with_crlf(tmp_path: Path, bom: bool) -> None:
    vault, note = _reference_vault(tmp_path)
    data = _crlf((SEED / "original-note.md").read_text(encoding="utf-8"), bom)
    note.write_bytes(b"\r".join(data.rsplit(b"\r\n", 1)))  # a lone CR too: written back as CRLF
    result = cli("regenerate", note, "--vault", vault, "--render-only")
    assert result.exit_code == 0, result.stderr
    assert note.read_bytes() == _crlf((SEED / "consistent-note.md").read_text(encoding="utf-8"), bom)
    (kept,) = (vault / ".summarizer" / "history" / REF_NOTE).glob("*.md")
    assert kept.read_bytes().startswith(b"\xef\xbb\xbf" if bom else b"---\r\n")


def test_a_note_we_did_not_make_is_skipped_and_left_untouched(tmp_path: Path, model_env: FakeOpenAI) -> None:
    """A hand-written note pointing at another note: neither a record nor the 'generated' tag, so not ours."""
    vault, (_, other) = _generated_vault(tmp_path, model_env)
    diary = vault / "Personal" / "diary2.md"
    diary.parent.mkdir()
    diary.write_text(f"---\ntitle: Diary\nsource_ref: {vault_rel(vault, other)}\n---\n\n# Diary\n\nMine.\n", "utf-8")
    before, calls = diary.read_bytes(), len(model_env.chat_requests())
    result = cli("regenerate", diary, vault / "Hand.md", "--vault", vault, "--json")
    assert result.exit_code == 0, result.stderr
    items = json.loads(result.stdout)["items"]
    assert [(i["name"], i["status"]) for i in items] == [("Personal/diary2.md", "skipped"), ("Hand.md", "skipped")]
    assert all("not a generated note" in i["detail"] for i in items)
    assert diary.read_bytes() == before
    assert len(model_env.chat_requests()) == calls
    assert not (vault / ".summarizer" / "history").exists()


@pytest.mark.parametrize("target", ["generated note", "note by frontmatter", "state dir", "not a transcript suffix"])
def test_only_transcript_files_are_taken_as_the_transcript(tmp_path: Path, model_env: FakeOpenAI, target: str) -> None:
    vault, (_, other) = _generated_vault(tmp_path, model_env)
    transcript_text = (ROOT / "golden" / "reference-note" / "transcript.md").read_text(encoding="utf-8")
    ref = {
        "generated note": vault_rel(vault, other),
        "note by frontmatter": "Meetings/copy.md",
        "state dir": ".summarizer/history/old.md",
        "not a transcript suffix": "Files/scan.pdf",
    }[target]
    if target != "generated note":
        path = vault / ref
        path.parent.mkdir(parents=True, exist_ok=True)
        seed = (SEED / "consistent-note.md").read_text(encoding="utf-8")
        path.write_text(seed if target == "note by frontmatter" else transcript_text, encoding="utf-8")
    note = vault / "Meetings" / "mine.md"
    note.parent.mkdir(exist_ok=True)
    note.write_text(f"---\ntitle: Mine\ntags: [generated]\nsource_ref: {ref}\n---\n\n# Mine\n", encoding="utf-8")
    before = note.read_bytes()
    calls = len(model_env.chat_requests())
    result = cli("regenerate", note, "--vault", vault, "--json")
    assert result.exit_code == 1, result.stdout
    (item,) = json.loads(result.stdout)["items"]
    assert item["status"] == "failed" and "transcript not found" in item["error"]
    assert note.read_bytes() == before
    assert len(model_env.chat_requests()) == calls


def test_no_model_configured_refuses_unless_render_only_or_offline_is_asked_for(tmp_path: Path) -> None:
    vault, note = _reference_vault(tmp_path)
    before = note.read_bytes()
    refused = cli("regenerate", note, "--vault", vault)
    assert refused.exit_code == 2
    assert refused.stderr.count("\n") == 1 and "no model configured" in refused.stderr
    assert "--render-only" in refused.stderr and "--engine offline" in refused.stderr
    assert note.read_bytes() == before
    offline = cli("regenerate", note, "--vault", vault, "--engine", "offline", "--dry-run", "--json")
    assert offline.exit_code == 0, offline.stderr
    assert json.loads(offline.stdout)["items"][0]["origin"] == "model"
