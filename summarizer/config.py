"""Settings and where each one came from.

Precedence, highest first: command-line flag > environment > vault config
(`<vault>/.summarizer.toml`) > user config (`<platformdirs user config>/config.toml`)
> defaults. Every setting can be given in the environment as `SUMMARIZER_<NAME>`;
the openai SDK's own `OPENAI_BASE_URL` is honoured too. The API key is read
only from the environment and is never stored, shown or logged.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from summarizer.errors import ConfigError

VAULT_CONFIG = ".summarizer.toml"
STATE_DIR = ".summarizer"
API_KEY_ENV = "OPENAI_API_KEY"


class Price(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(extra="forbid")
    input: float
    cached_input: float | None = None
    output: float


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    engine: Literal["auto", "openai", "offline"] = "auto"
    model: str | None = None
    base_url: str | None = None
    owner: str | None = Field(default=None, description="The vault owner's name: their tasks get @Myself")
    owner_aliases: list[str] = Field(default_factory=list)
    note_path: str = "Meetings/{date} - {title}.md"
    inbox: str = "Inbox"
    archive: str = "Inbox/_archive"
    temperature: float | None = 0.2
    timeout: float = 120.0
    max_retries: int = 4
    max_output_tokens: int = 4096
    context_window: int | None = None
    # response_format to use: "auto" finds the best one the server takes and remembers it per server and model
    structured_output: Literal["auto", "strict", "schema", "json_object_schema", "json", "prompt"] = "auto"
    chunk_overlap: int = 3
    concurrency: int = 4
    task_status: str = "?"
    task_tags: str = "#task #proposed"
    note_tags: list[str] = Field(default_factory=lambda: ["generated"])
    unsupported_evidence: Literal["flag", "drop", "keep"] = "flag"
    stub_folder: str | None = None
    prices: dict[str, Price] = Field(default_factory=dict)


SETTING_NAMES = tuple(Settings.model_fields)
_LIST_SETTINGS = {"owner_aliases", "note_tags"}


@dataclass
class ResolvedSettings:
    """Effective settings with the source of each value, for `summarizer config`."""

    settings: Settings
    sources: dict[str, str] = field(default_factory=dict)
    vault: Path | None = None
    api_key: str | None = None
    api_key_source: str | None = None

    def describe(self) -> list[tuple[str, str, str]]:
        rows = []
        for name in SETTING_NAMES:
            value = getattr(self.settings, name)
            if isinstance(value, BaseModel):
                value = value.model_dump()
            if name == "prices":
                value = {k: v.model_dump(exclude_none=True) for k, v in value.items()}
            shown = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
            rows.append((name, shown, self.sources.get(name, "default")))
        key = f"set (from {self.api_key_source})" if self.api_key else "not set"
        rows.append(("api_key", key, self.api_key_source or "-"))
        return rows


def user_config_path() -> Path:
    override = os.environ.get("SUMMARIZER_USER_CONFIG")
    if override:
        return Path(override)
    from platformdirs import user_config_dir

    return Path(user_config_dir("summarizer")) / "config.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"invalid TOML: {err}", path) from err
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror}", path) from err
    if "api_key" in data:
        raise ConfigError(f"do not store the API key in a config file; set {API_KEY_ENV} instead", path)
    unknown = sorted(set(data) - set(SETTING_NAMES))
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r} (known: {', '.join(SETTING_NAMES)})", path)
    return data


def _from_env(env: dict[str, str]) -> dict[str, tuple[Any, str]]:
    found: dict[str, tuple[Any, str]] = {}
    if env.get("OPENAI_BASE_URL"):
        found["base_url"] = (env["OPENAI_BASE_URL"], "env OPENAI_BASE_URL")
    for name in SETTING_NAMES:
        var = f"SUMMARIZER_{name.upper()}"
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        value: Any = raw
        if name in _LIST_SETTINGS:
            value = [part.strip() for part in raw.split(",") if part.strip()]
        elif name == "prices":
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{var} must be JSON: {err}") from err
        found[name] = (value, f"env {var}")
    return found


def find_vault(start: Path) -> Path | None:
    """The nearest folder at or above `start` that holds `.obsidian/` or `.summarizer.toml`."""
    start = start.resolve()
    for folder in [start, *start.parents] if start.is_dir() else start.parents:
        if (folder / ".obsidian").is_dir() or (folder / VAULT_CONFIG).is_file():
            return folder
    return None


def load_settings(
    vault: Path | None,
    flags: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> ResolvedSettings:
    env = dict(os.environ) if env is None else env
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    layers: list[tuple[dict[str, Any], str]] = []
    user_path = user_config_path()
    if user_path.is_file():
        layers.append((_read_toml(user_path), f"user config {user_path}"))
    if vault is not None and (vault / VAULT_CONFIG).is_file():
        layers.append((_read_toml(vault / VAULT_CONFIG), f"vault config {vault / VAULT_CONFIG}"))
    for values, origin in layers:
        for name, value in values.items():
            merged[name] = value
            sources[name] = origin
    for name, (value, origin) in _from_env(env).items():
        merged[name] = value
        sources[name] = origin
    for name, value in (flags or {}).items():
        if value is not None:
            merged[name] = value
            sources[name] = "flag"
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as err:
        first = err.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "?"
        raise ConfigError(f"setting {name!r} ({sources.get(name, 'default')}): {first['msg']}") from err
    api_key = env.get(API_KEY_ENV) or None
    return ResolvedSettings(
        settings=settings,
        sources=sources,
        vault=vault,
        api_key=api_key,
        api_key_source=API_KEY_ENV if api_key else None,
    )
