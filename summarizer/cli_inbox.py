"""The `summarizer inbox` command (registered by `summarizer.cli`).

Only typer is imported at load time, so `summarizer --help` stays instant;
the pipeline, openai and rich load when the command runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from summarizer.cli_options import (
    DEFAULT_SETTLE,
    ConcurrencyOpt,
    EngineOpt,
    JsonOpt,
    ModelOpt,
    SettleOpt,
    VaultOpt,
    WaitOpt,
)


def register(app: typer.Typer) -> None:
    app.command("inbox")(inbox)


def inbox(
    vault: VaultOpt = None,
    concurrency: ConcurrencyOpt = None,
    settle: SettleOpt = DEFAULT_SETTLE,
    limit: Annotated[int | None, typer.Option("--limit", help="Process at most N transcripts.")] = None,
    only: Annotated[
        str | None, typer.Option("--only", help="Only files matching this glob (name or inbox-relative path).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be done, with token counts and cost; change nothing.")
    ] = False,
    json_out: JsonOpt = False,
    batch: Annotated[
        bool, typer.Option("--batch", help="Submit to the OpenAI Batch API (half price, within 24h) and return.")
    ] = False,
    collect: Annotated[
        bool,
        typer.Option(
            "--collect",
            help=(
                "Fetch finished batches and write their notes; only transcripts sent in a batch are "
                "processed (one whose batch line failed falls back to a normal, full-price call)."
            ),
        ),
    ] = False,
    wait: WaitOpt = False,
    model: ModelOpt = None,
    engine: EngineOpt = None,
) -> None:
    """Summarise every transcript in the vault's inbox, then archive it. Safe to interrupt and re-run.

    Exit status: 0 all done, 1 some transcripts failed (they stay in the inbox), 2 usage or
    configuration error (including another run holding the vault lock).
    """
    from summarizer.cli_common import err, run

    def action() -> int:
        from summarizer.inbox import InboxOptions, run_inbox
        from summarizer.pipeline import resolve_vault
        from summarizer.runner import make_display, render_table

        root = resolve_vault(vault, [Path.cwd()])
        options = InboxOptions(
            concurrency=concurrency,
            settle=settle,
            limit=limit,
            only=only,
            dry_run=dry_run,
            batch=batch,
            collect=collect,
            wait=wait,
            model=model,
            engine=engine,
        )
        display = make_display(sys.stderr)
        report = run_inbox(root, options, display=display, notice=err)
        if json_out:
            typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        else:
            title = "Inbox (dry run: nothing sent, nothing moved)" if dry_run else "Inbox"
            from rich.console import Console

            render_table(report, Console(file=sys.stdout, width=max(Console().width, 100)), title=title)
        return report.exit_code

    code = run(action)
    if code:
        raise typer.Exit(code)
