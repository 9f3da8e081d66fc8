"""Every call counted: the run's report, its `--json` and the call log in state.db agree, failed
items included (issue 12). Driven through the CLI against the loopback server injecting faults."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli
from tests.test_inbox import extraction, inbox_vault, meeting, state, topic_of
from tests.test_long_meetings import ICSI, LIMIT, MERGED, part_answer

PRICES = json.dumps({"test-model": {"input": 1.0, "output": 2.0}, "other-model": {"input": 1.0, "output": 2.0}})


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch, model_env: FakeOpenAI) -> None:
    monkeypatch.setenv("SUMMARIZER_INBOX_SETTLE", "0")
    monkeypatch.setenv("SUMMARIZER_PRICES", PRICES)
    monkeypatch.setenv("SUMMARIZER_MAX_RETRIES", "0")  # one logged row per HTTP exchange, fast


def good(body: dict[str, Any]) -> fo.Behaviour:
    return fo.reply(extraction(f"{topic_of(body).title()} review"), prompt_tokens=1000, completion_tokens=100)


def faulty(body: dict[str, Any]) -> fo.Behaviour:
    """kiwi fine; fig answers invalid JSON every time (two billed completions, then it fails);
    lime gets a 500; plum is repaired (schema violation, then a good answer)."""
    topic = topic_of(body)
    if topic == "fig":
        return fo.invalid_json()
    if topic == "lime":
        return fo.server_error(500)
    if topic == "plum" and "Reply again" not in str(body["messages"][-1]["content"]):
        return fo.schema_violation({"title": 1})
    return good(body)


FILES = {f"2026-03-0{i} - {t}.txt": meeting(t) for i, t in enumerate(["kiwi", "fig", "lime", "plum"], 1)}


def logged(vault: Path, run: int, item: str | None = None) -> tuple[int, int, int, int, float | None]:
    """calls, tokens in/cached/out and cost as the call log has them for a run (or one of its items)."""
    where, params = ("run_id = ?", (run,)) if item is None else ("run_id = ? AND item = ?", (run, item))
    ((calls, prompt, cached, out, cost),) = state(
        vault,
        "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(cached_tokens), 0), "
        f"COALESCE(SUM(completion_tokens), 0), SUM(cost) FROM calls WHERE {where}",
        params,
    )
    return calls, prompt, cached, out, cost


def as_tuple(usage: dict[str, Any]) -> tuple[Any, ...]:
    cost = usage["cost"]
    return (
        usage["calls"],
        usage.get("prompt_tokens", usage.get("tokens_in")),
        usage.get("cached_tokens", usage.get("tokens_cached")),
        usage.get("completion_tokens", usage.get("tokens_out")),
        None if cost is None else pytest.approx(cost, abs=1e-6),
    )


def check_agreement(vault: Path, report: dict[str, Any]) -> int:
    """Totals == sum of the items == rows logged for the run; each item == its own rows."""
    run = report["run"]
    totals = report["totals"]
    items = report["items"]
    keys = ("calls", "prompt_tokens", "cached_tokens", "completion_tokens")
    summed = [sum(i["usage"][k] for i in items) for k in keys]
    assert summed == [totals["calls"], totals["tokens_in"], totals["tokens_cached"], totals["tokens_out"]]
    assert sum(i["usage"]["cost"] or 0 for i in items) == pytest.approx(totals["cost"] or 0, abs=1e-6)
    assert as_tuple(totals) == logged(vault, run)
    for item in items:
        if item.get("path"):
            assert as_tuple(item["usage"]) == logged(vault, run, item["path"])
    ((calls, prompt, cost),) = state(vault, "SELECT calls, prompt_tokens, cost FROM runs WHERE id = ?", (run,))
    assert (calls, prompt) == (totals["calls"], totals["tokens_in"]) and cost == pytest.approx(totals["cost"], abs=1e-6)
    return run


def test_inbox_counts_the_calls_of_failed_items_in_report_json_and_call_log(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    import threading

    vault = inbox_vault(tmp_path / "vault", FILES)
    lime_sent = threading.Event()

    def lime_before_any_answer(body: dict[str, Any]) -> fo.Behaviour:
        # No answer before lime's request is in: its 500 then meets a format not yet seen to work on this
        # server, whichever order the workers send in.
        if topic_of(body) == "lime":
            lime_sent.set()
        lime_sent.wait(10)
        return faulty(body)

    model_env.default = fo.responder(lime_before_any_answer)

    result = cli("inbox", "--vault", vault, "--json")

    assert result.exit_code == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    run = check_agreement(vault, report)
    by_topic = {i["path"].split(" - ")[1].removesuffix(".txt"): i for i in report["items"]}
    assert {t: i["status"] for t, i in by_topic.items()} == {
        "kiwi": "done",
        "fig": "failed",
        "lime": "failed",
        "plum": "done",
    }
    # Both billed completions of the failed transcript count, with tokens and cost.
    assert by_topic["fig"]["usage"]["calls"] == 2 and by_topic["fig"]["usage"]["cost"] > 0
    # A 500 on a format not yet seen to work costs one request in the next format, then fails: every one counts.
    lime_requests = sum(topic_of(body) == "lime" for body in model_env.chat_requests())
    assert by_topic["lime"]["usage"]["calls"] == lime_requests >= 2 and by_topic["lime"]["usage"]["cost"] is None
    assert by_topic["plum"]["usage"]["calls"] == 2  # the repair is paid for too
    # Every request the server answered is one row of this run, and the report counts them all.
    assert report["totals"]["calls"] == len(model_env.chat_requests()) == 5 + lime_requests
    assert state(vault, "SELECT COUNT(*) FROM calls WHERE run_id IS NOT ? ", (run,)) == [(0,)]
    assert state(vault, "SELECT command, status, done, failed FROM runs") == [("inbox", "failed", 2, 2)]


def test_the_inbox_table_totals_are_the_call_log_totals(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = inbox_vault(tmp_path / "vault", FILES)
    model_env.default = fo.responder(faulty)

    result = cli("inbox", "--vault", vault)

    assert result.exit_code == 1
    (run,) = state(vault, "SELECT id FROM runs")
    calls, prompt, cached, out, cost = logged(vault, run[0])
    assert f"{calls} call(s) · tokens in {prompt} (cached {cached}) · out {out}" in result.stdout
    assert f"${cost:.4f}" in result.stdout
    fig = next(line for line in result.stdout.splitlines() if "fig" in line)
    assert re.search(r"\$0\.\d{4}", fig), "the failed item shows what its calls cost"


def test_a_long_meeting_counts_every_part_and_merge_call_even_when_one_part_fails(
    tmp_path: Path, model_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One part at a time: a part still in flight when another fails is abandoned (issue 16), and
    # whether its answer arrives before the process exits is a race this test must not depend on.
    monkeypatch.setenv("SUMMARIZER_CONCURRENCY", "1")
    vault = inbox_vault(tmp_path / "vault", {})
    (vault / "Inbox").mkdir()
    shutil.copyfile(ICSI, vault / "Inbox" / "2000-03-14 - Bmr005.txt")
    model_env.context_limit = LIMIT

    def answer(body: dict[str, Any]) -> fo.Behaviour:
        user = body["messages"][1]["content"]
        match = re.search(r"This is part (\d+) of", user)
        if match and match.group(1) == "2":
            return fo.invalid_json()
        return fo.reply(MERGED if not match else part_answer(int(match.group(1))))

    model_env.default = fo.responder(answer)
    result = cli("inbox", "--vault", vault, "--json")

    assert result.exit_code == 1, result.stdout
    report = json.loads(result.stdout)
    check_agreement(vault, report)
    (item,) = report["items"]
    assert item["status"] == "failed"
    assert item["usage"]["calls"] == len(model_env.chat_requests()) > 2
    labels = {label for (label,) in state(vault, "SELECT label FROM calls")}
    assert any("(part 2/" in label for label in labels), "part calls keep their own label"
    assert state(vault, "SELECT DISTINCT item FROM calls") == [("Inbox/2000-03-14 - Bmr005.txt",)]


def test_batch_results_are_counted_in_the_collecting_run_failed_lines_included(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    files = {f"2026-03-0{i} - {t}.txt": meeting(t) for i, t in enumerate(["kiwi", "fig"], 1)}
    vault = inbox_vault(tmp_path / "vault", files)
    model_env.default = fo.responder(lambda b: fo.schema_violation({"title": 1}) if topic_of(b) == "fig" else good(b))
    submitted = cli("inbox", "--vault", vault, "--batch", "--json")
    assert submitted.exit_code == 0, submitted.stdout
    assert json.loads(submitted.stdout)["totals"]["calls"] == 0  # submitting is not a completion
    model_env.complete_batches()
    model_env.default = fo.responder(good)

    result = cli("inbox", "--vault", vault, "--collect", "--json")

    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    check_agreement(vault, report)
    fig = next(i for i in report["items"] if "fig" in i["path"])
    kiwi = next(i for i in report["items"] if "kiwi" in i["path"])
    assert kiwi["usage"]["calls"] == 1 and kiwi["usage"]["cost"] == pytest.approx((1000 + 200) / 1e6 / 2)
    assert fig["usage"]["calls"] == 2  # the unusable batch line, then the normal call
    modes = sorted(m for (m,) in state(vault, "SELECT mode FROM calls WHERE item LIKE '%fig%'"))
    assert modes == ["batch", "strict"]
    commands = state(vault, "SELECT command FROM runs ORDER BY id")
    assert commands == [("inbox --batch",), ("inbox --collect",)]


def test_summarise_failure_says_what_its_calls_cost_and_logs_them(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = inbox_vault(tmp_path / "vault", {"fig.txt": meeting("fig")})
    model_env.default = fo.invalid_json()

    result = cli("summarise", vault / "Inbox" / "fig.txt", "--vault", vault)

    assert result.exit_code == 1
    *before, last = result.stderr.strip().splitlines()
    assert last.startswith("error: ") and "unusable twice" in last
    assert "2 call(s)" in before[-1]
    ((run, status, failed),) = state(vault, "SELECT id, status, failed FROM runs")
    assert (status, failed) == ("failed", 1)
    assert logged(vault, run)[0] == 2
    assert state(vault, "SELECT status, transcript FROM run_items") == [("failed", "Inbox/fig.txt")]


def test_summarise_usage_is_the_logged_calls(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = inbox_vault(tmp_path / "vault", {"plum.txt": meeting("plum")})
    model_env.default = fo.responder(faulty)

    result = cli("summarise", vault / "Inbox" / "plum.txt", "--vault", vault)

    assert result.exit_code == 0, result.stderr
    ((run,),) = state(vault, "SELECT id FROM runs")
    calls, prompt, cached, out, _ = logged(vault, run)
    assert calls == 2
    assert f"{calls} call(s), {prompt} tokens in ({cached} cached), {out} out" in result.stderr


def test_regenerate_counts_the_calls_of_notes_that_failed(tmp_path: Path, model_env: FakeOpenAI) -> None:
    files = {f"2026-03-0{i} - {t}.txt": meeting(t) for i, t in enumerate(["kiwi", "fig"], 1)}
    vault = inbox_vault(tmp_path / "vault", files)
    model_env.default = fo.responder(good)
    assert cli("inbox", "--vault", vault).exit_code == 0
    model_env.default = fo.responder(lambda b: fo.invalid_json() if topic_of(b) == "fig" else good(b))

    result = cli("regenerate", "--all", "--vault", vault, "--model", "other-model", "--json")

    assert result.exit_code == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    run = report["run"]
    check_agreement(vault, report)
    by_name = {i["name"]: i for i in report["items"]}
    fig = next(i for name, i in by_name.items() if "Fig" in name)
    assert fig["status"] == "failed" and fig["usage"]["calls"] == 2 and fig["usage"]["cost"] > 0
    for name, item in by_name.items():
        assert as_tuple(item["usage"]) == logged(vault, run, name)
    assert state(vault, "SELECT command, failed FROM runs WHERE id = ?", (run,)) == [("regenerate", 1)]
    logged_items = json.loads(cli("log", "--vault", vault, "--run", str(run), "--json").stdout)["items"]
    assert sorted(i["note"] for i in logged_items) == sorted(by_name)
    assert all(i["transcript"].startswith("Inbox/_archive/") for i in logged_items)  # from the note's record


def test_a_batch_result_for_a_file_gone_from_the_inbox_is_in_the_totals_apart(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    files = {f"2026-03-0{i} - {t}.txt": meeting(t) for i, t in enumerate(["kiwi", "fig"], 1)}
    vault = inbox_vault(tmp_path / "vault", files)
    model_env.default = fo.responder(good)
    assert cli("inbox", "--vault", vault, "--batch").exit_code == 0
    model_env.complete_batches()
    (vault / "Inbox" / "2026-03-02 - fig.txt").unlink()  # the person deleted it meanwhile

    result = cli("inbox", "--vault", vault, "--collect", "--json")

    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    (item,) = report["items"]
    assert item["usage"]["calls"] == 1
    assert report["unattributed"]["calls"] == 1
    assert report["totals"]["calls"] == 2 == logged(vault, report["run"])[0]
    assert report["totals"]["cost"] == pytest.approx(2 * (1000 + 200) / 1e6 / 2, abs=1e-6)
    table = cli("log", "--vault", vault, "--calls", "--run", str(report["run"]), "--json")
    assert len(json.loads(table.stdout)["calls"]) == 2
