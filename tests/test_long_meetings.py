"""Long meetings: split on utterance boundaries, every part at once, joined in code (or merged by one
more request with `merge_parts = "model"`); never a silent truncation.

The loopback server answers 400 `context_length_exceeded` past its limit, as the real API does.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli, make_vault

ICSI = Path(__file__).parent / "data" / "corpus" / "icsi_Bmr005.txt"
LIMIT = 8192


def part_answer(index: int) -> dict[str, Any]:
    return {
        "title": "Meeting recorder project status" if index == 1 else f"Recording setup {index}",
        "meeting_date": None,
        "note_type": "internal" if index != 2 else "project",
        "account": None,
        "account_category": None,
        "participants": ["Grad A", "Professor B"],
        "summary": f"Summary of part {index}.",
        "action_items": [
            {"text": "Transcribe the new recordings", "owner": None, "due": None, "priority": "none", "evidence": "x"},
            {"text": f"Action only in part {index}", "owner": None, "due": None, "priority": "none", "evidence": "x"},
        ],
        "decisions": [{"text": "Keep the close-talking microphones", "evidence": "x"}],
        "key_information": [f"Fact {index}"],
        "related": [{"name": "ICSI", "kind": "organisation"}],
    }


MERGED = {
    **part_answer(0),
    "title": "Recorder project review",
    "summary": "The group reviewed the meeting recorder project.",
    "action_items": [],
    "decisions": [],
    "key_information": [],
    "related": [],
}


def answer(body: dict[str, Any]) -> fo.Behaviour:
    user = body["messages"][1]["content"]
    if "too long to read at once" in user:
        return fo.reply(MERGED)
    match = re.search(r"This is part (\d+) of (\d+)", user)
    assert match, "every request is either a part or a merge"
    return fo.reply(part_answer(int(match.group(1))))


@pytest.fixture
def long_vault(tmp_path: Path) -> Path:
    vault = make_vault(tmp_path / "vault", "unsupported_evidence = \"keep\"\n")
    (vault / "Inbox").mkdir()
    shutil.copyfile(ICSI, vault / "Inbox" / "2000-03-14 - Bmr005.txt")
    return vault


def test_long_meeting_gives_one_note_and_no_request_exceeds_the_limit(
    long_vault: Path, model_env: FakeOpenAI
) -> None:
    model_env.context_limit = LIMIT
    model_env.default = fo.responder(answer)
    result = cli("summarise", long_vault / "Inbox" / "2000-03-14 - Bmr005.txt", "--vault", long_vault)
    assert result.exit_code == 0, result.stderr
    # Chat requests: a first real run also asks a local server's metadata routes once (404 here).
    requests = [r for r in model_env.requests if r.path.endswith("/chat/completions")]
    counted = [r.prompt_tokens_counted for r in requests if r.path.endswith("/chat/completions")]
    assert counted and max(c or 0 for c in counted) <= LIMIT
    assert all(r.response_status == 200 for r in requests)
    parts = [r for r in model_env.chat_requests() if "This is part" in r["messages"][1]["content"]]
    assert len(parts) >= 3
    part_tokens = [
        r.prompt_tokens_counted or 0
        for r in requests
        if isinstance(r.json, dict) and "This is part" in r.json["messages"][1]["content"]
    ]
    assert max(part_tokens) <= 1.25 * min(part_tokens), f"parts of near-equal size, not greedy: {part_tokens}"
    assert re.findall(r"part \d+/\d+ extracted", result.stderr)
    note = Path(result.stdout.strip()).read_text(encoding="utf-8")
    assert note.count("Transcribe the new recordings") == 1, "cross-part duplicates merged"
    assert note.count("Keep the close-talking microphones") == 1
    for index in range(1, len(parts) + 1):
        assert f"Action only in part {index}" in note and f"Fact {index}" in note
    calls = len(model_env.chat_requests())
    assert calls == len(parts), "one round: the parts, and no merge request"
    assert "# Meeting recorder project status" in note, "the opening part's title"
    assert "type: internal" in note, "the type most parts gave"
    joined = " ".join(f"Summary of part {index}." for index in range(1, len(parts) + 1))
    assert f"## Summary\n\n{joined}\n" in note, "the parts' summaries, in order, as one paragraph"
    assert f"{calls} call(s)" in result.stderr, "usage covers every call"
    first = next(u for r in parts if "This is part 1 of" in (u := r["messages"][1]["content"]))
    assert "sentence" in first and "the whole meeting's title, as its opening shows it" in first
    assert "another pass merges" not in first


def test_with_merge_parts_model_one_more_request_writes_title_and_summary(
    long_vault: Path, model_env: FakeOpenAI
) -> None:
    (long_vault / ".summarizer.toml").write_text('unsupported_evidence = "keep"\nmerge_parts = "model"\n')
    model_env.context_limit = LIMIT
    model_env.default = fo.responder(answer)
    plan = cli("summarise", long_vault / "Inbox" / "2000-03-14 - Bmr005.txt", "--vault", long_vault, "--dry-run")
    assert re.search(r"calls: \d+ \(\d+ parts \+ merge\)", plan.stdout)
    result = cli("summarise", long_vault / "Inbox" / "2000-03-14 - Bmr005.txt", "--vault", long_vault)
    assert result.exit_code == 0, result.stderr
    users = [body["messages"][1]["content"] for body in model_env.chat_requests()]
    parts = [u for u in users if "This is part" in u]
    merges = [u for u in users if "too long to read at once" in u]
    assert len(merges) == 1 and len(users) == len(parts) + 1
    assert all("another pass merges the parts" in u for u in parts)
    note = Path(result.stdout.strip()).read_text(encoding="utf-8")
    assert "# Recorder project review" in note and "The group reviewed the meeting recorder project." in note
    assert note.count("Transcribe the new recordings") == 1 and "Action only in part 2" in note


def test_parts_cover_every_utterance_in_order(long_vault: Path, model_env: FakeOpenAI) -> None:
    model_env.context_limit = LIMIT
    model_env.default = fo.responder(answer)
    assert cli("summarise", long_vault / "Inbox" / "2000-03-14 - Bmr005.txt", "--vault", long_vault).exit_code == 0
    sent = ""
    for body in model_env.chat_requests():
        user = body["messages"][1]["content"]
        if "<transcript>" in user:
            sent += user.split("<transcript>\n")[1].split("\n</transcript>")[0] + "\n"
    from summarizer.reader import read_transcript

    for utterance in read_transcript(long_vault / "Inbox" / "2000-03-14 - Bmr005.txt").utterances:
        assert utterance.text in sent


def test_dry_run_reports_the_split(long_vault: Path, model_env: FakeOpenAI) -> None:
    result = cli("summarise", long_vault / "Inbox" / "2000-03-14 - Bmr005.txt", "--vault", long_vault, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert re.search(r"calls: \d+ \(\d+ parts, joined here\)", result.stdout)
    assert model_env.chat_requests() == []


def test_a_server_smaller_than_configured_is_a_clear_error(long_vault: Path, model_env: FakeOpenAI) -> None:
    (long_vault / ".summarizer.toml").write_text("context_window = 128000\n")
    model_env.context_limit = LIMIT
    result = cli("summarise", long_vault / "Inbox" / "2000-03-14 - Bmr005.txt", "--vault", long_vault)
    assert result.exit_code == 1
    assert "larger than the model's context window" in result.stderr and "context_window" in result.stderr


def _all_parts_together(model_env: FakeOpenAI) -> None:
    """Each part answers only once every part has arrived (or after 10 s: the test then fails)."""
    import contextlib
    import threading

    barriers: dict[int, threading.Barrier] = {}
    lock = threading.Lock()

    def together(body: dict[str, Any]) -> fo.Behaviour:
        match = re.search(r"This is part (\d+) of (\d+)", body["messages"][1]["content"])
        if match:
            with lock:
                barrier = barriers.setdefault(0, threading.Barrier(int(match.group(2)), timeout=10))
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
        return answer(body)

    model_env.default = fo.responder(together)


@pytest.mark.parametrize(
    ("settings", "server", "command"),
    [
        pytest.param("concurrency = 1\nserver_slots = 16\n", "openai", "summarise", id="server_slots setting"),
        pytest.param("concurrency = 2\n", "llama-server", "summarise", id="slots stated on /props, learned mid-run"),
        pytest.param("concurrency = 1\nserver_slots = 16\n", "openai", "inbox", id="in the inbox too"),
    ],
)
def test_every_part_is_in_flight_at_once_up_to_the_servers_slots_whatever_the_concurrency(
    long_vault: Path, model_env: FakeOpenAI, settings: str, server: str, command: str
) -> None:
    (long_vault / ".summarizer.toml").write_text(f'unsupported_evidence = "keep"\n{settings}')
    model_env.server = server
    model_env.slots = 16
    model_env.context_limit = LIMIT
    _all_parts_together(model_env)
    if command == "summarise":
        result = cli("summarise", long_vault / "Inbox" / "2000-03-14 - Bmr005.txt", "--vault", long_vault)
    else:
        result = cli("inbox", "--vault", long_vault, "--settle", "0")
    assert result.exit_code == 0, result.stderr
    parts = [r for r in model_env.chat_requests() if "This is part" in r["messages"][1]["content"]]
    assert len(parts) >= 3 and len(model_env.chat_requests()) == len(parts)
    assert model_env.stats.max_in_flight == len(parts), "all parts in flight together, in one round"


def test_a_local_server_that_states_no_slots_gets_concurrency_requests_at_once(
    long_vault: Path, model_env: FakeOpenAI
) -> None:
    import threading

    (long_vault / ".summarizer.toml").write_text('unsupported_evidence = "keep"\nconcurrency = 2\n')
    model_env.context_limit = LIMIT
    inside, lock, pair = [0], threading.Lock(), threading.Event()

    def overlapping(body: dict[str, Any]) -> fo.Behaviour:
        if "This is part" in body["messages"][1]["content"]:
            with lock:
                inside[0] += 1
                if inside[0] >= 2:
                    pair.set()
            pair.wait(10)  # the first part waits for a second one to be in flight too
            with lock:
                inside[0] -= 1
        return answer(body)

    model_env.default = fo.responder(overlapping)
    result = cli("summarise", long_vault / "Inbox" / "2000-03-14 - Bmr005.txt", "--vault", long_vault)
    assert result.exit_code == 0, result.stderr
    assert len(model_env.chat_requests()) >= 3
    assert model_env.stats.max_in_flight == 2, "one thread per part, but only `concurrency` requests at once"
