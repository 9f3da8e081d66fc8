"""Settings precedence: flag > environment > vault config > user config > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from summarizer.config import load_settings
from summarizer.errors import ConfigError
from tests.helpers import cli, make_vault


@pytest.fixture
def layered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    user = tmp_path / "user.toml"
    user.write_text('model = "user-model"\nowner = "User Owner"\nconcurrency = 7\ntimeout = 33\n')
    monkeypatch.setenv("SUMMARIZER_USER_CONFIG", str(user))
    return make_vault(tmp_path / "vault", 'model = "vault-model"\nowner = "Vault Owner"\nconcurrency = 5\n')


def test_precedence_and_sources(layered: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUMMARIZER_CONCURRENCY", "9")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1")
    resolved = load_settings(layered, {"model": "flag-model"})
    s = resolved.settings
    assert (s.model, s.owner, s.concurrency, s.timeout) == ("flag-model", "Vault Owner", 9, 33)
    assert s.base_url == "http://localhost:11434/v1"
    assert resolved.sources["model"] == "flag"
    assert resolved.sources["concurrency"] == "env SUMMARIZER_CONCURRENCY"
    assert resolved.sources["owner"].startswith("vault config")
    assert resolved.sources["timeout"].startswith("user config")
    assert "max_retries" not in resolved.sources  # default


def test_list_settings_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUMMARIZER_OWNER_ALIASES", "Dana, DW")
    assert load_settings(None).settings.owner_aliases == ["Dana", "DW"]


def test_config_command_shows_sources_but_never_the_key(layered: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    result = cli("config", "--vault", layered)
    assert result.exit_code == 0
    assert "sk-very-secret" not in result.stdout
    assert "api_key" in result.stdout and "set (from OPENAI_API_KEY)" in result.stdout
    assert "vault-model" in result.stdout and "[vault config" in result.stdout


def test_api_key_in_a_config_file_is_refused(tmp_path: Path) -> None:
    vault = make_vault(tmp_path / "v", 'api_key = "sk-oops"\n')
    with pytest.raises(ConfigError, match="do not store the API key"):
        load_settings(vault)


def test_unknown_setting_names_the_file(tmp_path: Path) -> None:
    vault = make_vault(tmp_path / "v", 'modle = "gpt-4o"\n')
    result = cli("config", "--vault", vault)
    assert result.exit_code == 2
    assert ".summarizer.toml: unknown setting 'modle'" in result.stderr


def test_bad_value_names_setting_and_source(tmp_path: Path) -> None:
    vault = make_vault(tmp_path / "v", 'concurrency = "many"\n')
    expected = r"\.summarizer\.toml: concurrency = \"many\": concurrency must be a whole number"
    with pytest.raises(ConfigError, match=expected):
        load_settings(vault)


def test_invalid_toml(tmp_path: Path) -> None:
    vault = make_vault(tmp_path / "v", "owner = \n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(vault)
