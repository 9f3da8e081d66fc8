"""`summarizer inbox`: the real CLI over a vault's inbox, against the loopback model server.

Every test drives the command as a user runs it and checks the vault afterwards: which
transcripts moved to the archive, which notes exist and what they point at, what the state
store recorded, what the model server saw.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from summarizer.models import Usage
from summarizer.runner import AdaptiveLimiter, ItemResult, LiveDisplay, PlainDisplay, Runner, make_display
from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli, make_vault, snapshot

ROOT = Path(__file__).resolve().parent.parent
ARCHIVE = "Inbox/_archive"
TOPIC = re.compile(r"today's topic is (\w+)", re.I)


# ---------------------------------------------------------------------------- helpers (shared)


def meeting(topic: str, extra: str = "") -> str:
    """A small transcript whose topic word lets the fake model answer with a matching title."""
    return (
        f"Alice Moreau: Thanks for joining. Today's topic is {topic}.\n"
        f"Bob Chen: I'll send the {topic} figures by Friday.\n"
        f"Alice Moreau: Good. We agreed to keep the {topic} budget as it is.{extra}\n"
    )


def extraction(title: str, meeting_date: str | None = None) -> dict[str, Any]:
    return {
        "title": title,
        "meeting_date": meeting_date,
        "note_type": "internal",
        "account": None,
        "account_category": None,
        "participants": ["Alice Moreau", "Bob Chen"],
        "summary": f"Alice and Bob discussed {title.lower()}.",
        "action_items": [
            {
                "text": "Send the figures",
                "owner": "Bob Chen",
                "due": None,
                "priority": "none",
                "evidence": "I'll send the",
            }
        ],
        "decisions": [],
        "key_information": [],
        "related": [],
    }


def topic_of(body: dict[str, Any]) -> str:
    found = TOPIC.findall(" ".join(str(m.get("content")) for m in body.get("messages", [])))
    return found[-1] if found else "merged"


def by_topic(body: dict[str, Any]) -> fo.Behaviour:
    """Answer every request with a title made from the transcript's topic word."""
    return fo.reply(extraction(f"{topic_of(body).title()} review"))


def answer_by_topic(fake: FakeOpenAI) -> None:
    fake.default = fo.responder(by_topic)


def inbox_vault(root: Path, files: dict[str, str], config: str = "") -> Path:
    return make_vault(root, config, {f"Inbox/{name}": text for name, text in files.items()})


def inbox_names(vault: Path) -> list[str]:
    archive = vault / ARCHIVE
    return sorted(
        p.relative_to(vault / "Inbox").as_posix()
        for p in (vault / "Inbox").rglob("*")
        if p.is_file() and archive not in p.parents
    )


def archived(vault: Path) -> list[Path]:
    return sorted(p for p in (vault / ARCHIVE).rglob("*") if p.is_file()) if (vault / ARCHIVE).is_dir() else []


def notes(vault: Path) -> list[Path]:
    folder = vault / "Meetings"
    return sorted(folder.glob("*.md")) if folder.is_dir() else []


def frontmatter(note: Path) -> dict[str, Any]:
    text = note.read_text(encoding="utf-8")
    _, head, _ = text.split("---\n", 2)
    loaded = yaml.safe_load(head)
    assert isinstance(loaded, dict)
    return loaded


def source_link(note: Path) -> str:
    found = re.search(r"\*Source: \[\[([^|\]]+)", note.read_text(encoding="utf-8"))
    assert found, f"no Source link in {note}"
    return found.group(1)


def state(vault: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(vault / ".summarizer" / "state.db") as db:
        return list(db.execute(sql, params).fetchall())


def check_vault(vault: Path, originals: dict[str, str]) -> dict[str, str]:
    """The crash-safety invariant. Every original transcript is either still in the inbox or
    archived with exactly one note pointing at it (a copy of already-summarised content points at
    no note of its own); no temp files; no two notes for one archived file. Returns name -> where."""
    strays = [p for p in vault.rglob("*") if p.is_file() and p.name.endswith(".tmp")]
    assert not strays, f"temp files left behind: {strays}"
    refs: dict[str, list[Path]] = {}
    for note in notes(vault):
        ref = frontmatter(note)["source_ref"]
        assert source_link(note) == ref
        refs.setdefault(ref, []).append(note)
    for ref, pointing in refs.items():
        assert len(pointing) == 1, f"{ref} has {len(pointing)} notes: {pointing}"
        assert (vault / ref).is_file(), f"note points at a missing transcript {ref}"
    where: dict[str, str] = {}
    archive_by_content: dict[str, list[Path]] = {}
    for path in archived(vault):
        archive_by_content.setdefault(path.read_text(encoding="utf-8"), []).append(path)
    inbox = set(inbox_names(vault))
    for name, text in originals.items():
        in_inbox = name in inbox
        homes = archive_by_content.get(text, [])
        copies = [o for o, t in originals.items() if t == text]
        assert in_inbox or homes, f"{name} was lost"
        if in_inbox:
            where[name] = "inbox"
            continue
        where[name] = "archive"
        assert len(homes) <= len(copies), f"{name} archived more than once: {homes}"
        noted = [h for h in homes if h.relative_to(vault).as_posix() in refs]
        assert len(noted) == 1, f"content of {name} should have exactly one note, has {len(noted)}"
    return where


def spawn_inbox(vault: Path, *args: str, crash_at: str | None = None) -> subprocess.Popen[str]:
    """`summarizer inbox` as a separate process (a real run the tests can kill), same environment."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    if crash_at:
        env["SUMMARIZER_CRASH_AT"] = crash_at
    return subprocess.Popen(
        [sys.executable, "-m", "summarizer.cli", "inbox", "--vault", str(vault), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(autouse=True)
def no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests write their files just before the run: no waiting for them to settle."""
    monkeypatch.setenv("SUMMARIZER_INBOX_SETTLE", "0")


# ---------------------------------------------------------------------------- the happy path


def test_summarises_every_format_then_archives_with_links_to_the_archive(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v Alice Moreau>Today's topic is mango.\n"
    srt = "1\n00:00:01,000 --> 00:00:04,000\nToday's topic is lime.\n"
    whisper = json.dumps({"segments": [{"start": 0.0, "end": 2.0, "text": "Today's topic is plum."}]})
    files = {
        "2026-03-02 - kiwi.txt": meeting("kiwi"),
        "2026-03-03 - fig.md": meeting("fig"),
        "2026-03-04 - mango.vtt": vtt,
        "2026-03-05 - lime.srt": srt,
        "2026-03-06 - plum.json": whisper,
    }
    vault = inbox_vault(tmp_path / "vault", files)
    answer_by_topic(model_env)

    result = cli("inbox", "--vault", vault)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert inbox_names(vault) == []
    today = dt.date.today().isoformat()
    assert sorted(p.name for p in archived(vault)) == sorted(files)
    assert {p.parent.name for p in archived(vault)} == {today}
    written = notes(vault)
    assert len(written) == 5
    for note in written:
        ref = frontmatter(note)["source_ref"]
        assert ref.startswith(f"{ARCHIVE}/{today}/")
        assert source_link(note) == ref
        assert (vault / ref).is_file()
    # The title came from the transcript's own topic: each note matches its file.
    kiwi = next(n for n in written if "Kiwi review" in n.name)
    assert frontmatter(kiwi)["source_ref"].endswith("2026-03-02 - kiwi.txt")
    assert len(model_env.chat_requests()) == 5
    rows = state(vault, "SELECT status, note_path, archive_path, model, prompt_version FROM inbox_transcripts")
    assert len(rows) == 5
    assert all(r[0] == "done" and r[3] == "test-model" and r[4] for r in rows)
    assert "done 5" in result.stdout and "failed 0" in result.stdout
    check_vault(vault, files)


def test_skips_archive_hidden_unsupported_and_unsettled_files(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = inbox_vault(
        tmp_path / "vault",
        {
            "2026-03-02 - kiwi.txt": meeting("kiwi"),
            ".hidden.txt": meeting("secret"),
            ".obsidian-tmp/draft.txt": meeting("draft"),
            "_archive/2026-01-01/old.txt": meeting("old"),
            "photo.png": "not a transcript",
        },
    )
    answer_by_topic(model_env)

    result = cli("inbox", "--vault", vault, "--json")

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    by_name = {item["name"]: item for item in report["items"]}
    assert set(by_name) == {"2026-03-02 - kiwi.txt", "photo.png"}
    assert by_name["photo.png"]["status"] == "skipped"
    assert "not a transcript format" in by_name["photo.png"]["detail"]
    assert len(model_env.chat_requests()) == 1
    assert (vault / "Inbox/.hidden.txt").exists() and (vault / "Inbox/_archive/2026-01-01/old.txt").exists()


def test_a_file_still_being_written_waits_for_the_next_run(
    tmp_path: Path, model_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = inbox_vault(tmp_path / "vault", {"2026-03-02 - kiwi.txt": meeting("kiwi")})
    answer_by_topic(model_env)
    monkeypatch.delenv("SUMMARIZER_INBOX_SETTLE")  # the default: a file just written is not touched

    result = cli("inbox", "--vault", vault)

    assert result.exit_code == 0
    assert "still being written" in result.stdout
    assert inbox_names(vault) == ["2026-03-02 - kiwi.txt"] and model_env.chat_requests() == []

    old = dt.datetime.now().timestamp() - 60
    os.utime(vault / "Inbox/2026-03-02 - kiwi.txt", (old, old))
    assert cli("inbox", "--vault", vault).exit_code == 0
    assert inbox_names(vault) == []


def test_a_failure_leaves_the_transcript_in_the_inbox_records_it_and_the_rest_go_on(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    files = {f"2026-03-0{i} - {t}.txt": meeting(t) for i, t in enumerate(["kiwi", "fig", "lime"], start=1)}
    vault = inbox_vault(tmp_path / "vault", files)

    def fig_fails(body: dict[str, Any]) -> fo.Behaviour:
        return fo.bad_request("fig is not allowed") if topic_of(body) == "fig" else by_topic(body)

    model_env.default = fo.responder(fig_fails)

    result = cli("inbox", "--vault", vault)

    assert result.exit_code == 1
    assert inbox_names(vault) == ["2026-03-02 - fig.txt"]
    assert len(notes(vault)) == 2
    assert "fig is not allowed" in result.stdout + result.stderr
    (status, error, attempts) = state(
        vault, "SELECT status, error, attempts FROM inbox_transcripts WHERE inbox_path LIKE '%fig%'"
    )[0]
    assert status == "failed" and "fig is not allowed" in error and attempts == 1
    check_vault(vault, files)

    # Fixed on the server side: the next run finishes it and only it.
    answer_by_topic(model_env)
    before = len(model_env.chat_requests())
    again = cli("inbox", "--vault", vault)
    assert again.exit_code == 0
    assert len(model_env.chat_requests()) == before + 1
    assert check_vault(vault, files) == dict.fromkeys(files, "archive")


def test_unreadable_transcript_fails_without_a_call(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = inbox_vault(tmp_path / "vault", {"empty.txt": "   \n", "2026-03-02 - kiwi.txt": meeting("kiwi")})
    answer_by_topic(model_env)

    result = cli("inbox", "--vault", vault, "--json")

    assert result.exit_code == 1
    items = {i["name"]: i for i in json.loads(result.stdout)["items"]}
    assert items["empty.txt"]["status"] == "failed" and "empty" in items["empty.txt"]["error"]
    assert items["2026-03-02 - kiwi.txt"]["status"] == "done"
    assert inbox_names(vault) == ["empty.txt"]
    assert len(model_env.chat_requests()) == 1


def test_rerun_with_nothing_new_makes_no_call_and_changes_nothing(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = inbox_vault(tmp_path / "vault", {"2026-03-02 - kiwi.txt": meeting("kiwi")})
    answer_by_topic(model_env)
    assert cli("inbox", "--vault", vault).exit_code == 0
    requests = len(model_env.requests)
    before = snapshot(vault)

    result = cli("inbox", "--vault", vault, "--json")

    assert result.exit_code == 0
    assert len(model_env.requests) == requests  # no HTTP at all
    assert snapshot(vault) == before
    assert json.loads(result.stdout)["totals"]["done"] == 0


# ---------------------------------------------------------------------------- duplicates and name clashes


def test_same_content_under_two_names_is_summarised_once(tmp_path: Path, model_env: FakeOpenAI) -> None:
    files = {"2026-03-02 - kiwi.txt": meeting("kiwi"), "kiwi copy.txt": meeting("kiwi")}
    vault = inbox_vault(tmp_path / "vault", files)
    answer_by_topic(model_env)

    result = cli("inbox", "--vault", vault, "--json", "--concurrency", "4")

    assert result.exit_code == 0, result.stderr
    assert len(model_env.chat_requests()) == 1
    assert len(notes(vault)) == 1
    assert len(archived(vault)) == 2
    items = {i["name"]: i for i in json.loads(result.stdout)["items"]}
    copy = items["kiwi copy.txt"]
    assert copy["status"] == "done" and copy["duplicate"] is True
    assert copy["note"] == items["2026-03-02 - kiwi.txt"]["note"]
    assert state(vault, "SELECT status, duplicate_of FROM inbox_duplicates") == [("done", copy["note"])]
    check_vault(vault, files)

    # The same content dropped again later: archived as a duplicate, still no call.
    (vault / "Inbox" / "kiwi again.txt").write_text(meeting("kiwi"), encoding="utf-8")
    assert cli("inbox", "--vault", vault).exit_code == 0
    assert len(model_env.chat_requests()) == 1 and len(notes(vault)) == 1 and inbox_names(vault) == []


def test_two_meetings_with_the_same_title_and_date_keep_separate_notes(tmp_path: Path, model_env: FakeOpenAI) -> None:
    files = {"2026-03-02 - a.txt": meeting("kiwi", " First."), "2026-03-02 - b.txt": meeting("kiwi", " Second.")}
    vault = inbox_vault(tmp_path / "vault", files)
    model_env.default = fo.reply(extraction("Kiwi review", "2026-03-02"))

    result = cli("inbox", "--vault", vault, "--concurrency", "2")

    assert result.exit_code == 0, result.stderr
    names = sorted(n.name for n in notes(vault))
    assert names == ["2026-03-02 - Kiwi review (2).md", "2026-03-02 - Kiwi review.md"]
    assert {frontmatter(n)["source_ref"].rsplit("/", 1)[1] for n in notes(vault)} == set(files)
    check_vault(vault, files)


def test_same_file_name_in_two_inbox_folders_archives_both(tmp_path: Path, model_env: FakeOpenAI) -> None:
    files = {"zoom/2026-03-02 - sync.txt": meeting("kiwi"), "teams/2026-03-02 - sync.txt": meeting("fig")}
    vault = inbox_vault(tmp_path / "vault", files)
    answer_by_topic(model_env)

    assert cli("inbox", "--vault", vault, "--concurrency", "2").exit_code == 0

    assert sorted(p.name for p in archived(vault)) == ["2026-03-02 - sync (2).txt", "2026-03-02 - sync.txt"]
    assert len({frontmatter(n)["source_ref"] for n in notes(vault)}) == 2


# ---------------------------------------------------------------------------- options


def test_dry_run_counts_tokens_estimates_cost_and_touches_nothing(
    tmp_path: Path, model_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUMMARIZER_PRICES", json.dumps({"test-model": {"input": 1.0, "output": 2.0}}))
    files = {"2026-03-02 - kiwi.txt": meeting("kiwi"), "2026-03-03 - fig.txt": meeting("fig")}
    vault = inbox_vault(tmp_path / "vault", files)
    before = snapshot(vault)

    result = cli("inbox", "--vault", vault, "--dry-run", "--json")

    assert result.exit_code == 0, result.stderr
    assert model_env.requests == []
    assert snapshot(vault) == before
    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    items = report["items"]
    assert [i["name"] for i in items] == sorted(files)
    assert all(i["prompt_tokens"] > 100 and i["calls"] == 1 for i in items)
    assert all("would summarise" in i["detail"] for i in items)
    assert report["totals"]["cost"] > 0
    half = json.loads(cli("inbox", "--vault", vault, "--dry-run", "--json", "--batch").stdout)
    assert half["totals"]["cost"] == pytest.approx(report["totals"]["cost"] / 2)

    table = cli("inbox", "--vault", vault, "--dry-run")
    assert "dry run" in table.stdout and "would summarise" in table.stdout and "$" in table.stdout
    assert model_env.requests == []


def test_limit_and_only_choose_what_runs(tmp_path: Path, model_env: FakeOpenAI) -> None:
    files = {f"2026-03-0{i} - {t}.txt": meeting(t) for i, t in enumerate(["kiwi", "fig", "lime", "plum"], 1)}
    vault = inbox_vault(tmp_path / "vault", files)
    answer_by_topic(model_env)

    assert cli("inbox", "--vault", vault, "--only", "*fig*").exit_code == 0
    assert "2026-03-02 - fig.txt" not in inbox_names(vault) and len(inbox_names(vault)) == 3

    assert cli("inbox", "--vault", vault, "--limit", "2").exit_code == 0
    assert inbox_names(vault) == ["2026-03-04 - plum.txt"]
    assert len(model_env.chat_requests()) == 3


def test_json_report_has_totals_tokens_and_cost(
    tmp_path: Path, model_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUMMARIZER_PRICES", json.dumps({"test-model": {"input": 1.0, "output": 2.0}}))
    vault = inbox_vault(tmp_path / "vault", {"2026-03-02 - kiwi.txt": meeting("kiwi")})
    model_env.default = fo.reply(extraction("Kiwi"), prompt_tokens=1000, completion_tokens=100, cached_tokens=400)

    result = cli("inbox", "--vault", vault, "--json")

    report = json.loads(result.stdout)
    totals = report["totals"]
    assert (totals["done"], totals["skipped"], totals["failed"]) == (1, 0, 0)
    assert (totals["tokens_in"], totals["tokens_cached"], totals["tokens_out"]) == (1000, 400, 100)
    assert totals["cost"] == pytest.approx((1000 * 1.0 + 100 * 2.0) / 1e6)
    assert totals["wall_seconds"] > 0
    item = report["items"][0]
    assert item["note"].startswith("Meetings/") and item["archive"].startswith(ARCHIVE)
    row = state(vault, "SELECT prompt_tokens, cached_tokens, completion_tokens FROM inbox_transcripts")
    assert row == [(1000, 400, 100)]


def test_progress_is_plain_lines_when_not_a_terminal(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = inbox_vault(tmp_path / "vault", {"2026-03-02 - kiwi.txt": meeting("kiwi")})
    answer_by_topic(model_env)

    result = cli("inbox", "--vault", vault)

    assert "[1/1] done    2026-03-02 - kiwi.txt" in result.stderr
    assert "\x1b[" not in result.stderr


def test_usage_errors_exit_2(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = inbox_vault(tmp_path / "vault", {})
    assert cli("inbox", "--vault", vault, "--batch", "--collect").exit_code == 2
    assert cli("inbox", "--vault", vault, "--concurrency", "0").exit_code == 2
    missing = cli("inbox", "--vault", tmp_path / "nowhere")
    assert missing.exit_code == 2 or "does not exist" in missing.stderr


def test_a_second_run_on_the_same_vault_exits_2_naming_the_holder(tmp_path: Path, model_env: FakeOpenAI) -> None:
    from filelock import FileLock

    vault = inbox_vault(tmp_path / "vault", {"2026-03-02 - kiwi.txt": meeting("kiwi")})
    (vault / ".summarizer").mkdir(exist_ok=True)
    holder = os.getpid()  # a live process stands in for the run holding the lock
    (vault / ".summarizer" / "inbox.pid").write_text(str(holder), encoding="utf-8")
    with FileLock(str(vault / ".summarizer" / "inbox.lock")):
        result = cli("inbox", "--vault", vault)
    assert result.exit_code == 2
    assert f"another summarizer run holds the vault lock (pid {holder})" in result.stderr
    assert inbox_names(vault) == ["2026-03-02 - kiwi.txt"] and model_env.requests == []


def test_the_lock_message_never_names_a_dead_pid(tmp_path: Path, model_env: FakeOpenAI) -> None:
    from filelock import FileLock

    vault = inbox_vault(tmp_path / "vault", {"2026-03-02 - kiwi.txt": meeting("kiwi")})
    answer_by_topic(model_env)
    pid_file = vault / ".summarizer" / "inbox.pid"
    pid_file.parent.mkdir(exist_ok=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid_file.write_text(dead.stdout.strip(), encoding="utf-8")  # what a killed run leaves behind
    with FileLock(str(vault / ".summarizer" / "inbox.lock")):
        result = cli("inbox", "--vault", vault)
    assert result.exit_code == 2
    assert "(pid unknown)" in result.stderr and dead.stdout.strip() not in result.stderr

    # A run that gets the lock does not leave its pid behind once it is done.
    assert cli("inbox", "--vault", vault).exit_code == 0
    assert not pid_file.exists()


# ---------------------------------------------------------------------------- concurrency and rate limits


def test_rate_limits_halve_the_concurrency_and_every_transcript_still_lands(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    topics = ["kiwi", "fig", "lime", "plum", "pear", "date", "yuzu", "sloe"]
    files = {f"2026-03-0{i} - {t}.txt": meeting(t) for i, t in enumerate(topics, 1)}
    vault = inbox_vault(tmp_path / "vault", files)
    answer_by_topic(model_env)
    model_env.max_concurrency = 2
    model_env.latency = 0.05

    result = cli("inbox", "--vault", vault, "--concurrency", "8", "--json")

    assert result.exit_code == 0, result.stdout
    report = json.loads(result.stdout)
    assert model_env.stats.limit_rejections > 0
    assert report["rate_limited"] == model_env.stats.rate_limited  # the limiter saw every 429, retried or not
    assert report["limiter"]["decreases"] >= 1
    assert model_env.stats.max_in_flight <= 2
    assert check_vault(vault, files) == dict.fromkeys(files, "archive")


def test_concurrency_bounds_the_transcripts_at_the_model_even_when_the_server_takes_more(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    topics = ["kiwi", "fig", "lime", "plum", "pear", "date"]
    files = {f"2026-03-0{i} - {t}.txt": meeting(t) for i, t in enumerate(topics, 1)}
    vault = inbox_vault(tmp_path / "vault", files, "server_slots = 16\n")
    answer_by_topic(model_env)
    model_env.latency = 0.05

    result = cli("inbox", "--vault", vault, "--concurrency", "2", "--json")

    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["limiter"]["maximum"] == 16, "the server's slots size the request limit"
    assert model_env.stats.max_in_flight <= 2, "spare workers prepare, but only 2 transcripts are at the model"
    assert check_vault(vault, files) == dict.fromkeys(files, "archive")


def test_long_meeting_parts_share_the_runs_limit(tmp_path: Path, model_env: FakeOpenAI) -> None:
    long = "".join(f"Alice Moreau: Point {i} about today's topic is kiwi and more words here.\n" for i in range(400))
    files = {f"2026-03-0{i} - long{i}.txt": long + f"Bob Chen: end {i}.\n" for i in range(1, 4)}
    vault = inbox_vault(tmp_path / "vault", files, "context_window = 6000\nmax_output_tokens = 1000\n")
    answer_by_topic(model_env)
    model_env.latency = 0.05

    result = cli("inbox", "--vault", vault, "--concurrency", "2", "--json")

    assert result.exit_code == 0, result.stdout
    calls = json.loads(result.stdout)["totals"]["calls"]
    assert calls >= 3 * 2  # each meeting was split into parts
    assert model_env.stats.max_in_flight <= 2  # 2 transcripts x 2 parts would otherwise reach 4
    check_vault(vault, files)


def test_limiter_halves_once_per_burst_then_regains_quickly_and_probes_slowly() -> None:
    limiter = AdaptiveLimiter(8)
    for _ in range(4):
        limiter.acquire()
    limiter.observe(429)
    limiter.observe(429)  # the SDK retrying a request sent before the cut: no second cut
    assert limiter.limit == 4 and limiter.decreases == 1
    for _ in range(4):
        limiter.release()
    for _ in range(4):
        limiter.acquire()  # requests sent after the cut
    limiter.observe(429)  # nothing got through since the cut: the window is just full, no cut
    assert limiter.limit == 4
    limiter.observe(200)
    limiter.observe(429)  # some get through, some do not: overloaded, cut again
    assert limiter.limit == 2 and limiter.decreases == 2
    for _ in range(4):
        limiter.release()
    # 4 requests were in flight when the 429 came: 3 is the level known to work.
    limiter.observe(200)
    limiter.observe(200)
    assert limiter.limit == 3  # below that level: +1 after a short run (2)
    for _ in range(4 * 3 - 1):
        limiter.observe(200)
    assert limiter.limit == 3  # at it: +1 only after 4 x limit successes
    limiter.observe(200)
    assert limiter.limit == 4 and limiter.increases == 2
    limiter.resize(3)
    assert limiter.limit == 3


def test_limiter_blocks_beyond_the_limit_until_a_slot_frees() -> None:
    limiter = AdaptiveLimiter(1)
    limiter.acquire()
    entered = threading.Event()

    def second() -> None:
        with limiter.slot():
            entered.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not entered.wait(0.05)
    limiter.release()
    assert entered.wait(5)
    thread.join()
    assert limiter.max_in_flight == 1


def test_runner_collects_errors_per_item_and_drives_a_live_display() -> None:
    def work(item: int, progress: Any) -> ItemResult:
        progress("working")
        if item == 2:
            raise RuntimeError("boom")
        return ItemResult(str(item), "done", usage=Usage(calls=1, prompt_tokens=10))

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    display = make_display(io.StringIO(), console)
    assert isinstance(display, LiveDisplay)
    report = Runner(work, str, workers=3, display=display).run([1, 2, 3])
    assert [r.status for r in report.results] == ["done", "failed", "done"]
    assert report.results[1].error == "boom" and report.exit_code == 1
    assert report.usage.prompt_tokens == 20
    assert "boom" in out.getvalue()
    assert isinstance(make_display(io.StringIO(), Console(file=io.StringIO())), PlainDisplay)
    assert isinstance(make_display(io.StringIO()), PlainDisplay), "not a terminal: plain lines, no rich"


def test_a_full_token_window_does_not_cut_concurrency() -> None:
    """Fewer requests in flight would not free a tokens-per-minute window, only waste it when it reopens."""
    limiter = AdaptiveLimiter(8)
    limiter.observe(429, "tokens")
    assert limiter.limit == 8 and limiter.rate_limited == 1
    limiter.observe(429, "requests")
    assert limiter.limit == 4


def test_the_client_reports_which_limit_a_429_hit(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    """The 429's error type reaches the limiter through the real HTTP hook (body read, SDK unaffected)."""
    from summarizer.config import load_settings
    from summarizer.llm import ModelClient, Prompt

    seen: list[tuple[int, str | None]] = []
    resolved = load_settings(None, {"model": "test-model", "base_url": fake_openai.base_url, "max_retries": 2})
    from summarizer.modelseam import HttpStatus

    class Recorder:
        def http_status(self, event: HttpStatus) -> None:
            seen.append((event.status, event.limit))

    client = ModelClient(resolved, observers=[Recorder()])
    fake_openai.enqueue(fo.status(429, {"error": {"type": "tokens", "message": "TPM"}}, {"retry-after": "0.01"}))
    fake_openai.enqueue(fo.reply(extraction("Kiwi review")))
    result = client.extract(Prompt("s", "s", "u"), label="x")
    assert result.extraction.title
    assert seen == [(429, "tokens"), (200, None)]


# ---------------------------------------------------------------------------- what the inbox never does


def test_a_file_that_takes_the_archive_name_meanwhile_is_kept_and_the_transcript_archived_beside_it(
    tmp_path: Path, model_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from summarizer.archive import Archiver

    files = {"2026-03-02 - kiwi.txt": meeting("kiwi")}
    vault = inbox_vault(tmp_path / "vault", files)
    answer_by_topic(model_env)
    move = Archiver.move

    def someone_writes_there_first(self: Archiver, source: Path, planned: Path, **kw: Any) -> Path:
        planned.parent.mkdir(parents=True, exist_ok=True)
        planned.write_text("someone else's file", encoding="utf-8")
        return move(self, source, planned, **kw)

    monkeypatch.setattr(Archiver, "move", someone_writes_there_first)

    result = cli("inbox", "--vault", vault, "--json")

    assert result.exit_code == 0, result.stdout + result.stderr
    day = vault / ARCHIVE / dt.date.today().isoformat()
    assert (day / "2026-03-02 - kiwi.txt").read_text(encoding="utf-8") == "someone else's file"
    assert (day / "2026-03-02 - kiwi (2).txt").read_text(encoding="utf-8") == files["2026-03-02 - kiwi.txt"]
    (note,) = notes(vault)
    assert frontmatter(note)["source_ref"] == f"{ARCHIVE}/{day.name}/2026-03-02 - kiwi (2).txt"
    assert json.loads(result.stdout)["items"][0]["archive"] == frontmatter(note)["source_ref"]
    rows = state(vault, "SELECT status, archive_path FROM inbox_transcripts")
    assert rows == [("done", frontmatter(note)["source_ref"])]
    assert state(vault, "SELECT source_ref FROM notes") == [(frontmatter(note)["source_ref"],)]
    check_vault(vault, files)


def test_without_hard_links_the_move_copies_and_still_never_overwrites(
    tmp_path: Path, model_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    files = {"2026-03-02 - kiwi.txt": meeting("kiwi"), "2026-03-03 - fig.txt": meeting("fig")}
    vault = inbox_vault(tmp_path / "vault", files)
    answer_by_topic(model_env)

    def no_links(*_args: Any, **_kw: Any) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    real_rename = os.rename

    def across_devices(source: Any, target: Any) -> None:
        if "Inbox/_archive" in str(target) and not Path(source).name.endswith(".moving.tmp"):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(source, target)

    monkeypatch.setattr(os, "link", no_links)
    monkeypatch.setattr(os, "rename", across_devices)

    result = cli("inbox", "--vault", vault)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert check_vault(vault, files) == dict.fromkeys(files, "archive")


def test_symlinks_and_special_files_in_the_inbox_are_skipped_and_never_touched(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    outside = tmp_path / "outside" / "secret.txt"
    outside.parent.mkdir()
    outside.write_text(meeting("secret"), encoding="utf-8")
    vault = inbox_vault(tmp_path / "vault", {"2026-03-02 - kiwi.txt": meeting("kiwi")})
    (vault / "Inbox" / "linked.txt").symlink_to(outside)
    (vault / "Inbox" / "linked folder").symlink_to(outside.parent, target_is_directory=True)
    os.mkfifo(vault / "Inbox" / "stuck.txt")  # reading it would block the run forever
    answer_by_topic(model_env)

    run = spawn_inbox(vault, "--json")
    try:
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()

    assert run.returncode == 0, out + err
    items = {i["name"]: i for i in json.loads(out)["items"]}
    assert items["linked.txt"]["status"] == "skipped" and "symbolic link" in items["linked.txt"]["detail"]
    assert items["stuck.txt"]["status"] == "skipped" and "not a regular file" in items["stuck.txt"]["detail"]
    assert items["2026-03-02 - kiwi.txt"]["status"] == "done"
    assert outside.read_text(encoding="utf-8") == meeting("secret")
    assert (vault / "Inbox" / "linked.txt").is_symlink() and (vault / "Inbox" / "stuck.txt").exists()
    assert [topic_of(body) for body in model_env.chat_requests()] == ["kiwi"]


def test_a_file_that_cannot_be_read_or_vanished_is_reported_and_the_rest_go_on(
    tmp_path: Path, model_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from summarizer import inbox_scan as inbox

    files = {"2026-03-02 - kiwi.txt": meeting("kiwi"), "locked.txt": meeting("fig"), "gone.txt": meeting("lime")}
    vault = inbox_vault(tmp_path / "vault", files)
    answer_by_topic(model_env)
    real_hash = inbox.file_hash

    def hash_or_fail(path: Path) -> str:  # the tests run as root: no real permission error to be had
        if path.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(path))
        if path.name == "gone.txt":
            path.unlink()
        return real_hash(path)

    monkeypatch.setattr(inbox, "file_hash", hash_or_fail)

    result = cli("inbox", "--vault", vault, "--json")

    assert result.exit_code == 1
    items = {i["name"]: i for i in json.loads(result.stdout)["items"]}
    assert items["locked.txt"]["status"] == "failed"
    assert items["locked.txt"]["error"] == "cannot read Inbox/locked.txt: Permission denied"
    assert items["gone.txt"]["status"] == "skipped" and "gone" in items["gone.txt"]["detail"]
    assert items["2026-03-02 - kiwi.txt"]["status"] == "done"
    assert inbox_names(vault) == ["locked.txt"]


def test_an_inbox_at_the_vault_root_is_refused(tmp_path: Path, model_env: FakeOpenAI) -> None:
    for setting in (".", "/", "Inbox/.."):
        vault = make_vault(tmp_path / f"vault{len(setting)}", f'inbox = "{setting}"\n', {"Meetings/old.md": "# old\n"})
        result = cli("inbox", "--vault", vault)
        assert result.exit_code == 2, result.stdout + result.stderr
        assert "the inbox setting must name a folder inside the vault" in result.stderr
        assert (vault / "Meetings/old.md").is_file() and model_env.requests == []


def test_notes_written_inside_a_dot_slash_inbox_are_never_taken_for_transcripts(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    config = 'inbox = "./Inbox"\nnote_path = "Inbox/Notes/{date} - {title}.md"\n'
    vault = inbox_vault(tmp_path / "vault", {"2026-03-02 - kiwi.txt": meeting("kiwi")}, config)
    answer_by_topic(model_env)
    assert cli("inbox", "--vault", vault).exit_code == 0
    written = sorted((vault / "Inbox" / "Notes").glob("*.md"))
    assert len(written) == 1
    before = snapshot(vault)

    again = cli("inbox", "--vault", vault, "--json")

    assert again.exit_code == 0
    assert json.loads(again.stdout)["items"] == []
    assert snapshot(vault) == before and len(model_env.chat_requests()) == 1


def test_note_paths_under_an_inbox_match_its_folder_literally(tmp_path: Path) -> None:
    from summarizer.store import Store

    store = Store(tmp_path / "state.db")
    with sqlite3.connect(tmp_path / "state.db") as db:
        for path in ("In_box/a.md", "Inxbox/b.md", "In%box/c.md", "Other/d.md"):
            db.execute("INSERT INTO notes (note_path, ts) VALUES (?, 'now')", (path,))
    assert store.note_paths_under("In_box") == {"In_box/a.md"}
    assert store.note_paths_under("./In%box/") == {"In%box/c.md"}
    store.close()


def test_the_note_is_made_from_the_extraction_that_chose_its_path(
    tmp_path: Path, model_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker adding a stub note between choosing the path and writing must not cost a second call."""
    from summarizer.pipeline import Pipeline
    from summarizer.vault_index import IndexedNote

    files = {"2026-03-02 - kiwi.txt": meeting("kiwi")}
    vault = inbox_vault(tmp_path / "vault", files)
    answer_by_topic(model_env)
    extract = Pipeline.extract

    def then_the_index_changes(self: Pipeline, transcript: Any, **kw: Any) -> Any:
        found = extract(self, transcript, **kw)
        self.index.add(IndexedNote.from_frontmatter("People/Bob Chen.md", {"type": "person"}))
        return found

    monkeypatch.setattr(Pipeline, "extract", then_the_index_changes)

    result = cli("inbox", "--vault", vault)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert len(model_env.chat_requests()) == 1
    check_vault(vault, files)


def test_a_vault_on_a_file_system_without_flock_still_gets_its_lock(
    tmp_path: Path, model_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SSHFS and some network mounts refuse flock (ENOSYS): the lock falls back to filelock's, as before."""
    import errno
    import fcntl

    def no_flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOSYS, "Function not implemented")

    files = {"2026-03-02 - kiwi.txt": meeting("kiwi")}
    vault = inbox_vault(tmp_path / "vault", files)
    answer_by_topic(model_env)
    monkeypatch.setattr(fcntl, "flock", no_flock)
    with pytest.warns(UserWarning, match="flock not supported"):
        result = cli("inbox", "--vault", vault)
    assert result.exit_code == 0, result.stderr
    assert check_vault(vault, files) == dict.fromkeys(files, "archive")


def test_a_lock_the_file_system_refuses_is_one_line_naming_it(
    tmp_path: Path, model_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import fcntl

    def refused(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    files = {"2026-03-02 - kiwi.txt": meeting("kiwi")}
    vault = inbox_vault(tmp_path / "vault", files)
    monkeypatch.setattr(fcntl, "flock", refused)
    result = cli("inbox", "--vault", vault)
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert "inbox.lock: cannot take the vault lock: No locks available" in line
    assert model_env.chat_requests() == [] and check_vault(vault, files) == dict.fromkeys(files, "inbox")
