"""`summarizer eval`: the same command scores the offline engine and a real model."""

from __future__ import annotations

import json
from pathlib import Path

from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli

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
