"""Settings and where each one came from.

Precedence, highest first: command-line flag > environment > vault config
(`<vault>/.summarizer.toml`) > user config (`<platformdirs user config>/config.toml`)
> defaults. Every setting can be given in the environment as `SUMMARIZER_<NAME>`;
the openai SDK's own `OPENAI_BASE_URL` is honoured too. The API key is read
only from the environment and is never stored, shown or logged.

Every value is checked when settings load, in each source on its own, so a bad
value is refused (one line naming the setting, its source and what is allowed)
before any model call or file write. The rules live on the fields below.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from summarizer.errors import ConfigError
from summarizer.models import NoteType

VAULT_CONFIG = ".summarizer.toml"
STATE_DIR = ".summarizer"
API_KEY_ENV = "OPENAI_API_KEY"

# The fields a note_path template may use (vault.Vault.note_path fills exactly these).
NOTE_PATH_FIELDS = ("date", "year", "month", "title", "account", "type", "source")
_RESERVED_FOLDERS = (STATE_DIR, ".obsidian")
_TAG_BODY = re.compile(r"[\w/-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# ---------------------------------------------------------------------------- value rules


def _no_bool(value: Any) -> Any:
    """TOML `true` is not a number (pydantic would read it as 1)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


def _one_line(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    if _CONTROL.search(value):
        raise ValueError("must be one line of text (no control characters)")
    return value


def _vault_path(value: str, *, what: str, kind: str = "folder") -> str:
    """A vault-relative POSIX path: not absolute, no `..`, not in the state or Obsidian folder."""
    must = f"the {what} must name a {kind} inside the vault"
    if _CONTROL.search(value):
        raise ValueError(f"{must} (no control characters)")
    posix = value.replace("\\", "/")
    if posix.startswith(("/", "~")) or PureWindowsPath(value).drive:
        raise ValueError(f"{must}: a path relative to the vault, not an absolute one")
    parts = PurePosixPath(posix).parts
    if ".." in parts:
        raise ValueError(f"{must} (no '..')")
    if parts and parts[0] in _RESERVED_FOLDERS:
        raise ValueError(f"{must}, not in {parts[0]}/")
    return PurePosixPath(posix).as_posix()


def _folder(what: str, *, root_ok: bool) -> AfterValidator:
    def check(value: str) -> str:
        folder = _vault_path(value, what=what)
        if folder == "." and not root_ok:
            raise ValueError(f"the {what} must name a folder inside the vault, not the vault itself")
        return "" if folder == "." else folder

    return AfterValidator(check)


def _note_path(template: str) -> str:
    """Relative, inside the vault, ends in a file name, and only known `{fields}`."""
    if not template.strip():
        raise ValueError("must not be empty")
    _vault_path(template, what="note_path template", kind="file")
    if template.replace("\\", "/").endswith("/"):
        raise ValueError("must end with a file name, not a folder")
    known = ", ".join(f"{{{name}}}" for name in NOTE_PATH_FIELDS)
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as err:
        raise ValueError(f"is not a valid template ({err}; write {{{{ and }}}} for literal braces)") from None
    for name in fields:
        if name not in NOTE_PATH_FIELDS:
            raise ValueError(f"unknown field {{{name}}} (known: {known})")
    try:
        template.format(**{name: "x" for name in NOTE_PATH_FIELDS})
    except (ValueError, IndexError, KeyError) as err:
        raise ValueError(f"is not a valid template ({err})") from None
    return template


def _base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL, such as http://localhost:11434/v1")
    return value


def _task_status(value: str) -> str:
    if len(value) != 1 or value in "[]" or _CONTROL.match(value):
        raise ValueError("must be one character for the checkbox, such as '?', ' ' or '/'")
    return value


def _tag(body: str, shown: str) -> None:
    if not _TAG_BODY.fullmatch(body) or body.isdigit():
        raise ValueError(f"{shown!r} is not a tag: letters, digits, '_', '-', '/' only, not all digits")


def _task_tags(value: str) -> str:
    for word in value.split():
        if not word.startswith("#"):
            raise ValueError(f"{word!r} is not a tag: each word starts with '#', such as '#task #proposed'")
        _tag(word[1:], word)
    return value


def _note_tags(value: list[str]) -> list[str]:
    for tag in value:
        if tag.startswith("#"):
            raise ValueError(f"{tag!r}: write frontmatter tags without '#'")
        _tag(tag, tag)
    return value


NotBool = BeforeValidator(_no_bool)
Text = Annotated[str, AfterValidator(_one_line)]


def setting(default: Any, allowed: str, **rules: Any) -> Any:
    """A settings field that also says, in words, what it allows (the error messages quote it)."""
    if callable(default):
        return Field(default_factory=default, json_schema_extra={"allowed": allowed}, **rules)
    return Field(default=default, json_schema_extra={"allowed": allowed}, **rules)


class Price(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    input: Annotated[float, NotBool, Field(ge=0)]
    cached_input: Annotated[float, NotBool, Field(ge=0)] | None = None
    output: Annotated[float, NotBool, Field(ge=0)]


TEMPLATE_RULE_KINDS = ("name", "folder", "type")
NOTE_TYPES: tuple[str, ...] = get_args(NoteType)


class TemplateRule(BaseModel):
    """One `[[templates.rules]]` entry of the settings."""

    model_config = ConfigDict(extra="forbid")
    set: str
    match: str

    @field_validator("match")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        kind, sep, pattern = value.partition(":")
        if not sep or kind not in TEMPLATE_RULE_KINDS or not pattern.strip():
            raise ValueError(f"match must be name:GLOB, folder:PATH or type:NOTE_TYPE, not {value!r}")
        if kind == "type" and pattern.strip() not in NOTE_TYPES:
            raise ValueError(f"type must be one of {', '.join(NOTE_TYPES)}, not {pattern.strip()!r}")
        return value

    @property
    def kind(self) -> str:
        return self.match.partition(":")[0]

    @property
    def pattern(self) -> str:
        return self.match.partition(":")[2].strip()

    def matches_path(self, rel: str) -> bool:
        """A `name:` or `folder:` rule against a vault-relative POSIX path (`type:` never matches here)."""
        path = PurePosixPath(rel)
        if self.kind == "name":
            return fnmatch.fnmatch(path.name.casefold(), self.pattern.casefold())
        if self.kind == "folder":
            folder = self.pattern.strip("/").casefold()
            parent = path.parent.as_posix().casefold()
            return parent == folder or parent.startswith(folder + "/")
        return False


class TemplatesConfig(BaseModel):
    """The `[templates]` table of `.summarizer.toml`."""

    model_config = ConfigDict(extra="forbid")
    rules: list[TemplateRule] = []


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)

    engine: Literal["auto", "openai", "offline"] = setting("auto", "one of auto, openai, offline")
    model: Text | None = setting(None, "a model name")
    base_url: Annotated[str, AfterValidator(_base_url)] | None = setting(None, "an http:// or https:// URL")
    owner: Text | None = setting(
        None, "a name", description="The vault owner's name: their tasks get @Myself"
    )
    owner_aliases: list[Text] = setting(list, "a list of names")
    note_path: Annotated[str, AfterValidator(_note_path)] = setting(
        "Meetings/{date} - {title}.md",
        "a file path template relative to the vault, fields " + " ".join(f"{{{n}}}" for n in NOTE_PATH_FIELDS),
    )
    inbox: Annotated[str, _folder("inbox setting", root_ok=False)] = setting(
        "Inbox", "a folder path relative to the vault"
    )
    archive: Annotated[str, _folder("archive setting", root_ok=False)] = setting(
        "Inbox/_archive", "a folder path relative to the vault", validate_default=True
    )
    temperature: Annotated[float, NotBool] | None = setting(0.2, "a number from 0 to 2", ge=0, le=2)
    timeout: Annotated[float, NotBool] = setting(120.0, "a number of seconds > 0 and <= 86400", gt=0, le=86400)
    max_retries: Annotated[int, NotBool] = setting(4, "a whole number from 0 to 20", ge=0, le=20)
    max_output_tokens: Annotated[int, NotBool] = setting(4096, "a whole number of tokens >= 1", ge=1)
    context_window: Annotated[int, NotBool] | None = setting(None, "a whole number of tokens >= 1024", ge=1024)
    structured_output: Literal["auto", "strict", "schema", "json_object_schema", "json", "prompt"] = setting(
        "auto", "one of auto, strict, schema, json_object_schema, json, prompt"
    )
    chunk_overlap: Annotated[int, NotBool] = setting(3, "a whole number of utterances from 0 to 100", ge=0, le=100)
    concurrency: Annotated[int, NotBool] = setting(4, "a whole number from 1 to 64", ge=1, le=64)
    server_slots: Annotated[int, NotBool] | None = setting(None, "a whole number from 1 to 256", ge=1, le=256)
    merge_parts: Literal["local", "model"] = setting("local", "one of local, model")
    task_status: Annotated[str, AfterValidator(_task_status)] = setting("?", "one checkbox character")
    task_tags: Annotated[str, AfterValidator(_task_tags)] = setting(
        "#task #proposed", "'#tags' separated by spaces"
    )
    note_tags: Annotated[list[str], AfterValidator(_note_tags)] = setting(
        lambda: ["generated"], "a list of tags without '#'"
    )
    unsupported_evidence: Literal["flag", "drop", "keep"] = setting("flag", "one of flag, drop, keep")
    stub_folder: Annotated[str, _folder("stub_folder setting", root_ok=True)] | None = setting(
        None, "a folder path relative to the vault"
    )
    prices: dict[str, Price] = setting(dict, "tables of input, cached_input, output (USD per million tokens, >= 0)")
    templates: TemplatesConfig = Field(default_factory=TemplatesConfig)  # template sets' rules (templatesets)

    @field_validator("archive")
    @classmethod
    def _archive_apart_from_inbox(cls, archive: str, info: ValidationInfo) -> str:
        """Checked on the merged settings only: one source may set the inbox, another the archive."""
        inbox = info.data.get("inbox")
        if (info.context or {}).get("one_source") or inbox is None:
            return archive
        if archive == inbox or PurePosixPath(inbox).is_relative_to(archive):
            raise ValueError(
                f"the archive must not be the inbox or hold it (inbox = {_toml_value(inbox)}, "
                f"archive = {_toml_value(archive)})"
            )
        return archive


SETTING_NAMES = tuple(Settings.model_fields)
_LIST_SETTINGS = {"owner_aliases", "note_tags"}


def allowed(name: str) -> str:
    extra = Settings.model_fields[name].json_schema_extra
    return str(extra.get("allowed", "")) if isinstance(extra, dict) else ""


# ---------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """One place settings come from; `label` is what `summarizer config` shows."""

    label: str
    path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)  # setting -> variable (environment only)
    raw: dict[str, str] = field(default_factory=dict)  # variable -> its text (environment only)

    def where(self, name: str, value: Any) -> tuple[str, Path | None]:
        """How the faulty value was written, e.g. `timeout = -5` in a file, for the error line."""
        if self.path is not None:
            return f"{name} = {_toml_value(value)}", self.path
        if self.env:
            var = self.env.get(name, f"SUMMARIZER_{name.upper()}")
            return f"{var}={self.raw.get(var, value)} (environment)", None
        if self.label == "flag":
            return f"--{name.replace('_', '-')} {_toml_value(value)} (flag)", None
        return f"{name} = {_toml_value(value)} ({self.label})", None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float) or value is None:
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, default=str)


def _reason(name: str, error: ErrorDetails) -> str:
    """One error of pydantic's, in words: our own rule's message, else what the setting allows."""
    if name not in Settings.model_fields:
        return f"unknown setting {name!r} (known: {', '.join(SETTING_NAMES)})"
    if error["type"] == "value_error":
        message = str((error.get("ctx") or {}).get("error", error["msg"]))
        if message == "a boolean is not a number":
            return f"{name} must be {allowed(name)}"
        return f"{name} {message}" if message.startswith(("must", "is ")) else message
    inner = ".".join(str(part) for part in error["loc"][1:])
    if name == "prices" and inner:
        if error["type"] == "extra_forbidden":
            return f"prices: unknown key {inner!r} (known: input, cached_input, output)"
        if error["type"] == "missing":
            return f"prices: {inner} is missing"
        if len(error["loc"]) == 2:
            return f"prices: {inner} must be a table of input, cached_input, output (USD per million tokens)"
        return f"prices: {inner} must be a number >= 0"
    return f"{name} must be {allowed(name)}"


def _validate(values: dict[str, Any], origins: dict[str, Source], *, one_source: bool) -> Settings:
    try:
        return Settings.model_validate(values, context={"one_source": one_source})
    except ValidationError as err:
        first = err.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "?"
        if name == "archive" and name not in origins and "inbox" in origins:
            name = "inbox"  # the archive clash is the inbox setting's doing: name where it was set
        source = origins.get(name, Source("default"))
        field_info = Settings.model_fields.get(name)
        value = values.get(name, field_info.get_default(call_default_factory=True) if field_info else None)
        written, path = source.where(name, value)
        raise ConfigError(f"{written}: {_reason(name, first)}", path) from None


# ---------------------------------------------------------------------------- loading


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


def _config_file(path: Path) -> bool:
    """Whether a config file is there to read; anything there but a regular file is refused."""
    if path.is_file():
        return True
    if path.exists():
        raise ConfigError("is not a regular file; a config file must be a TOML file", path)
    return False


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"invalid TOML: {err}", path) from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"not UTF-8 text (byte {err.start})", path) from err
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror}", path) from err
    if "api_key" in data:
        raise ConfigError(f"do not store the API key in a config file; set {API_KEY_ENV} instead", path)
    unknown = sorted(set(data) - set(SETTING_NAMES))
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r} (known: {', '.join(SETTING_NAMES)})", path)
    return data


def _from_env(env: dict[str, str]) -> tuple[dict[str, Any], Source]:
    found: dict[str, Any] = {}
    names: dict[str, str] = {}
    raw: dict[str, str] = {}
    if env.get("OPENAI_BASE_URL"):
        found["base_url"] = raw["OPENAI_BASE_URL"] = env["OPENAI_BASE_URL"]
        names["base_url"] = "OPENAI_BASE_URL"
    for name in SETTING_NAMES:
        var = f"SUMMARIZER_{name.upper()}"
        text = env.get(var)
        if text is None or text == "":
            continue
        value: Any = text
        if name in _LIST_SETTINGS:
            value = [part.strip() for part in text.split(",") if part.strip()]
        elif name == "prices":
            try:
                value = json.loads(text)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{var} (environment): prices must be JSON: {err}") from err
        found[name], names[name], raw[var] = value, var, text
    return found, Source("environment", env=names, raw=raw)


def find_vault(start: Path) -> Path | None:
    """The nearest folder at or above `start` that holds `.obsidian/` or `.summarizer.toml`."""
    start = start.resolve()
    for folder in [start, *start.parents] if start.is_dir() else start.parents:
        if (folder / ".obsidian").is_dir() or (folder / VAULT_CONFIG).is_file():
            return folder
    return None


def vault_folder(path: Path) -> Path:
    """`path` if it is a folder to use as the vault; a usage error (exit 2) naming it if not."""
    path = path.expanduser()
    try:
        if path.is_dir():
            return path
        exists = path.exists()
    except OSError as err:
        raise ConfigError(f"cannot use as the vault: {err.strerror or err}", path) from err
    if not exists:
        raise ConfigError("vault folder does not exist", path)
    raise ConfigError("is a file, not a vault folder", path)


def load_settings(
    vault: Path | None,
    flags: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> ResolvedSettings:
    """The effective settings; raises ConfigError (exit 2) for the first bad value of any source."""
    env = dict(os.environ) if env is None else env
    if vault is not None:
        vault_folder(vault)
    layers: list[tuple[dict[str, Any], Source]] = []
    user_path = user_config_path()
    if _config_file(user_path):
        layers.append((_read_toml(user_path), Source(f"user config {user_path}", path=user_path)))
    if vault is not None and _config_file(vault / VAULT_CONFIG):
        path = vault / VAULT_CONFIG
        layers.append((_read_toml(path), Source(f"vault config {path}", path=path)))
    layers.append(_from_env(env))
    layers.append(({k: v for k, v in (flags or {}).items() if v is not None}, Source("flag")))
    merged: dict[str, Any] = {}
    origins: dict[str, Source] = {}
    for values, source in layers:
        _validate(values, dict.fromkeys(values, source), one_source=True)
        for name, value in values.items():
            merged[name] = value
            origins[name] = source
    settings = _validate(merged, origins, one_source=False)
    sources = {
        name: f"env {source.env[name]}" if source.env else source.label for name, source in origins.items()
    }
    api_key = env.get(API_KEY_ENV) or None
    return ResolvedSettings(
        settings=settings,
        sources=sources,
        vault=vault,
        api_key=api_key,
        api_key_source=API_KEY_ENV if api_key else None,
    )
