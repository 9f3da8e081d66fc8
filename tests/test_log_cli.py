"""`summarizer log`: past runs, what they did to each transcript and note, their calls and what
they cost, from the state store, newest first (issue 15). Through the CLI only."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli, make_vault
from tests.test_accounting import FILES, PRICES, faulty, good
from tests.test_inbox import inbox_vault, meeting, state


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch, model_env: FakeOpenAI) -> None:
    monkeypatch.setenv("SUMMARIZER_INBOX_SETTLE", "0")
    monkeypatch.setenv("SUMMARIZER_PRICES", PRICES)
    monkeypatch.setenv("SUMMARIZER_MAX_RETRIES", "0")


@pytest.fixture
def history(tmp_path: Path, model_env: FakeOpenAI) -> Path:
    """An inbox run (kiwi, plum done; fig, lime failed), then a summarise with another model."""
    vault = inbox_vault(tmp_path / "vault", FILES)
    model_env.default = fo.responder(faulty)
    assert cli("inbox", "--vault", vault).exit_code == 1
    (vault / "Later").mkdir()
    (vault / "Later" / "pear.txt").write_text(meeting("pear"), encoding="utf-8")
    model_env.default = fo.responder(good)
    made = cli("summarise", vault / "Later" / "pear.txt", "--vault", vault, "--model", "other-model")
    assert made.exit_code == 0, made.stderr
    return vault


def log_json(vault: Path, *args: str) -> Any:
    result = cli("log", "--vault", vault, "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_items_newest_first_with_transcript_note_model_tokens_cost_and_error(history: Path) -> None:
    items = log_json(history)["items"]

    assert [i["command"] for i in items] == ["summarise", *["inbox"] * 4]
    pear = items[0]
    assert pear["transcript"] == "Later/pear.txt" and pear["note"].startswith("Meetings/")
    assert (pear["model"], pear["outcome"], pear["calls"]) == ("other-model", "done", 1)
    assert pear["prompt_version"] and pear["tokens_in"] == 1000 and pear["tokens_out"] == 100
    assert pear["cost"] == pytest.approx((1000 + 200) / 1e6)
    fig = next(i for i in items if "fig" in (i["transcript"] or ""))
    assert fig["outcome"] == "failed" and "unusable twice" in fig["error"] and fig["note"] is None
    assert fig["calls"] == 2 and fig["cost"] > 0
    stamps = [i["when"] for i in items]
    assert stamps == sorted(stamps, reverse=True)

    plain = cli("log", "--vault", history)
    assert plain.exit_code == 0
    lines = plain.stdout.splitlines()
    assert "Later/pear.txt -> Meetings/" in lines[0] and "other-model" in lines[0] and "$0.0012" in lines[0]
    assert any(line.strip().startswith("error: ") and "unusable twice" in line for line in lines)


def test_filters_failed_note_since_and_count(history: Path) -> None:
    failed = log_json(history, "--failed")["items"]
    assert sorted(i["transcript"].split(" - ")[1] for i in failed) == ["fig.txt", "lime.txt"]
    assert all(i["outcome"] == "failed" for i in failed)

    kiwi = log_json(history, "--note", "Kiwi")["items"]
    assert len(kiwi) == 1 and "kiwi" in kiwi[0]["transcript"]
    assert log_json(history, "--note", "%")["items"] == []  # matched literally, not as a wildcard
    (kiwi_call,) = log_json(history, "--calls", "--note", "Kiwi")["calls"]
    assert "kiwi" in kiwi_call["item"]
    assert log_json(history, "--totals", "--note", "Kiwi")["totals"]["total"]["calls"] == 1

    assert len(log_json(history, "-n", "2")["items"]) == 2
    assert len(log_json(history, "-n", "0")["items"]) == 5
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    assert log_json(history, "--since", tomorrow)["items"] == []
    assert len(log_json(history, "--since", "2020-01-01")["items"]) == 5

    failed_calls = log_json(history, "--calls", "--failed")["calls"]
    assert failed_calls and all(c["error"] and c["outcome"] == "failed" for c in failed_calls)


def test_runs_and_calls_views_agree_with_the_call_log(history: Path) -> None:
    runs = log_json(history, "--runs")["runs"]
    assert [(r["command"], r["status"], r["done"], r["failed"]) for r in runs] == [
        ("summarise", "done", 1, 0),
        ("inbox", "failed", 2, 2),
    ]
    calls = log_json(history, "--calls", "-n", "0")["calls"]
    assert len(calls) == state(history, "SELECT COUNT(*) FROM calls")[0][0] == sum(r["calls"] for r in runs)
    assert [c["id"] for c in calls] == sorted((c["id"] for c in calls), reverse=True)
    inbox_run = runs[1]["run"]
    assert sum(c["tokens_in"] for c in calls if c["run"] == inbox_run) == runs[1]["tokens_in"]
    plain = cli("log", "--vault", history, "--calls", "-n", "1").stdout
    assert "  Later/pear.txt  other-model" in plain and str(history) not in plain  # vault-relative
    only = log_json(history, "--run", str(inbox_run))["items"]
    assert len(only) == 4 and {i["run"] for i in only} == {inbox_run}


def test_totals_per_day_and_per_model(history: Path) -> None:
    totals = log_json(history, "--totals")["totals"]

    (day,) = totals["per_day"]
    assert [(day["day"],)] == state(history, "SELECT DISTINCT substr(ts, 1, 10) FROM calls")
    models = {m["model"]: m for m in totals["per_model"]}
    assert set(models) == {"test-model", "other-model"} and models["other-model"]["calls"] == 1
    all_calls = state(history, "SELECT COUNT(*), SUM(prompt_tokens), SUM(cost) FROM calls")[0]
    assert totals["total"]["calls"] == day["calls"] == all_calls[0]
    assert totals["total"]["tokens_in"] == all_calls[1]
    assert totals["total"]["cost"] == pytest.approx(all_calls[2], abs=1e-6)
    assert sum(m["cost"] or 0 for m in models.values()) == pytest.approx(all_calls[2], abs=1e-6)

    plain = cli("log", "--vault", history, "--totals")
    assert plain.exit_code == 0
    assert "per day:" in plain.stdout and "per model:" in plain.stdout
    assert f"total: {all_calls[0]} call(s), tokens in {all_calls[1]}" in plain.stdout


def test_a_terminal_gets_a_table(history: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    result = cli("log", "--vault", history, "--runs")
    assert result.exit_code == 0
    assert "┃" in result.stdout or "│" in result.stdout
    assert "summarise" in result.stdout and "inbox" in result.stdout


def test_a_vault_with_no_state_logs_nothing_and_creates_nothing(tmp_path: Path) -> None:
    vault = make_vault(tmp_path / "vault")
    result = cli("log", "--vault", vault)
    assert result.exit_code == 0 and "nothing logged" in result.stdout
    assert log_json(vault, "--runs") == {"runs": []}
    assert log_json(vault, "--totals")["totals"]["total"]["calls"] == 0
    assert not (vault / ".summarizer").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "yesterday"), "--since must be YYYY-MM-DD"),
        (("--runs", "--calls"), "one at a time"),
        (("-n", "-1"), "-n must be 0"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    vault = make_vault(tmp_path / "vault")
    result = cli("log", "--vault", vault, *args)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line


def test_a_killed_run_counts_as_failed_and_shows_unfinished(tmp_path: Path, model_env: FakeOpenAI) -> None:
    from tests.test_inbox import spawn_inbox

    vault = inbox_vault(tmp_path / "vault", {"2026-03-02 - kiwi.txt": meeting("kiwi")})
    model_env.default = fo.responder(good)
    killed = spawn_inbox(vault, crash_at="after-plan:1")  # exits at once, like kill -9, after its call
    _, err = killed.communicate(timeout=60)
    assert killed.returncode == 137, err
    [run] = log_json(vault, "--runs", "--failed")["runs"]
    assert run["command"] == "inbox" and run["status"] == "unfinished" and run["calls"] == 1


def test_the_run_holding_the_vault_lock_is_running_not_failed(tmp_path: Path) -> None:
    from summarizer.store import Store
    from summarizer.vault import Vault
    from summarizer.vaultlock import vault_lock

    vault = make_vault(tmp_path / "vault", "")
    store = Store(Vault.open(vault).state_dir / "state.db")
    try:
        store.run_begin("inbox", "openai", "test-model", "p1")  # killed long ago: never finished
        store.run_begin("watch", "openai", "test-model", "p1")  # this one is under way
    finally:
        store.close()
    with vault_lock(Vault.open(vault), wait=False):
        runs = log_json(vault, "--runs")["runs"]
        failed = log_json(vault, "--runs", "--failed")["runs"]
    assert [(r["command"], r["status"]) for r in runs] == [("watch", "running"), ("inbox", "unfinished")]
    assert [r["command"] for r in failed] == ["inbox"]
    assert [r["status"] for r in log_json(vault, "--runs")["runs"]] == ["unfinished", "unfinished"], "lock gone"
