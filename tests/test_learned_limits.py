"""What a server teaches the tool about itself, kept per base URL and model (issues 14 and 16).

A server whose window is smaller than the tool assumed refuses one request, stating its limit: the
transcript is planned again within it, and later runs plan with it from the start. A local server's
own routes (llama.cpp `/props`, a tokenize route) are asked once per endpoint on a real run, never on
a dry run; `summarizer doctor` stores what it finds too.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli, make_vault
from tests.test_summarise import GOOD, NAME, TRANSCRIPT

ICSI = Path(__file__).parent / "data" / "corpus" / "icsi_Bmr005.txt"
LONG = "2000-03-14 - Bmr005.txt"


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    return make_vault(tmp_path / "vault", 'owner = "Alice Moreau"\n', {f"Inbox/{NAME}": TRANSCRIPT})


def summarise(vault: Path, name: str = NAME, *extra: str) -> Any:
    return cli("summarise", vault / "Inbox" / name, "--vault", vault, *extra)


def chat(fake: FakeOpenAI) -> list[fo.RecordedRequest]:
    return [r for r in fake.requests if r.path.endswith("/chat/completions")]


def another(vault: Path, name: str = "2026-03-03 - Other.txt") -> str:
    (vault / "Inbox" / name).write_text(TRANSCRIPT + "Bob Chen: One more thing before we go.\n")
    return name


def stored(vault: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(vault / ".summarizer" / "state.db") as db:
        return db.execute("SELECT endpoint, context_window, token_ratio, slots, probed FROM server_limits").fetchall()


@pytest.mark.parametrize(
    ("server", "route"),
    [
        ("llama-server", "/props"),
        ("vllm", "/v1/models"),
        ("lmstudio", "/api/v0/models"),
        ("ollama", "/api/show"),
    ],
)
def test_a_server_stating_its_window_on_its_routes_is_planned_for_from_the_first_request(
    vault: Path, model_env: FakeOpenAI, server: str, route: str
) -> None:
    model_env.server = server
    model_env.context_limit = 2048  # the tool assumes 8192 for a model it does not know
    model_env.default = fo.reply(GOOD)

    result = summarise(vault)

    assert result.exit_code == 0, result.stderr
    assert route in [r.path for r in model_env.requests], "asked before the first request"
    assert all(r.response_status == 200 for r in chat(model_env)), "no request refused as too long"
    for request in chat(model_env):
        assert (request.prompt_tokens_counted or 0) + request.json["max_tokens"] <= 2048
    ((_, window, *_),) = stored(vault)
    assert window == 2048


@pytest.mark.parametrize("server", ["openai", "llama-cpp-python"])
def test_a_window_smaller_than_assumed_costs_one_refused_request_then_is_remembered(
    vault: Path, model_env: FakeOpenAI, server: str
) -> None:
    model_env.server = server
    model_env.context_limit = 2048  # the tool assumes 8192 for a model it does not know
    model_env.default = fo.reply(GOOD)

    result = summarise(vault)

    assert result.exit_code == 0, result.stderr
    statuses = [r.response_status for r in chat(model_env)]
    assert statuses[0] == 400 and statuses.count(400) == 1, statuses
    assert statuses[-1] == 200
    for request in chat(model_env)[1:]:
        assert (request.prompt_tokens_counted or 0) + request.json["max_tokens"] <= 2048
    ((endpoint, window, *_),) = stored(vault)
    assert endpoint == f"{model_env.base_url}|test-model" and window == 2048

    before = len(chat(model_env))
    assert summarise(vault, another(vault)).exit_code == 0
    later = chat(model_env)[before:]
    assert later and all(r.response_status == 200 for r in later), "the next run sends no oversized request"

    before = len(chat(model_env))
    again = summarise(vault, NAME, "--out", "-")
    assert again.exit_code == 0 and len(chat(model_env)) == before, "the first answer is still found in the cache"
    assert "cache (no model call)" in again.stderr


def test_llama_server_stating_n_ctx_after_a_restart_with_a_smaller_window(vault: Path, model_env: FakeOpenAI) -> None:
    model_env.server = "llama-server"
    model_env.context_limit = 8192
    model_env.default = fo.reply(GOOD)
    assert summarise(vault).exit_code == 0  # /props said 8192: learned without a refused request
    assert all(r.response_status == 200 for r in chat(model_env))
    assert stored(vault)[0][1] == 8192

    model_env.context_limit = 2048  # restarted with `-c 2048`: its error says n_ctx
    before = len(chat(model_env))
    result = summarise(vault, another(vault))

    assert result.exit_code == 0, result.stderr
    statuses = [r.response_status for r in chat(model_env)[before:]]
    assert statuses[0] == 400 and statuses.count(400) == 1 and statuses[-1] == 200
    assert stored(vault)[0][1] == 2048
    assert [r.path for r in model_env.requests].count("/props") == 1, "its routes are asked once per endpoint"


def test_an_overflow_that_states_no_limit_names_the_setting(vault: Path, model_env: FakeOpenAI) -> None:
    model_env.enqueue(
        fo.bad_request("This request exceeds the model's context length.", code="context_length_exceeded")
    )
    result = summarise(vault)
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "context_window" in line and NAME in line
    assert len(chat(model_env)) == 1, "nothing to re-plan with: no second request"


def test_the_context_window_setting_wins_over_what_the_server_says(vault: Path, model_env: FakeOpenAI) -> None:
    (vault / ".summarizer.toml").write_text('owner = "Alice Moreau"\ncontext_window = 8192\n')
    model_env.server = "vllm"
    model_env.context_limit = 2048
    model_env.default = fo.reply(GOOD)
    result = summarise(vault)
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "2048" in line and "context_window" in line
    assert len(chat(model_env)) == 1


def test_dry_run_plans_with_what_was_learned_and_asks_nothing(vault: Path, model_env: FakeOpenAI) -> None:
    model_env.server = "vllm"
    model_env.context_limit = 2048
    model_env.default = fo.reply(GOOD)
    fresh = summarise(vault, NAME, "--dry-run")
    assert fresh.exit_code == 0 and model_env.requests == []
    assert summarise(vault).exit_code == 0
    sent = len(model_env.requests)

    planned = summarise(vault, another(vault), "--dry-run")

    assert planned.exit_code == 0, planned.stderr
    assert len(model_env.requests) == sent, "a dry run sends nothing"

    def budget(out: str) -> int:
        return int(re.search(r"input budget (\d+)", out).group(1))  # type: ignore[union-attr]

    assert budget(planned.stdout) < budget(fresh.stdout)
    assert budget(planned.stdout) + 2048 // 4 <= 2048


def test_a_tokenizer_counting_more_than_the_margin_shrinks_the_budget(vault: Path, model_env: FakeOpenAI) -> None:
    model_env.server = "llama-cpp-python"  # /extras/tokenize, no /props
    model_env.context_limit = 8192
    model_env.token_ratio = 1.5
    model_env.default = fo.reply(GOOD)
    fresh = summarise(vault, NAME, "--dry-run")
    assert summarise(vault).exit_code == 0
    (row,) = stored(vault)
    assert row[2] is not None and row[2] > 1.4 and row[4] == 1, "the ratio, measured once"

    planned = summarise(vault, another(vault), "--dry-run")

    def budget(out: str) -> int:
        return int(re.search(r"input budget (\d+)", out).group(1))  # type: ignore[union-attr]

    assert budget(planned.stdout) < 0.85 * budget(fresh.stdout)


def test_a_server_without_those_routes_is_asked_once_per_endpoint(vault: Path, model_env: FakeOpenAI) -> None:
    """A plain OpenAI-compatible server: each metadata route answers 404 once, then is never asked again."""
    model_env.default = fo.reply(GOOD)
    assert summarise(vault).exit_code == 0
    probes = [r.path for r in model_env.requests if not r.path.endswith("/chat/completions")]
    assert sorted(probes) == ["/api/show", "/api/v0/models", "/extras/tokenize", "/props", "/tokenize", "/v1/models"]
    # `/v1/models` lists the models with no window in them, as OpenAI's does; the others do not exist.
    assert all(r.response_status == 404 for r in model_env.requests if r.path in probes and r.path != "/v1/models")
    (row,) = stored(vault)
    assert row[1:] == (None, None, None, 1), "nothing learned, but asked: not again"
    before = len(model_env.requests)

    assert summarise(vault, another(vault)).exit_code == 0

    assert [r.path for r in model_env.requests[before:]] == ["/v1/chat/completions"]


def test_the_servers_slots_cap_parallel_requests(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = make_vault(tmp_path / "vault", 'concurrency = 4\nunsupported_evidence = "keep"\n')
    (vault / "Inbox").mkdir()
    shutil.copyfile(ICSI, vault / "Inbox" / LONG)
    model_env.server = "llama-server"
    model_env.context_limit = 8192
    model_env.slots = 1
    model_env.latency = 0.05
    model_env.default = fo.responder(lambda body: fo.reply({**GOOD, "action_items": [], "decisions": []}))

    result = cli("summarise", vault / "Inbox" / LONG, "--vault", vault)

    assert result.exit_code == 0, result.stderr
    assert len(chat(model_env)) >= 3, "a long meeting in parts"
    assert model_env.stats.max_in_flight == 1, "one slot: one request at a time, whatever `concurrency` says"
    assert stored(vault)[0][3] == 1


def test_doctor_stores_what_it_learns_and_the_next_run_asks_nothing_again(vault: Path, model_env: FakeOpenAI) -> None:
    model_env.server = "llama-cpp-python"
    model_env.context_limit = 8192
    model_env.token_ratio = 1.1
    model_env.default = fo.reply(GOOD)
    assert cli("doctor", "--vault", vault).exit_code == 0
    ((_, window, ratio, _, probed),) = stored(vault)
    assert window == 8192 and ratio is not None and probed == 1
    before = len(model_env.requests)

    result = summarise(vault)

    assert result.exit_code == 0, result.stderr
    later = model_env.requests[before:]
    assert [r.path for r in later] == ["/v1/chat/completions"], "no probe, no refused format, no overflow"
    assert later[0].json["response_format"]["type"] == "json_object"
    assert later[0].response_status == 200


def test_an_inbox_run_learns_the_window_once_for_every_transcript(
    tmp_path: Path, model_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUMMARIZER_INBOX_SETTLE", "0")
    names = [f"2026-03-0{day} - Meeting {day}.txt" for day in range(2, 6)]
    files = {f"Inbox/{name}": TRANSCRIPT + f"Bob Chen: Item {index}.\n" for index, name in enumerate(names)}
    vault = make_vault(tmp_path / "vault", 'owner = "Alice Moreau"\nconcurrency = 2\n', files)
    model_env.server = "llama-cpp-python"  # states its window only when it refuses a request
    model_env.context_limit = 2048
    model_env.default = fo.reply(GOOD)

    result = cli("inbox", "--vault", vault)

    assert result.exit_code == 0, result.stdout + result.stderr
    statuses = [r.response_status for r in chat(model_env)]
    assert statuses.count(200) == len(names), "every transcript summarised"
    # Only transcripts already planned when the window was learned overflow (at most the 2 x 2 workers),
    # and each of them is planned again and succeeds.
    assert 1 <= statuses.count(400) <= 4
    assert stored(vault)[0][1] == 2048


def test_a_server_counting_more_tokens_than_we_do_is_planned_for_after_one_refusal(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    """Window as assumed, but no tokenize route and a tokenizer counting 80% more: the count in its error
    gives the ratio, the meeting is planned again with it, and the next run plans with it from the start."""
    vault = make_vault(tmp_path / "vault", 'concurrency = 1\nunsupported_evidence = "keep"\n')
    (vault / "Inbox").mkdir()
    shutil.copyfile(ICSI, vault / "Inbox" / LONG)
    model_env.server = "lmstudio"
    model_env.context_limit = 8192  # what the tool assumes for a model it does not know
    model_env.token_ratio = 1.8
    model_env.default = fo.responder(lambda body: fo.reply({**GOOD, "action_items": [], "decisions": []}))

    result = cli("summarise", vault / "Inbox" / LONG, "--vault", vault)

    assert result.exit_code == 0, result.stderr
    statuses = [r.response_status for r in chat(model_env)]
    assert statuses.count(400) == 1 and statuses[-1] == 200, statuses
    assert all(status == 200 for status in statuses[statuses.index(400) + 1 :])
    ratio = stored(vault)[0][2]
    assert ratio is not None and ratio > 1.8
    sent = len(model_env.requests)
    planned = cli("summarise", vault / "Inbox" / LONG, "--vault", vault, "--dry-run")
    budget = int(re.search(r"input budget (\d+)", planned.stdout).group(1))  # type: ignore[union-attr]
    assert budget * 1.8 + 8192 // 4 <= 8192 and len(model_env.requests) == sent


@pytest.mark.parametrize(
    ("text", "window", "prompt"),
    [
        (
            "This model's maximum context length is 4096 tokens. However, your messages resulted in 5000 tokens.",
            4096,
            5000,
        ),
        (
            "the request exceeds the available context size, try increasing it (n_prompt_tokens=5000, n_ctx=4096)",
            4096,
            5000,
        ),
        ("Requested tokens (5000) exceed context window of 4096", 4096, 5000),
        ("This request exceeds the model's context length.", None, None),
    ],
)
def test_what_an_overflow_error_states(text: str, window: int | None, prompt: int | None) -> None:
    from summarizer.servers import context_limit_from_error, prompt_tokens_from_error

    assert context_limit_from_error(text) == window
    assert prompt_tokens_from_error(text) == prompt
