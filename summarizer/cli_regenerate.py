"""`summarizer regenerate`: re-make notes with the current prompts, model and template.

Only typer is imported at load; the work is in `summarizer.regenerate`, and the
batch (workers, progress, report table, JSON, exit code) in `summarizer.runner`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from summarizer.cli_options import EngineOpt, JsonOpt, ModelOpt, VaultOpt, WaitOpt

if TYPE_CHECKING:
    from summarizer.pipeline import Pipeline


def _resolve(paths: list[Path], vault: Path | None) -> list[Path]:
    """Note paths as typed: relative to the working folder, else to the vault."""
    out: list[Path] = []
    for path in paths:
        if not path.exists() and vault is not None and (vault / path).exists():
            path = vault / path
        out.append(path.resolve())
    return out


def register(app: typer.Typer) -> None:
    @app.command("regenerate")
    def regenerate_command(
        notes: Annotated[
            list[Path] | None, typer.Argument(help="Notes to regenerate (or use --all / --since / --stale).")
        ] = None,
        vault: VaultOpt = None,
        all_notes: Annotated[bool, typer.Option("--all", help="Every note tagged 'generated'.")] = False,
        since: Annotated[str | None, typer.Option("--since", help="Only notes dated on or after YYYY-MM-DD.")] = None,
        stale: Annotated[
            bool,
            typer.Option("--stale", help="Only notes made with an older prompt, another model or an older template."),
        ] = False,
        render_only: Annotated[
            bool,
            typer.Option("--render-only", help="No model call: re-render from the stored extraction (or the note)."),
        ] = False,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Print a unified diff per note and change nothing.")
        ] = False,
        keep: Annotated[
            int, typer.Option("--keep-history", help="Previous versions kept per note in .summarizer/history/.")
        ] = 10,
        model: ModelOpt = None,
        engine: EngineOpt = None,
        as_json: JsonOpt = False,
        wait: WaitOpt = False,
    ) -> None:
        """Regenerate notes, keeping what the person changed (ticks, edits, added lines and keys).

        Only notes we made are touched: a named note with no record in the state store and no
        'generated' tag is reported as skipped ("not a generated note") and left alone; that alone
        is not a failure (exit 0). Without a configured model, regenerate refuses (exit 2) rather
        than quietly re-making LLM notes with the offline engine, unless --render-only or
        --engine offline (or engine = "offline" in the settings) says that is what is wanted.
        """
        from summarizer.cli_common import err, flags, parse_date_option, run

        def action() -> int:
            from contextlib import nullcontext

            from summarizer.engines import check_engine_choice
            from summarizer.errors import ConfigError
            from summarizer.pipeline import Pipeline, resolve_vault
            from summarizer.runner import AdaptiveLimiter
            from summarizer.vault import Vault
            from summarizer.vaultlock import vault_lock

            paths = list(notes or [])
            if not paths and not (all_notes or since or stale):
                raise ConfigError("name the notes to regenerate, or use --all, --since DATE or --stale")
            if paths and all_notes:
                raise ConfigError("give note paths or --all, not both")
            check_engine_choice(engine)
            if keep < 1:
                raise ConfigError(f"--keep-history must be at least 1, got {keep}")
            since_date = parse_date_option(since, "--since")
            resolved = _resolve(paths, vault)
            root = Vault.open(resolve_vault(vault, resolved))
            # Writes share the inbox's vault lock, so a regenerate never races an inbox run on a note.
            with nullcontext() if dry_run else vault_lock(root, wait, err):
                limiter = AdaptiveLimiter(1)
                pipeline = Pipeline.open(
                    root.root, flags(model), engine=engine, observers=[limiter], wrappers=[limiter.wrap]
                )
                try:
                    # 'auto' fell back to offline: say so instead of re-making every LLM note without a model.
                    chosen = engine or pipeline.resolved.settings.engine
                    fell_back = pipeline.engine.name == "offline" and chosen == "auto"
                    if fell_back and not render_only:
                        raise ConfigError(
                            "no model configured: regenerate would re-make the notes with the offline engine; "
                            "set SUMMARIZER_MODEL (and OPENAI_API_KEY), or pass --render-only, "
                            "or --engine offline to mean it"
                        )
                    if not render_only:
                        for notice in pipeline.notices:
                            err(notice)
                    limiter.resize(pipeline.resolved.settings.concurrency)
                    return _run(pipeline, resolved, all_notes, since_date, stale, render_only, dry_run, keep, as_json)
                finally:
                    pipeline.close()

        code = run(action)
        if code:
            raise typer.Exit(code)


def _run(
    pipeline: Pipeline,
    paths: list[Path],
    all_notes: bool,
    since: object,
    stale: bool,
    render_only: bool,
    dry_run: bool,
    keep: int,
    as_json: bool,
) -> int:
    """Regenerate the chosen notes through the shared runner; print diffs, table or JSON; the exit code."""
    import datetime as dt
    import json
    import sys

    from rich.console import Console

    from summarizer.regenerate import Regenerator, select_notes
    from summarizer.runlog import RunLedger
    from summarizer.runner import ItemResult, Runner, make_display, render_table

    chosen = select_notes(
        pipeline,
        paths,
        all_notes=all_notes,
        since=since if isinstance(since, dt.date) else None,
        stale=stale,
    )
    console = Console(stderr=True, highlight=False)
    if not chosen and not as_json:
        console.print("no notes to regenerate")
        return 0
    regenerator = Regenerator(pipeline, render_only=render_only, dry_run=dry_run, history=keep)

    def one(path: Path, progress: object) -> ItemResult:
        outcome = regenerator.regenerate(path, progress)
        return ItemResult(
            outcome.rel,
            "done" if outcome.changed else "skipped",
            detail=outcome.describe(),
            usage=outcome.usage,
            fields={
                "changed": outcome.changed,
                "written": outcome.written,
                "origin": outcome.origin,
                "relinked": list(outcome.relinked) if outcome.relinked else None,
                "history": str(outcome.history) if outcome.history else None,
                "diff": outcome.diff if dry_run else None,
            },
        )

    workers = 1 if render_only else pipeline.resolved.settings.concurrency
    # A run that writes is recorded (`summarizer log`); each note's usage is what its calls logged.
    ledger = None if dry_run else RunLedger.begin(pipeline.store, "regenerate", pipeline.engine)
    rel = pipeline.vault.relative  # the label each note's calls are made under

    def account(path: Path, result: ItemResult) -> None:
        if ledger is not None:
            ledger.item(rel(path), result, note=rel(path))

    runner = Runner(one, rel, workers=workers, display=make_display(sys.stderr, console), account=account)
    try:
        report = runner.run(chosen)
    except BaseException as error:
        if ledger is not None:
            ledger.fail(error)
        raise
    if ledger is not None:
        ledger.finish(report)
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n")
    else:
        if dry_run:
            for result in report.results:
                if result.fields.get("diff"):
                    sys.stdout.write(str(result.fields["diff"]))
        title = "Regenerate (dry run: nothing written)" if dry_run else "Regenerate"
        render_table(report, Console(file=sys.stdout, width=max(Console().width, 100)), title=title)
    return report.exit_code
