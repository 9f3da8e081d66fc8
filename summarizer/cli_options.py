"""Command-line options shared by every command, so each means the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

VaultOpt = Annotated[
    Path | None,
    typer.Option("--vault", help="The vault folder (default: SUMMARIZER_VAULT, or the vault around the file)."),
]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Model name (overrides SUMMARIZER_MODEL).")]
EngineOpt = Annotated[
    str | None, typer.Option("--engine", help="openai, offline or auto (offline when no model is configured).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON report instead of a table.")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="Wait for another run on this vault instead of exiting.")]
TemplateOpt = Annotated[
    str | None, typer.Option("--template", help="Use this template set (e.g. standup) instead of the vault's rules.")
]
SETTLE_ENV = "SUMMARIZER_INBOX_SETTLE"
DEFAULT_SETTLE = 10.0
SettleOpt = Annotated[
    float,
    typer.Option(
        "--settle",
        envvar=SETTLE_ENV,
        help="Seconds a file must go unmodified before it counts as complete (not still being written).",
    ),
]
ConcurrencyOpt = Annotated[
    int | None, typer.Option("--concurrency", "-j", help="Transcripts in flight (default: the setting).")
]
