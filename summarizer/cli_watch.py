"""The `summarizer watch` command (registered by `summarizer.cli`).

Only typer is imported at load time; watchfiles, the pipeline and openai load when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from summarizer.cli_options import DEFAULT_SETTLE, ConcurrencyOpt, EngineOpt, ModelOpt, SettleOpt, VaultOpt, WaitOpt

INTERRUPTED = 130


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)


def watch(
    vault: VaultOpt = None,
    settle: SettleOpt = DEFAULT_SETTLE,  # the same rule and setting as `inbox --settle`
    concurrency: ConcurrencyOpt = None,
    backoff: Annotated[
        float,
        typer.Option(
            "--backoff",
            help="Seconds to wait after the model server fails; doubles on each failure, up to 5 minutes.",
        ),
    ] = 5.0,
    wait: WaitOpt = False,
    model: ModelOpt = None,
    engine: EngineOpt = None,
) -> None:
    """Keep running: summarise each transcript dropped in the inbox once it has settled, then archive it.

    Holds the vault lock while it runs (`inbox` and `regenerate` on this vault exit 2, or queue
    with --wait). Ctrl-C or SIGTERM stops it after the transcript in flight; a second one stops at
    once (the next start finishes or rolls back that transcript). Exit status: 0 when stopped,
    2 usage or configuration error (including another run holding the vault lock).
    """
    from summarizer.cli_common import err, run

    def action() -> None:
        import os
        import signal
        import threading

        from summarizer.inbox_scan import InboxOptions
        from summarizer.pipeline import resolve_vault
        from summarizer.watch import BACKOFF_MAX, WatchOptions, run_watch

        root = resolve_vault(vault, [Path.cwd()])
        options = WatchOptions(
            InboxOptions(concurrency=concurrency, settle=settle, wait=wait, model=model, engine=engine),
            backoff=backoff,
            backoff_max=max(BACKOFF_MAX, backoff),
        )
        stop = threading.Event()

        def on_signal(_signum: int, _frame: object) -> None:
            if stop.is_set():
                # Asked twice: stop now, as a kill would (the journal makes that safe), rather than
                # release the lock while a worker may still be writing.
                os.write(2, b"stopped at once; the next start finishes the transcript in flight\n")
                os._exit(INTERRUPTED)
            stop.set()
            os.write(2, b"stopping after the transcript in flight (again to stop at once)\n")

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            run_watch(root, options, stop, out=lambda line: typer.echo(line), say=err)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    run(action)
