"""`summarizer eval DIR`: score the configured engine against reference summaries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from summarizer.cli_options import EngineOpt, JsonOpt, ModelOpt, VaultOpt

if TYPE_CHECKING:
    from summarizer.models import ExtractionResult, Transcript


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_command(
        directory: Annotated[Path, typer.Argument(help="golden/ cases, or a corpus folder with *.reference.json.")],
        vault: VaultOpt = None,
        model: ModelOpt = None,
        engine: EngineOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Run the engine over transcripts with references; print ROUGE, item P/R/F1, noise, grounding.

        Exit 1 when a case failed, 2 when the folder holds no case with a reference.
        """
        from summarizer.cli_common import err, run

        def action() -> None:
            from summarizer.errors import ConfigError

            if not directory.exists():
                raise ConfigError("no such folder", directory)
            try:
                import rouge_score  # noqa: F401
            except ImportError:
                raise ConfigError("eval needs rouge-score: pip install 'summarizer[eval]'") from None
            from summarizer.evaluate import cases_in, evaluate, format_table
            from summarizer.pipeline import discover_vault

            cases = cases_in(directory)  # a folder without references fails before any engine is set up
            extract, notice = build_extractor(discover_vault(vault), model, engine)
            if notice:
                err(notice)
            report = evaluate(cases, extract, progress=lambda case: err(f"  {case.case_id}"))
            typer.echo(report.model_dump_json(indent=2) if as_json else format_table(report))
            if report.overall.failed:
                err(f"{report.overall.failed} of {report.overall.cases} case(s) failed (errors in full with --json)")
                raise typer.Exit(1)

        run(action)


def build_extractor(
    vault: Path | None, model: str | None, engine: str | None
) -> tuple[Callable[[Transcript], ExtractionResult], str | None]:
    """The configured engine as a Transcript -> ExtractionResult function, with the no-model notice."""
    from summarizer.config import load_settings
    from summarizer.engines import LLMEngine, OfflineEngine
    from summarizer.errors import ConfigError
    from summarizer.pipeline import NO_MODEL_NOTICE, resolve_vault
    from summarizer.prompting import PromptSet
    from summarizer.store import Store
    from summarizer.vault import Vault

    resolved = load_settings(vault, {"model": model})
    choice = engine or resolved.settings.engine
    notice = None
    if choice == "auto":
        choice = "openai" if resolved.settings.model else "offline"
        notice = NO_MODEL_NOTICE if choice == "offline" else None
    if choice not in ("openai", "offline"):
        raise ConfigError(f"--engine must be openai, offline or auto, not {choice!r}")
    chosen: LLMEngine | OfflineEngine
    if choice == "offline":
        chosen = OfflineEngine(resolved)
    else:
        # with a vault, remember which response format the server accepts, as summarise/inbox do
        store = Store(Vault.open(resolve_vault(vault)).state_dir / "state.db") if vault or _env_vault() else None
        chosen = LLMEngine(resolved, PromptSet.load(vault), log=store)
        chosen.model  # noqa: B018 - a clear error now rather than per case

    def extract(transcript: Transcript) -> ExtractionResult:
        return chosen.extract(transcript, label=transcript.source_name, candidates=[])

    return extract, notice


def _env_vault() -> bool:
    import os

    return bool(os.environ.get("SUMMARIZER_VAULT"))
