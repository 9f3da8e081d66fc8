"""Structured output, retries and timeouts against the local servers people run.

The loopback server plays each server's documented answers (`fake.server = ...`): llama-cpp-python
answers `json_schema` with a 500, LM Studio answers `json_object` with a 400, the others take both.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from summarizer.config import load_settings
from summarizer.llm import ModelClient, Prompt
from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli, make_vault, snapshot
from tests.test_summarise import GOOD, NAME, TRANSCRIPT


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    return make_vault(tmp_path / "vault", 'owner = "Alice Moreau"\n', {f"Inbox/{NAME}": TRANSCRIPT})


def summarise(vault: Path, *extra: str, name: str = NAME) -> Any:
    return cli("summarise", vault / "Inbox" / name, "--vault", vault, *extra)


def formats(fake: FakeOpenAI) -> list[Any]:
    return [body.get("response_format", {}).get("type") for body in fake.chat_requests()]


def calls(vault: Path) -> list[tuple[str, str | None]]:
    db = sqlite3.connect(vault / ".summarizer" / "state.db")
    return [(row[0], row[1]) for row in db.execute("SELECT mode, error FROM calls ORDER BY id")]


@pytest.mark.parametrize("server", ["openai", "llama-server", "ollama", "lmstudio", "vllm"])
def test_servers_that_take_json_schema_get_a_strict_schema_in_one_request(
    vault: Path, model_env: FakeOpenAI, server: str
) -> None:
    model_env.server = server
    model_env.default = fo.reply(GOOD)
    result = summarise(vault)
    assert result.exit_code == 0, result.stderr
    (body,) = model_env.chat_requests()
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True


def test_llama_cpp_python_500_for_json_schema_moves_to_its_schema_constrained_json_object(
    vault: Path, model_env: FakeOpenAI
) -> None:
    model_env.server = "llama-cpp-python"
    model_env.default = fo.reply(GOOD)
    result = summarise(vault)
    assert result.exit_code == 0, result.stderr
    # one refused request (not retried, although it is a 500), then the format it takes
    assert formats(model_env) == ["json_schema", "json_object"]
    second = model_env.chat_requests()[1]["response_format"]
    assert second["schema"]["title"] == "MeetingExtraction", "its own `schema` extension constrains the answer"
    logged = calls(vault)
    assert logged[0][0] == "strict" and "refused this response format" in str(logged[0][1])
    assert "Input should be 'text' or 'json_object'" in str(logged[0][1])
    # remembered per server and model: the next run asks in that format straight away
    (vault / "Inbox" / "2026-03-03 - Other.txt").write_text(TRANSCRIPT + "Bob Chen: One more thing.\n")
    assert summarise(vault, name="2026-03-03 - Other.txt").exit_code == 0
    assert formats(model_env) == ["json_schema", "json_object", "json_object"]


def test_lm_studio_refusing_json_object_goes_to_the_prompt_and_says_what_was_refused(
    vault: Path, model_env: FakeOpenAI
) -> None:
    model_env.server = "lmstudio"
    strict_refused = fo.bad_request(
        "Invalid schema for response_format: 'default' is not permitted.", "response_format"
    )
    model_env.enqueue(strict_refused, strict_refused)
    model_env.default = fo.reply("```json\n" + json.dumps(GOOD) + "\n```")
    result = summarise(vault)
    assert result.exit_code == 0, result.stderr
    # strict and plain schema refused by this model, json_object refused by LM Studio itself: two
    # json_object modes are skipped after one refusal, the prompt mode answers
    assert formats(model_env) == ["json_schema", "json_schema", "json_object", None]


def test_structured_output_setting_pins_a_mode_and_a_refusal_names_it(vault: Path, model_env: FakeOpenAI) -> None:
    model_env.server = "lmstudio"
    (vault / ".summarizer.toml").write_text('owner = "Alice Moreau"\nstructured_output = "json"\n')
    before = snapshot(vault)
    result = summarise(vault)
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "refused the response format 'json' chosen by the structured_output setting" in line
    assert "must be 'json_schema' or 'text'" in line and NAME in line
    assert len(model_env.chat_requests()) == 1
    assert {k: v for k, v in snapshot(vault).items() if "summarizer" not in k} == {
        k: v for k, v in before.items() if "summarizer" not in k
    }


def test_pinned_prompt_mode_overrides_a_remembered_one(vault: Path, model_env: FakeOpenAI) -> None:
    model_env.server = "llama-cpp-python"
    model_env.default = fo.reply(GOOD)
    assert summarise(vault).exit_code == 0  # learns json_object_schema
    (vault / ".summarizer.toml").write_text('owner = "Alice Moreau"\nstructured_output = "prompt"\n')
    (vault / "Inbox" / "b.txt").write_text(TRANSCRIPT + "Bob Chen: Bye.\n")
    assert summarise(vault, name="b.txt").exit_code == 0
    assert formats(model_env) == ["json_schema", "json_object", None]


def test_unknown_settings_value_is_a_config_error(vault: Path, model_env: FakeOpenAI) -> None:
    (vault / ".summarizer.toml").write_text('structured_output = "xml"\n')
    result = summarise(vault)
    assert result.exit_code == 2 and "structured_output" in result.stderr
    assert model_env.chat_requests() == []


def test_a_500_in_unknown_words_costs_one_extra_request_in_the_next_format(
    vault: Path, model_env: FakeOpenAI
) -> None:
    model_env.enqueue(fo.status(500, "Internal Server Error"))
    model_env.default = fo.reply(GOOD)
    result = summarise(vault)
    assert result.exit_code == 0, result.stderr
    assert len(model_env.chat_requests()) == 2
    assert model_env.chat_requests()[1]["response_format"]["json_schema"]["strict"] is False


def test_each_retry_is_recorded_in_the_call_log(vault: Path, model_env: FakeOpenAI) -> None:
    (vault / ".summarizer.toml").write_text('owner = "Alice Moreau"\nstructured_output = "strict"\n')
    model_env.enqueue(fo.server_error(503), fo.rate_limited(0.01), fo.reply(GOOD))
    result = summarise(vault)
    assert result.exit_code == 0, result.stderr
    assert len(model_env.chat_requests()) == 3
    errors = [error for _, error in calls(vault)]
    assert "retry 1 of 2" in str(errors[0]) and "503" in str(errors[0])
    assert "retry 2 of 2" in str(errors[1]) and "429" in str(errors[1])
    assert errors[2] is None


def test_a_timed_out_generation_is_not_sent_again(
    vault: Path, model_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUMMARIZER_TIMEOUT", "1")  # waits 1 s + 5 answer tokens / 10 per s
    (vault / ".summarizer.toml").write_text('owner = "Alice Moreau"\nmax_output_tokens = 5\n')
    model_env.default = fo.delayed(30, fo.reply(GOOD))
    before = snapshot(vault)
    result = cli("summarise", vault / "Inbox" / NAME, "--vault", vault)
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "did not answer within" in line and "not re-sent" in line and NAME in line
    assert len(model_env.chat_requests()) == 1, "the server may still be generating: never a second copy"
    assert "not re-sent" in str(calls(vault)[-1][1])
    assert {k for k in snapshot(vault) if not k.startswith(".summarizer")} == {
        k for k in before if not k.startswith(".summarizer")
    }


def test_the_read_timeout_grows_with_the_answer_size(monkeypatch: pytest.MonkeyPatch) -> None:
    from summarizer.servers import SLOWEST_TOKENS_PER_SECOND, generation_timeout

    assert generation_timeout(120, 2048) == 120 + 2048 / SLOWEST_TOKENS_PER_SECOND
    assert generation_timeout(120, 4096) > generation_timeout(120, 512)


def test_the_mode_that_worked_is_remembered_without_a_store(fake_openai: FakeOpenAI) -> None:
    """`eval` keeps no state database; it still probes a server only once per process."""
    fake_openai.server = "llama-cpp-python"
    fake_openai.default = fo.reply(GOOD)
    env = {"OPENAI_BASE_URL": fake_openai.base_url, "SUMMARIZER_MODEL": "eval-model", "SUMMARIZER_MAX_RETRIES": "2"}
    client = ModelClient(load_settings(None, env=env))
    prompt = Prompt("system", "system with schema", TRANSCRIPT)
    assert client.extract(prompt, label="a").mode == "json_object_schema"
    assert client.extract(prompt, label="b").mode == "json_object_schema"
    assert formats(fake_openai) == ["json_schema", "json_object", "json_object"]


def test_truncation_repair_never_asks_for_more_than_the_window(vault: Path, model_env: FakeOpenAI) -> None:
    (vault / ".summarizer.toml").write_text('owner = "Alice Moreau"\ncontext_window = 4096\n')
    model_env.server = "llama-server"
    model_env.context_limit = 4096
    model_env.enqueue(fo.truncated(), fo.reply(GOOD))
    result = summarise(vault)
    assert result.exit_code == 0, result.stderr
    first, second = model_env.chat_requests()
    assert second["max_tokens"] > first["max_tokens"]
    assert second["max_tokens"] + fo.count_prompt_tokens(second) <= 4096


def test_a_part_that_fails_for_good_stops_the_other_parts_at_once(tmp_path: Path, model_env: FakeOpenAI) -> None:
    import re
    import shutil
    import threading

    config = 'structured_output = "strict"\nconcurrency = 2\nunsupported_evidence = "keep"\n'
    vault = make_vault(tmp_path / "vault", config)
    (vault / "Inbox").mkdir()
    name = "2000-03-14 - Bmr005.txt"
    shutil.copyfile(Path(__file__).parent / "data" / "corpus" / "icsi_Bmr005.txt", vault / "Inbox" / name)
    model_env.context_limit = 8192
    second_running, release = threading.Event(), threading.Event()

    def answer(body: dict[str, Any]) -> fo.Behaviour:
        part = int(re.search(r"This is part (\d+) of", body["messages"][1]["content"]).group(1))  # type: ignore[union-attr]
        if part == 1:
            second_running.wait(10)  # fail only once the sibling is busy on the server
            return fo.bad_request("the model crashed on this input")
        second_running.set()
        release.wait(60)  # still generating when the command gives up
        return fo.reply(GOOD)

    model_env.default = fo.responder(answer)
    plan = cli("summarise", vault / "Inbox" / name, "--vault", vault, "--dry-run")
    assert int(re.search(r"\((\d+) parts", plan.stdout).group(1)) >= 3  # type: ignore[union-attr]
    try:
        result = cli("summarise", vault / "Inbox" / name, "--vault", vault)
        assert model_env.stats.in_flight == 1, "returned while the sibling part was still running: abandoned"
    finally:
        release.set()
    assert result.exit_code == 1
    assert "part 1/" in result.stderr and "the model crashed on this input" in result.stderr
    assert len(model_env.chat_requests()) == 2, "parts not started yet were never sent"


@pytest.mark.parametrize("window", [2048, 3072, 4096])
def test_small_windows_get_a_compact_prompt_and_every_request_fits(
    tmp_path: Path, model_env: FakeOpenAI, window: int
) -> None:
    import re
    import shutil

    vault = make_vault(tmp_path / "vault", f'context_window = {window}\nunsupported_evidence = "keep"\n')
    (vault / "Inbox").mkdir()
    name = "2000-03-14 - Bmr005.txt"
    shutil.copyfile(Path(__file__).parent / "data" / "corpus" / "icsi_Bmr005.txt", vault / "Inbox" / name)
    model_env.server = "llama-cpp-python"
    model_env.context_limit = window
    model_env.token_ratio = 1.1  # the model's own tokenizer counts 10% more than o200k
    plan = cli("summarise", vault / "Inbox" / name, "--vault", vault, "--dry-run")
    assert plan.exit_code == 0, plan.stderr
    assert re.search(r"calls: \d+ \(\d+ parts, joined here\)", plan.stdout)
    parts = int(re.search(r"\((\d+) parts", plan.stdout).group(1))  # type: ignore[union-attr]
    model_env.default = fo.responder(
        lambda body: fo.reply({**GOOD, "action_items": [], "decisions": []}, completion_tokens=100)
    )
    result = cli("summarise", vault / "Inbox" / name, "--vault", vault)
    assert result.exit_code == 0, result.stderr
    sent = [r for r in model_env.requests if r.path.endswith("/chat/completions")]
    assert all(r.response_status in (200, 500) for r in sent), "no request overflowed the window"
    answered = [r for r in sent if r.response_status == 200]
    assert len(answered) >= parts
    for request in answered:
        assert (request.prompt_tokens_counted or 0) + request.json["max_tokens"] <= window
        assert "Fields:" in request.json["messages"][0]["content"], "the compact instructions"


def test_dry_run_says_why_no_plan_fits_and_names_the_file(vault: Path, model_env: FakeOpenAI) -> None:
    (vault / ".summarizer.toml").write_text("context_window = 1024\n")
    result = summarise(vault, "--dry-run")
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert NAME.removesuffix(".txt") in line and "no plan fits" in line and "1024-token window" in line
    assert model_env.chat_requests() == []


def test_a_bad_answer_is_one_short_line_in_the_inbox_table_with_details_in_the_call_log(
    tmp_path: Path, model_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUMMARIZER_INBOX_SETTLE", "0")  # no waiting for the file to settle
    vault = make_vault(tmp_path / "vault", "", {f"Inbox/{NAME}": TRANSCRIPT})
    wrong = {**GOOD, "note_type": "meeting", "participants": "Alice", "action_items": "none", "related": 3}
    model_env.default = fo.schema_violation(wrong)
    result = cli("inbox", "--vault", vault)
    assert result.exit_code == 1
    table = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(table) == 1 and "unusable twice" in table[0], "the error is shown once, on one line"
    assert table[0].count("more)") <= 1 and "then" not in table[0], "the same problem is not repeated"
    logged = [error for _, error in calls(vault) if error]
    assert logged and all("participants" in error and "related" in error for error in logged), "details in the log"


def test_a_gateway_timeout_is_not_re_sent_since_the_server_may_still_be_generating(
    vault: Path, model_env: FakeOpenAI
) -> None:
    model_env.enqueue(fo.server_error(504))
    model_env.default = fo.reply(GOOD)
    result = summarise(vault)
    assert result.exit_code == 1
    assert len(model_env.chat_requests()) == 1
    assert "504" in result.stderr


@pytest.mark.parametrize("status", [502, 503])
def test_a_server_that_is_down_is_retried_in_the_same_format_never_downgraded(
    vault: Path, model_env: FakeOpenAI, status: int
) -> None:
    model_env.enqueue(fo.server_error(status))
    model_env.default = fo.reply(GOOD)
    result = summarise(vault)
    assert result.exit_code == 0, result.stderr
    strict = [body["response_format"]["json_schema"]["strict"] for body in model_env.chat_requests()]
    assert strict == [True, True]  # the retry kept the strict schema: an outage says nothing of formats
