"""The `summarizer` command line: a thin layer over `summarizer.pipeline`.

Heavy modules (openai, tiktoken, rich tables) are imported inside commands so
that `summarizer --help` answers at once.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from summarizer.cli_common import err, flags, format_usage, parse_date_option, run
from summarizer.cli_options import EngineOpt, ModelOpt, TemplateOpt, VaultOpt, WaitOpt
from summarizer.errors import ConfigError

app = typer.Typer(
    name="summarizer",
    help="Turn meeting transcripts into notes in an Obsidian-style markdown vault.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: flags show as flags (typer's rich panel prints `<bool>`)
)

def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"summarizer {version('summarizer')}")
        except PackageNotFoundError:
            typer.echo("summarizer (version unknown: not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    _version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    pass


def _locate(transcript: Path, vault: Path | None) -> Path:
    """A transcript path as typed: relative to the working folder, else to the vault."""
    if transcript.exists() or vault is None:
        return transcript
    candidate = vault / transcript
    return candidate if candidate.exists() else transcript


@app.command("summarise")
def summarise(
    transcript: Annotated[
        Path, typer.Argument(help="The transcript file (txt, md, vtt, srt, json).", readable=False)
    ],
    vault: VaultOpt = None,
    out: Annotated[
        str | None,
        typer.Option("--out", help="'-' prints the note; a path inside the vault writes it there."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say where the note would go and what the call would take.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Rewrite the transcript's existing note in place, or overwrite the file at the note's path "
            "(a backup is kept).",
        ),
    ] = False,
    new: Annotated[
        bool, typer.Option("--new", help="Write another note even if this transcript already has one.")
    ] = False,
    model: ModelOpt = None,
    engine: EngineOpt = None,
    date: Annotated[str | None, typer.Option("--date", help="Meeting date when the file does not say.")] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Report which names were linked to vault notes, how, and which not.")
    ] = False,
    template: TemplateOpt = None,
    wait: WaitOpt = False,
) -> None:
    """Summarise one transcript into a note in the vault and print the note's path.

    One transcript, one note: if this transcript's content already has a note (wherever it was
    moved), nothing is written, its path is printed and "already summarised" said (exit 0);
    --force rewrites that note in place (keeping a backup), --new writes another one. Writing
    takes the vault lock an inbox run holds: with one running, exit 2, or --wait to queue.
    """

    def action() -> None:
        from contextlib import nullcontext

        from summarizer.engines import check_engine_choice
        from summarizer.noteformat import is_linkable
        from summarizer.pipeline import Pipeline, resolve_vault
        from summarizer.reader import check_input_file
        from summarizer.templatesets import for_transcript
        from summarizer.vault import Vault
        from summarizer.vaultlock import vault_lock

        meeting_date = parse_date_option(date)
        path = _locate(transcript, vault)
        check_input_file(path, ConfigError)  # a FIFO, device or folder is refused before anything runs
        check_engine_choice(engine)
        root = Vault.open(resolve_vault(vault, [path]))
        writes = not dry_run and out != "-"
        if writes and not is_linkable(path.name):
            err(
                f"warning: {path.name}: Obsidian cannot link a file name with # | ^ : \\ [ ] or a line break; "
                "the note's Source link will not resolve until the file is renamed "
                "(the inbox archives transcripts under a linkable name)"
            )
        pipeline = Pipeline.open(root.root, flags(model), engine=engine)  # bad settings stop it here
        if not dry_run:
            pipeline.warm_up()  # the model client builds while the transcript is read
        try:
            # Writes share the inbox's vault lock: a summarise never races an inbox run to the same transcript.
            with vault_lock(root, wait, err) if writes else nullcontext():
                pipeline = for_transcript(pipeline, path, template)
                for notice in pipeline.notices:
                    err(notice)
                to_stdout = out == "-"
                out_path = Path(out) if out and not to_stdout else None
                if dry_run:
                    _dry_run(pipeline, path, meeting_date)
                    return
                outcome = _summarise_logged(
                    pipeline,
                    path,
                    date=meeting_date,
                    out=out_path,
                    to_stdout=to_stdout,
                    force=force,
                    new=new,
                    progress=lambda message: err(f"  {message}"),
                )
                if outcome.existing is not None:
                    typer.echo(str(outcome.existing))
                    err(
                        f"already summarised: {outcome.existing} (nothing written; --force rewrites that note, "
                        "--new writes another)"
                    )
                    return
                if to_stdout:
                    sys.stdout.write(outcome.note_text)
                    if not outcome.note_text.endswith("\n"):
                        sys.stdout.write("\n")
                else:
                    typer.echo(str(outcome.note_path))
                if explain and outcome.link is not None:
                    from summarizer.linking import format_explain

                    err(format_explain(outcome.link))
                for stub in outcome.stubs:
                    err(f"created stub note {stub}")
                if outcome.rewrote_existing:
                    err("rewrote the transcript's existing note in place")
                if outcome.backup:
                    err(f"previous note kept at {outcome.backup}")
                if outcome.unsupported:
                    err(
                        f"warning: {outcome.unsupported} of {outcome.checked} items have evidence "
                        "not found in the transcript (tagged #unverified)"
                    )
                used = pipeline.engine
                if used.name == "offline":
                    err(f"offline engine ({used.prompt_version}): no model call")
                else:
                    source = "cache (no model call)" if outcome.cached else format_usage(outcome.usage)
                    err(f"{used.name} {used.model}, prompts {used.prompt_version}: {source}")
        finally:
            pipeline.close()

    run(action)


app.command("summarize", hidden=True)(summarise)


def _summarise_logged(pipeline: Any, path: Path, **options: Any) -> Any:
    """`Pipeline.summarise` as a recorded run: its usage is every call logged for the transcript,
    and a failure says what the calls made for it cost before the error line."""
    from summarizer.errors import SummarizerError
    from summarizer.runlog import RunLedger
    from summarizer.runner import ItemResult, RunReport

    ledger = RunLedger.begin(pipeline.store, "summarise", pipeline.engine)
    key = str(path)  # the label the pipeline makes its calls under
    transcript = pipeline.vault.relative(path)
    try:
        outcome = pipeline.summarise(path, **options)
    except SummarizerError as error:
        failed = ledger.item(key, ItemResult(path.name, "failed", error=str(error)), transcript=transcript)
        ledger.finish(RunReport([failed]))
        if failed.usage.calls:
            used = pipeline.engine
            err(f"{used.name} {used.model}, prompts {used.prompt_version}: {format_usage(failed.usage)}")
        raise
    if outcome.existing is not None:
        skipped = ItemResult(path.name, "skipped", "already summarised: nothing written")
        ledger.finish(RunReport([ledger.item(key, skipped, transcript=transcript)]))
        return outcome
    note = pipeline.vault.relative(outcome.note_path) if outcome.note_path else None
    detail = "from the cache, no call" if outcome.cached else ""
    done = ledger.item(key, ItemResult(path.name, "done", detail), transcript=transcript, note=note)
    outcome.usage = done.usage
    ledger.finish(RunReport([done]))
    return outcome


def _dry_run(pipeline: Any, path: Path, date: dt.date | None) -> None:
    from summarizer.pricing import estimate_cost

    transcript = pipeline.read(path, date)
    plan = pipeline.plan(transcript)
    ref = pipeline.vault.relative(path)
    from summarizer.models import MeetingExtraction
    from summarizer.rules import build_note

    placeholder = MeetingExtraction(
        title=transcript.title or transcript.source_name or "Meeting",
        meeting_date=None,
        note_type="other",
        account=None,
        account_category=None,
        participants=transcript.participants,
        summary="",
        action_items=[],
        decisions=[],
        key_information=[],
        related=[],
    )
    note = build_note(placeholder, transcript, pipeline.note_context(transcript, ref))
    typer.echo(f"transcript: {path}")
    existing = pipeline.existing_notes(transcript, follow=False)
    if existing:
        typer.echo(f"already summarised: {existing[0].path} (a run writes nothing; --force rewrites it, --new another)")
    typer.echo(f"note: {pipeline.target(note)} (title decided by the model; shown with the file's title)")
    typer.echo(f"engine: {pipeline.engine.name} {pipeline.engine.model}")
    if pipeline.prompts.addition_name:
        typer.echo(f"template set: {pipeline.prompts.addition_name}")
    if pipeline.engine.name != "offline":
        exact = "" if plan.exact else " (estimate: tiktoken encoding unavailable)"
        typer.echo(f"prompt tokens: {plan.prompt_tokens}{exact}; input budget {plan.budget}")
        joined = " + merge" if plan.merge_call else ", joined here"
        typer.echo(f"calls: {plan.calls}" + (f" ({len(plan.chunks)} parts{joined})" if plan.calls > 1 else ""))
        s = pipeline.resolved.settings
        cost = estimate_cost(pipeline.engine.model, plan.prompt_tokens, s.max_output_tokens // 2, 0, s.prices)
        typer.echo(f"estimated cost: {f'${cost:.4f}' if cost is not None else 'n/a (unknown price)'}")


@app.command("config")
def config(vault: VaultOpt = None, model: ModelOpt = None) -> None:
    """Show the effective settings and where each came from (never the API key)."""

    def action() -> None:
        from summarizer.config import load_settings, user_config_path
        from summarizer.pipeline import discover_vault

        root = discover_vault(vault)
        resolved = load_settings(root, flags(model))
        typer.echo(f"vault: {root if root else '(none found)'}")
        typer.echo(f"user config: {user_config_path()}")
        width = max(len(name) for name, _, _ in resolved.describe())
        for name, value, source in resolved.describe():
            typer.echo(f"{name:<{width}}  {value}  [{source}]")

    run(action)


# Commands defined in their own modules register here, and only here (each imports only typer at
# load, and never this module: their shared helpers are in `cli_common`).
__all__ = ["app", "err", "flags", "format_usage", "main", "parse_date_option", "run"]
# --- command registrations ---
from summarizer import cli_doctor, cli_eval, cli_inbox, cli_log, cli_regenerate, cli_watch  # noqa: E402

for _module in (cli_inbox, cli_regenerate, cli_eval, cli_log, cli_doctor, cli_watch):
    _module.register(app)


def main() -> None:
    import atexit
    import gc

    from summarizer import collector

    collector.hold()  # until the model client is built (`Pipeline.warm_up`), or for good in a command without one
    # At exit the cyclic collector would walk every object of the SDK and pydantic once more (0.1-0.3 s);
    # the process is ending, so leave them to it (refcounting still frees, files are closed by then).
    atexit.register(gc.freeze)
    app()


if __name__ == "__main__":
    main()
