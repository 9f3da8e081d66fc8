"""`summarizer eval`: the same command scores the offline engine and a real model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli, make_vault

EVAL_DATA = Path(__file__).parent / "data" / "eval"

ANSWER = {
    "title": "Stand-up",
    "meeting_date": None,
    "note_type": "internal",
    "account": None,
    "account_category": None,
    "participants": [],
    "summary": "The team gave status updates.",
    "action_items": [],
    "decisions": [],
    "key_information": [],
    "related": [],
}


def test_offline_eval_prints_a_table_with_baseline() -> None:
    result = cli("eval", EVAL_DATA)
    assert result.exit_code == 0, result.stderr
    assert "lead R1" in result.stdout and "ALL (3/3 ok)" in result.stdout
    assert "no model configured" in result.stderr


def test_eval_json_is_machine_readable() -> None:
    result = cli("eval", EVAL_DATA, "--json")
    report = json.loads(result.stdout)
    assert len(report["cases"]) == 3
    assert all("rouge" in json.dumps(case).lower() for case in report["cases"])


def test_eval_with_a_model_counts_tokens(model_env: FakeOpenAI) -> None:
    model_env.default = fo.reply(ANSWER, prompt_tokens=1000, completion_tokens=50)
    result = cli("eval", EVAL_DATA / "golden_standup", "--json")
    assert result.exit_code == 0, result.stderr
    assert len(model_env.chat_requests()) == 1
    assert '"prompt_tokens": 1000' in result.stdout


def test_eval_missing_folder() -> None:
    result = cli("eval", "/nonexistent/folder")
    assert result.exit_code == 2 and "no such folder" in result.stderr


def test_a_folder_without_references_is_a_usage_error(tmp_path: Path) -> None:
    """README's old example (`eval golden/`) printed "ALL (0/0 ok)" and exited 0."""
    (tmp_path / "case").mkdir()
    (tmp_path / "case" / "transcript.txt").write_text("Ann: I'll send the report tomorrow.\n", encoding="utf-8")
    result = cli("eval", tmp_path)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()  # one line, before any engine notice
    assert line.startswith("error:") and str(tmp_path) in line and "no evaluation cases" in line
    assert result.stdout == ""


def test_failed_cases_exit_1_and_keep_the_table_narrow(tmp_path: Path) -> None:
    shutil.copytree(EVAL_DATA / "golden_standup", tmp_path / "good")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "reference.json").write_text(json.dumps({"summary": "x", "action_items": []}), encoding="utf-8")
    (broken / "meeting.vtt").write_text("WEBVTT\n\n" + "garbage " * 200, encoding="utf-8")
    result = cli("eval", tmp_path)
    assert result.exit_code == 1, result.stderr
    assert "1 of 2 case(s) failed" in result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    error_row = next(line for line in lines if "ERROR" in line)
    score_rows = [line for line in lines if line.startswith(("good", "ALL"))]
    assert len(error_row) <= max(len(line) for line in score_rows)  # the message is cut, not the table widened
    assert "…" in error_row or len(error_row) < 160
    full = json.loads(cli("eval", tmp_path, "--json").stdout)
    assert any(case["error"] and len(case["error"]) >= 20 for case in full["cases"])


def test_eval_json_carries_noise_figures() -> None:
    report = json.loads(cli("eval", EVAL_DATA, "--json").stdout)
    noise = report["overall"]["noise"]
    assert set(noise) >= {"items", "pronoun", "short", "question", "duplicate"}
    assert all(case["noise"] is not None for case in report["cases"])


def test_eval_with_a_vault_remembers_the_response_format(tmp_path: Path, model_env: FakeOpenAI) -> None:
    """Like summarise: a server that refused json_schema is not asked for it again."""
    vault = make_vault(tmp_path / "vault")
    model_env.enqueue(fo.reject_response_format("json_schema"), fo.reject_response_format("json_schema"))
    model_env.enqueue(fo.reply(ANSWER))
    first = cli("eval", EVAL_DATA / "golden_standup", "--vault", vault)
    assert first.exit_code == 0, first.stderr
    model_env.enqueue(fo.reply(ANSWER))
    second = cli("eval", EVAL_DATA / "golden_standup", "--vault", vault)
    assert second.exit_code == 0, second.stderr
    assert model_env.chat_requests()[-1]["response_format"] == {"type": "json_object"}


def test_a_broken_reference_file_is_one_line_naming_it(tmp_path: Path) -> None:
    case = tmp_path / "cases" / "one"
    case.mkdir(parents=True)
    (case / "meeting.txt").write_text("Alice: We ship on Friday.\nBob: I'll send the notes.\n", encoding="utf-8")
    (case / "reference.json").write_text('{"summary": ', encoding="utf-8")
    result = cli("eval", tmp_path / "cases", "--engine", "offline")
    assert result.exit_code == 1
    assert "reference.json: cannot read reference" in result.stderr
    assert "Traceback" not in result.stderr
