"""`summarizer doctor` against each server personality of the loopback server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli, make_vault
from tests.test_summarise import GOOD


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    return make_vault(tmp_path / "vault", "")


def doctor(vault: Path, *extra: str) -> Any:
    return cli("doctor", "--vault", vault, *extra)


def honoured(report: dict[str, Any]) -> dict[str, bool]:
    return {check["mode"]: check["honoured"] for check in report["modes"]}


def test_llama_cpp_python(vault: Path, model_env: FakeOpenAI) -> None:
    model_env.server = "llama-cpp-python"
    model_env.context_limit = 8192
    model_env.token_ratio = 1.1
    model_env.default = fo.reply(GOOD)
    result = doctor(vault, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert honoured(report) == {
        "strict": False,
        "schema": False,
        "json_object_schema": True,
        "json": True,
        "prompt": True,
    }
    refused = next(check for check in report["modes"] if check["mode"] == "strict")
    assert "Input should be 'text' or 'json_object'" in refused["detail"]
    assert report["chosen"] == "json_object_schema"
    assert report["server"] == "llama-cpp-python"
    assert report["context_window"] == 8192, "probed: the overflow error names the window"
    assert report["tokenizer_ratio"] > 1.05
    assert report["tokens_per_second"] > 0


def test_llama_server_reports_window_slots_and_advice(vault: Path, model_env: FakeOpenAI) -> None:
    (vault / ".summarizer.toml").write_text("server_slots = 4\n")
    model_env.server = "llama-server"
    model_env.context_limit = 4096
    model_env.slots = 1
    model_env.token_ratio = 1.3  # more than the 15% margin
    model_env.default = fo.reply(GOOD)
    result = doctor(vault)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "context window: 4096 tokens (from /props n_ctx)" in out
    assert "parallel requests: 1" in out
    assert "mode the tool will use: strict" in out
    assert "but server_slots = 4: set server_slots = 1" in out, "a setting above what the server runs"
    assert "tokenizer: the server counts 1.3" in out
    assert "set context_window = 36" in out, "4096 * 1.15 / 1.3: what fits with the server's own tokenizer"


@pytest.mark.parametrize(
    ("server", "window", "chosen", "refused"),
    [
        ("lmstudio", "/api/v0/models loaded_context_length", "strict", {"json_object_schema", "json"}),
        ("vllm", "/v1/models max_model_len", "strict", set()),
        ("ollama", "/api/show num_ctx", "strict", set()),
    ],
)
def test_other_servers(
    vault: Path, model_env: FakeOpenAI, server: str, window: str, chosen: str, refused: set[str]
) -> None:
    model_env.server = server
    model_env.context_limit = 8192
    model_env.default = fo.reply(GOOD)
    result = doctor(vault, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["context_source"] == window and report["context_window"] == 8192
    assert report["chosen"] == chosen
    assert {mode for mode, ok in honoured(report).items() if not ok} == refused


def test_pinned_mode_the_server_refuses_fails_with_advice(vault: Path, model_env: FakeOpenAI) -> None:
    (vault / ".summarizer.toml").write_text('structured_output = "strict"\n')
    model_env.server = "llama-cpp-python"
    model_env.default = fo.reply(GOOD)
    result = doctor(vault)
    assert result.exit_code == 1
    assert "mode the tool will use: strict" in result.stdout
    assert 'structured_output = "strict" is not honoured here' in result.stdout


def test_no_model_is_a_config_error(vault: Path) -> None:
    result = doctor(vault)
    assert result.exit_code == 2 and "SUMMARIZER_MODEL" in result.stderr
