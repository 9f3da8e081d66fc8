"""`summarizer doctor`: check the configured model server in one command."""

from __future__ import annotations

import json

import typer

from summarizer.cli_options import JsonOpt, ModelOpt, VaultOpt


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor_command(vault: VaultOpt = None, model: ModelOpt = None, as_json: JsonOpt = False) -> None:
        """Check the model server: structured-output modes it honours, context window, speed, the mode used."""
        from summarizer.cli_common import run

        def action() -> None:
            from pathlib import Path

            from summarizer.config import find_vault, load_settings
            from summarizer.doctor import diagnose, format_report
            from summarizer.prompting import PromptSet
            from summarizer.store import Store
            from summarizer.vault import Vault

            root = vault or find_vault(Path.cwd())
            settings = load_settings(root, {"model": model})
            store = Store(Vault.open(root).state_dir / "state.db") if root else None  # what it learns is kept
            try:
                report = diagnose(settings, PromptSet.load(root), store)
            finally:
                if store is not None:
                    store.close()
            typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else format_report(report))
            if not report.works:
                raise typer.Exit(1)

        run(action)
