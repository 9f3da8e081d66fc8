"""Shared fixtures: an isolated environment, the loopback OpenAI server, golden-file updates."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakeopenai import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
SHARED_TIKTOKEN = ROOT.parent / "shared" / "tiktoken"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="Rewrite golden expectations from the current output (review the diff before committing).",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own settings, keys or vault."""
    for name in list(os.environ):
        if name.startswith(("SUMMARIZER_", "OPENAI_", "AZURE_OPENAI_")):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("SUMMARIZER_USER_CONFIG", str(home / "no-user-config.toml"))
    if "TIKTOKEN_CACHE_DIR" not in os.environ and SHARED_TIKTOKEN.is_dir():
        monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(SHARED_TIKTOKEN))
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def model_env(fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    """Point the CLI at the loopback server, as a user would with environment variables."""
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-key-123")
    monkeypatch.setenv("SUMMARIZER_MODEL", "test-model")
    monkeypatch.setenv("SUMMARIZER_MAX_RETRIES", "2")
    monkeypatch.setenv("SUMMARIZER_TIMEOUT", "10")
    return fake_openai
