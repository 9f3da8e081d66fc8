"""`summarizer inbox --batch` / `--collect`: the OpenAI Batch API path, against the loopback server.

The fake server implements /v1/files and /v1/batches; `complete_batches()` runs the queued
lines through the same behaviours as live chat requests and shuffles the output lines, so
matching on custom_id is exercised every time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli
from tests.test_inbox import (
    by_topic,
    check_vault,
    extraction,
    frontmatter,
    inbox_names,
    inbox_vault,
    meeting,
    notes,
    spawn_inbox,
    state,
    topic_of,
)

TOPICS = ["kiwi", "fig", "lime"]
FILES = {f"2026-03-0{i} - {t}.txt": meeting(t) for i, t in enumerate(TOPICS, 1)}
PRICES = json.dumps({"test-model": {"input": 1.0, "output": 2.0}})


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUMMARIZER_INBOX_SETTLE", "0")
    monkeypatch.setenv("SUMMARIZER_PRICES", PRICES)


def priced(body: dict[str, Any]) -> fo.Behaviour:
    return fo.reply(extraction(f"{topic_of(body).title()} review"), prompt_tokens=1000, completion_tokens=100)


def batch_lines(fake: FakeOpenAI) -> list[dict[str, Any]]:
    files = [f for f in fake.files.values() if f.purpose == "batch"]
    return [json.loads(line) for f in files for line in f.data.decode().splitlines()]


def test_batch_submits_the_pipelines_own_request_and_returns(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = inbox_vault(tmp_path / "vault", FILES)
    model_env.default = fo.responder(priced)

    result = cli("inbox", "--vault", vault, "--batch", "--json")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert model_env.chat_requests() == []
    assert inbox_names(vault) == sorted(FILES)  # nothing moves until the results are in
    report = json.loads(result.stdout)
    assert report["batch"]["requests"] == 3
    assert all("submitted in batch" in i["detail"] for i in report["items"])
    (batch,) = model_env.batches.values()
    assert batch["endpoint"] == "/v1/chat/completions" and batch["completion_window"] == "24h"
    lines = batch_lines(model_env)
    expected_ids = {hashlib.sha256(t.encode()).hexdigest()[:32] for t in FILES.values()}
    assert {line["custom_id"] for line in lines} == expected_ids
    fmt = lines[0]["body"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert state(vault, "SELECT status, requests FROM inbox_batches") == [("submitted", 3)]

    # The body is exactly what a normal run sends for the same transcript.
    twin = inbox_vault(tmp_path / "twin", {"2026-03-02 - fig.txt": FILES["2026-03-02 - fig.txt"]})
    assert cli("inbox", "--vault", twin).exit_code == 0
    (live,) = model_env.chat_requests()
    (queued,) = [line["body"] for line in lines if "fig" in topic_of(line["body"])]
    assert queued["messages"] == live["messages"]
    assert queued["response_format"] == live["response_format"]
    ignored = ("messages", "response_format", "stream")  # the SDK adds stream=False to live calls
    assert {k: v for k, v in queued.items() if k not in ignored} == {k: v for k, v in live.items() if k not in ignored}


def test_collect_writes_notes_from_the_batch_with_no_call_at_half_price(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = inbox_vault(tmp_path / "vault", FILES)
    model_env.default = fo.responder(priced)
    assert cli("inbox", "--vault", vault, "--batch").exit_code == 0

    waiting = cli("inbox", "--vault", vault, "--json")  # before the batch finished
    assert waiting.exit_code == 0
    assert all("waiting for batch" in i["detail"] for i in json.loads(waiting.stdout)["items"])
    assert model_env.chat_requests() == [] and inbox_names(vault) == sorted(FILES)

    assert len(model_env.complete_batches()) == 1
    result = cli("inbox", "--vault", vault, "--collect", "--json")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert model_env.chat_requests() == []  # only the batch's lines were ever answered
    report = json.loads(result.stdout)
    assert report["totals"]["done"] == 3
    assert report["totals"]["cost"] == pytest.approx(3 * (1000 * 1.0 + 100 * 2.0) / 1e6 / 2)
    assert any("3 result(s) collected" in line for line in report["batches"])
    # Output lines come back shuffled: each note still belongs to its own transcript.
    for note in notes(vault):
        topic = note.name.split(" - ")[1].split(" ")[0].lower()
        assert frontmatter(note)["source_ref"].endswith(f"{topic}.txt")
    assert check_vault(vault, FILES) == dict.fromkeys(FILES, "archive")


def test_failed_or_invalid_lines_fall_back_to_normal_processing(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = inbox_vault(tmp_path / "vault", FILES)
    model_env.default = fo.responder(
        lambda body: (
            fo.schema_violation({"title": 1})
            if topic_of(body) == "fig"
            else fo.server_error()
            if topic_of(body) == "lime"
            else priced(body)
        )
    )
    assert cli("inbox", "--vault", vault, "--batch").exit_code == 0
    model_env.complete_batches()
    model_env.default = fo.responder(priced)

    result = cli("inbox", "--vault", vault, "--collect", "--json")

    assert result.exit_code == 0, result.stdout
    assert sorted(topic_of(r) for r in model_env.chat_requests()) == ["fig", "lime"]
    assert "2 left for normal processing" in " ".join(json.loads(result.stdout)["batches"])
    errors = dict(state(vault, "SELECT custom_id, error FROM inbox_batch_items WHERE status = 'failed'"))
    assert len(errors) == 2 and any("schema" in e for e in errors.values())
    assert check_vault(vault, FILES) == dict.fromkeys(FILES, "archive")


def test_a_failed_batch_leaves_everything_to_the_normal_path(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = inbox_vault(tmp_path / "vault", FILES)
    model_env.default = fo.responder(by_topic)
    assert cli("inbox", "--vault", vault, "--batch").exit_code == 0
    (batch_id,) = model_env.batches
    model_env.fail_batch(batch_id, "quota exceeded")

    result = cli("inbox", "--vault", vault)

    assert result.exit_code == 0
    assert f"batch {batch_id} failed" in result.stderr
    assert len(model_env.chat_requests()) == 3
    assert state(vault, "SELECT status, error FROM inbox_batches") == [("failed", "quota exceeded")]
    check_vault(vault, FILES)


def test_long_meetings_are_left_for_normal_processing(tmp_path: Path, model_env: FakeOpenAI) -> None:
    long = "".join(f"Alice Moreau: Point {i}: today's topic is plum, with more words.\n" for i in range(400))
    files = {**FILES, "2026-03-09 - long.txt": long}
    vault = inbox_vault(tmp_path / "vault", files, "context_window = 6000\nmax_output_tokens = 1000\n")
    model_env.default = fo.responder(by_topic)

    result = cli("inbox", "--vault", vault, "--batch", "--json")

    items = {i["name"]: i for i in json.loads(result.stdout)["items"]}
    assert "left for a normal run" in items["2026-03-09 - long.txt"]["detail"]
    assert len(batch_lines(model_env)) == 3
    normal = cli("inbox", "--vault", vault, "--json")  # batch still running: only the long one goes
    assert normal.exit_code == 0
    assert inbox_names(vault) == sorted(FILES)
    assert len(model_env.chat_requests()) > 2  # parts plus merge


def test_batch_needs_a_model(tmp_path: Path) -> None:
    vault = inbox_vault(tmp_path / "vault", FILES)
    result = cli("inbox", "--vault", vault, "--batch", "--engine", "offline")
    assert result.exit_code == 2
    assert "--batch needs an OpenAI-compatible model" in result.stderr


@pytest.mark.parametrize(
    ("crash_at", "files_uploaded"),
    [("batch-after-record:1", 1), ("batch-after-upload:1", 2), ("batch-after-create:1", 1)],
)
def test_killed_while_submitting_no_batch_is_lost_or_doubled(
    tmp_path: Path, model_env: FakeOpenAI, crash_at: str, files_uploaded: int
) -> None:
    vault = inbox_vault(tmp_path / "vault", FILES)
    model_env.default = fo.responder(priced)
    run = spawn_inbox(vault, "--batch", crash_at=crash_at)
    run.communicate(timeout=120)
    assert run.returncode == 137

    again = cli("inbox", "--vault", vault, "--batch", "--json")

    assert again.exit_code == 0, again.stdout + again.stderr
    assert len(model_env.batches) == 1, "the batch created before the kill must be adopted, not sent twice"
    assert len([f for f in model_env.files.values() if f.purpose == "batch"]) == files_uploaded
    model_env.complete_batches()
    done = cli("inbox", "--vault", vault, "--collect")
    assert done.exit_code == 0
    assert model_env.chat_requests() == []
    assert check_vault(vault, FILES) == dict.fromkeys(FILES, "archive")


def test_killed_while_collecting_the_next_run_finishes(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = inbox_vault(tmp_path / "vault", FILES)
    model_env.default = fo.responder(priced)
    assert cli("inbox", "--vault", vault, "--batch").exit_code == 0
    model_env.complete_batches()
    run = spawn_inbox(vault, "--collect", crash_at="batch-mid-collect:2")
    run.communicate(timeout=120)
    assert run.returncode == 137
    assert inbox_names(vault) == sorted(FILES)

    result = cli("inbox", "--vault", vault, "--collect")

    assert result.exit_code == 0, result.stdout
    assert model_env.chat_requests() == []
    assert check_vault(vault, FILES) == dict.fromkeys(FILES, "archive")
    assert len(notes(vault)) == 3


def test_collect_leaves_transcripts_that_were_never_batched(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = inbox_vault(tmp_path / "vault", FILES)
    model_env.default = fo.responder(priced)
    assert cli("inbox", "--vault", vault, "--batch").exit_code == 0
    model_env.complete_batches()
    (vault / "Inbox" / "2026-03-04 - pear.txt").write_text(meeting("pear"), encoding="utf-8")

    result = cli("inbox", "--vault", vault, "--collect")

    assert result.exit_code == 0
    assert "1 transcript(s) not from a batch are left for a normal run" in result.stderr
    assert inbox_names(vault) == ["2026-03-04 - pear.txt"] and model_env.chat_requests() == []


def test_collected_results_are_used_even_when_the_vault_changed_while_the_batch_ran(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    """The names the vault offers the model are part of the cache key; a note added in the
    meantime must not turn the batch's half-price answer into a full-price call."""
    vault = inbox_vault(tmp_path / "vault", FILES)
    model_env.default = fo.responder(priced)
    assert cli("inbox", "--vault", vault, "--batch").exit_code == 0
    model_env.complete_batches()
    person = vault / "People" / "Bob Chen.md"
    person.parent.mkdir()
    person.write_text("---\ntype: person\n---\n\n# Bob Chen\n", encoding="utf-8")

    result = cli("inbox", "--vault", vault, "--collect", "--json")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert model_env.chat_requests() == []
    assert json.loads(result.stdout)["totals"]["done"] == 3
    assert check_vault(vault, FILES) == dict.fromkeys(FILES, "archive")


def test_a_template_set_goes_into_its_own_batch_and_its_notes_use_it(tmp_path: Path, model_env: FakeOpenAI) -> None:
    """A batch records one prompt version: transcripts a set applies to are batched apart, with the set's
    instructions, and collecting writes their notes as a normal run with the set would."""
    config = '[templates]\nrules = [{ match = "name:*kiwi*", set = "standup" }]\n'
    vault = inbox_vault(tmp_path / "vault", FILES, config)
    model_env.default = fo.responder(priced)

    submitted = cli("inbox", "--vault", vault, "--batch", "--json")

    assert submitted.exit_code == 0, submitted.stdout + submitted.stderr
    batches = json.loads(submitted.stdout)["submitted"]
    assert sorted(b["requests"] for b in batches) == [1, 2], "one batch per prompt version"
    lines = batch_lines(model_env)
    standup = [line for line in lines if "kiwi" in topic_of(line["body"])]
    others = [line for line in lines if "kiwi" not in topic_of(line["body"])]
    assert all("stand-up" in line["body"]["messages"][0]["content"].lower() for line in standup)
    assert not any("stand-up" in line["body"]["messages"][0]["content"].lower() for line in others)
    assert len(model_env.complete_batches()) == 2
    collected = cli("inbox", "--vault", vault, "--collect", "--json")
    assert collected.exit_code == 0, collected.stdout + collected.stderr
    assert json.loads(collected.stdout)["totals"]["done"] == 3
    assert model_env.chat_requests() == [], "every note from the batches"
    assert check_vault(vault, FILES) == dict.fromkeys(FILES, "archive")
