"""What every command shares: one-line errors and exit codes, option parsing, usage lines.

Command modules (`cli`, `cli_inbox`, `cli_regenerate`, `cli_eval`) import this, never each other;
`cli` registers them all.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from summarizer.errors import ConfigError, SummarizerError

if TYPE_CHECKING:
    from summarizer.models import Usage

T = TypeVar("T")


def err(message: str) -> None:
    typer.echo(message, err=True)


def run(action: Callable[[], T]) -> T:
    """Turn our errors into one line on stderr and the documented exit code."""
    try:
        return action()
    except SummarizerError as error:
        err(f"error: {error}")
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        err("interrupted")
        raise typer.Exit(130) from None


def parse_date_option(value: str | None, option: str = "--date") -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ConfigError(f"{option}: {value} is not a valid date") from None
        raise ConfigError(f"{option} must be YYYY-MM-DD, got {value!r}") from None


def format_usage(usage: Usage) -> str:
    cost = f"${usage.cost:.4f}" if usage.cost is not None else "n/a (unknown price)"
    return (
        f"{usage.calls} call(s), {usage.prompt_tokens} tokens in ({usage.cached_tokens} cached), "
        f"{usage.completion_tokens} out, estimated cost {cost}"
    )


def flags(model: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"model": model, **extra}
