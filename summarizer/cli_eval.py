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
        """Run the engine over transcripts with references; print ROUGE, item precision/recall, grounding."""
        from summarizer.cli_common import err, run

        def action() -> None:
            from summarizer.errors import ConfigError

            if not directory.exists():
                raise ConfigError("no such folder", directory)
            try:
                import rouge_score  # noqa: F401
            except ImportError:
                raise ConfigError("eval needs rouge-score: pip install 'summarizer[eval]'") from None
            from summarizer.evaluate import evaluate, format_table
            from summarizer.pipeline import discover_vault

            extract, notice = build_extractor(discover_vault(vault), model, engine)
            if notice:
                err(notice)
            report = evaluate(directory, extract, progress=lambda case: err(f"  {case.case_id}"))
            typer.echo(report.model_dump_json(indent=2) if as_json else format_table(report))

        run(action)


def build_extractor(
    vault: Path | None, model: str | None, engine: str | None
) -> tuple[Callable[[Transcript], ExtractionResult], str | None]:
    """The configured engine as a Transcript -> ExtractionResult function, with the no-model notice."""
    from summarizer.config import load_settings
    from summarizer.engines import LLMEngine, OfflineEngine
    from summarizer.errors import ConfigError
    from summarizer.pipeline import NO_MODEL_NOTICE
    from summarizer.prompting import PromptSet

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
        chosen = LLMEngine(resolved, PromptSet.load(vault))
        chosen.model  # noqa: B018 - a clear error now rather than per case

    def extract(transcript: Transcript) -> ExtractionResult:
        return chosen.extract(transcript, label=transcript.source_name, candidates=[])

    return extract, notice
