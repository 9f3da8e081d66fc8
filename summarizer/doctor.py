"""`summarizer doctor`: what the configured model server can do, checked in one command.

It asks the server what it says about itself (llama.cpp `/props`, vLLM's `max_model_len` in
`/v1/models`, LM Studio `/api/v0/models`, Ollama `/api/show`), compares its tokenizer with ours
(llama.cpp `/tokenize`, llama-cpp-python `/extras/tokenize`, vLLM `/tokenize`), then runs one
small real extraction in every structured-output mode, and reports which modes it honours, its
context window, its speed and the mode the tool will use.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from summarizer import servers
from summarizer.config import ResolvedSettings
from summarizer.engines import LimitsLog, LLMEngine
from summarizer.errors import ConfigError, SummarizerError
from summarizer.llm import LADDER, FormatRejected, ModelClient, Prompt
from summarizer.models import Transcript, Utterance
from summarizer.prompting import PromptSet

SAMPLE = (
    "Alice Moreau: Thanks for joining. We need the beta out before the conference.\n"
    "Bob Chen: I'll write the release notes by Thursday.\n"
    "Alice Moreau: Good. We agreed to ship the beta on Friday.\n"
)
METADATA_TIMEOUT = 5.0
PROBE_TOKENS = 1_000_000
PROBE_TIMEOUT = 20.0


@dataclass
class ModeCheck:
    mode: str
    honoured: bool
    detail: str
    seconds: float = 0.0
    completion_tokens: int = 0


@dataclass
class Report:
    base_url: str
    model: str
    server: str | None = None  # what the server looks like, from the routes that answered
    context_window: int | None = None
    context_source: str | None = None
    configured_window: int | None = None
    slots: int | None = None
    tokenizer_ratio: float | None = None  # server tokens / our estimate, on the sample
    modes: list[ModeCheck] = field(default_factory=list)
    chosen: str | None = None
    tokens_per_second: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def works(self) -> bool:
        """The mode the tool will use gave a valid answer."""
        return any(check.honoured and check.mode == self.chosen for check in self.modes)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "works": self.works}


def server_facts(report: Report, http: Any, model: str, sample: str, our_count: int) -> None:
    """Fill in what the server's own routes say: kind, window, slots, tokenizer ratio."""
    facts = servers.server_facts(http, report.base_url, model, timeout=METADATA_TIMEOUT)
    report.server, report.slots = facts.kind, facts.slots
    if facts.window is not None:
        report.context_window, report.context_source = facts.window, facts.window_source
    if facts.ollama_default_window:
        report.notes.append("Ollama runs a 4k-32k window unless num_ctx or OLLAMA_CONTEXT_LENGTH says otherwise")
    counted = servers.server_token_count(report.base_url, model, sample, METADATA_TIMEOUT, client=http)
    if counted is not None:
        if counted[1] and report.server is None:
            report.server = counted[1]
        if our_count > 0:
            report.tokenizer_ratio = round(counted[0] / our_count, 3)


def probe_window(client: ModelClient) -> int | None:
    """Ask for far more answer than any window holds: servers that check say their limit in the error."""
    import openai

    try:
        client.client().with_options(max_retries=0).chat.completions.create(
            model=client.model,
            messages=[{"role": "user", "content": "Say OK."}],
            max_tokens=PROBE_TOKENS,
            timeout=PROBE_TIMEOUT,
        )
    except openai.APIStatusError as err:
        return servers.context_limit_from_error(servers.error_text(err.response.text, str(err)))
    except openai.APIError:
        return None
    return None


def check_modes(client: ModelClient, prompt: Prompt, report: Report) -> None:
    for mode in LADDER:
        started = time.monotonic()
        try:
            result = client.try_mode(prompt, mode, label=f"doctor ({mode})")
        except FormatRejected as err:
            report.modes.append(ModeCheck(mode, False, f"refused: {err.reason}"))
            continue
        except SummarizerError as err:
            report.modes.append(ModeCheck(mode, False, f"failed: {err.reason}"))
            continue
        seconds = time.monotonic() - started
        repaired = " after one repair" if result.usage.calls > 1 else ""
        report.modes.append(
            ModeCheck(mode, True, f"valid answer{repaired}", seconds, result.usage.completion_tokens)
        )


def sample_transcript() -> Transcript:
    lines = [line.split(": ", 1) for line in SAMPLE.splitlines()]
    return Transcript(utterances=[Utterance(speaker=who, text=said) for who, said in lines], source_name="doctor")


def _provider(engine: LLMEngine) -> ModelClient:
    """The OpenAI-compatible client itself (an engine built from settings always has one)."""
    if engine.provider is None:
        raise ConfigError("doctor needs an OpenAI-compatible model client")
    return engine.provider


def diagnose(resolved: ResolvedSettings, prompts: PromptSet, store: object = None) -> Report:
    """`store` (the vault's state store) keeps what was learned, so later runs plan with it."""
    import httpx2

    engine = LLMEngine(resolved, prompts)
    configured = resolved.settings.context_window
    report = Report(base_url=_provider(engine).base_url, model=engine.model, configured_window=configured)
    headers = {"authorization": f"Bearer {resolved.api_key}"} if resolved.api_key else {}
    verify = servers.tls_verification(report.base_url)
    with httpx2.Client(timeout=METADATA_TIMEOUT, headers=headers, verify=verify) as http:
        server_facts(report, http, engine.model, SAMPLE, engine.counter.count(SAMPLE))
    if report.context_window and not resolved.settings.context_window:
        # Check the modes as the tool will run once context_window is set as advised.
        settings = resolved.settings.model_copy(update={"context_window": report.context_window})
        engine = LLMEngine(replace(resolved, settings=settings), prompts)
    client = _provider(engine)
    check_modes(client, engine.prompt(sample_transcript(), []), report)
    if report.context_window is None and report.server in (None, "llama-cpp-python") and not client.is_openai:
        # Last, so a server that does start generating is not busy during the checks above.
        report.context_window = probe_window(client)
        report.context_source = "the server's answer to an oversized request" if report.context_window else None
    honoured = [check for check in report.modes if check.honoured]
    pinned = resolved.settings.structured_output
    if pinned != "auto":
        report.chosen = pinned
        if not any(check.mode == pinned for check in honoured):
            report.notes.append(f'structured_output = "{pinned}" is not honoured here: set it to "auto"')
    elif honoured:
        report.chosen = honoured[0].mode
    timed = [check for check in honoured if check.seconds > 0 and check.completion_tokens > 0]
    if timed:
        best = max(timed, key=lambda check: check.completion_tokens / check.seconds)
        report.tokens_per_second = round(best.completion_tokens / best.seconds, 1)
    _advise(report, resolved)
    if isinstance(store, LimitsLog):
        remember(report, client, store, pinned=pinned != "auto")
    return report


def remember(report: Report, client: ModelClient, store: LimitsLog, *, pinned: bool) -> None:
    """What the server said about itself, and the mode found to work, kept per base URL and model:
    later runs plan with them and send no probe (a pinned mode is the setting's, not remembered)."""
    limits = servers.ServerLimits(
        report.context_window, report.tokenizer_ratio, report.slots, probed=not client.is_openai
    )
    store.set_limits(client.endpoint, limits)
    set_mode = getattr(store, "set_mode", None)
    if report.works and report.chosen and not pinned and callable(set_mode):
        set_mode(client.endpoint, report.chosen)


def _advise(report: Report, resolved: ResolvedSettings) -> None:
    settings = resolved.settings
    margin = servers.safety_margin(settings.model)
    window = report.context_window or settings.context_window
    if window and report.tokenizer_ratio is not None and report.tokenizer_ratio > 1 + margin:
        fitted = int(window * (1 + margin) / report.tokenizer_ratio)
        report.notes.append(
            f"set context_window = {fitted}: the server counts {report.tokenizer_ratio:.2f}x our token estimate, "
            f"more than the {margin:.0%} margin budgets keep"
        )
    elif report.context_window and settings.context_window != report.context_window:
        report.notes.append(f"set context_window = {report.context_window} (the server's own limit)")
    if report.context_window is None and settings.context_window is None:
        report.notes.append("the server does not say its context window: set context_window to its real limit")
    if report.slots is not None and settings.server_slots and settings.server_slots > report.slots:
        report.notes.append(
            f"the server runs {report.slots} request(s) at a time but server_slots = {settings.server_slots}: "
            f"set server_slots = {report.slots} (or leave it unset) so requests do not queue there and time out"
        )
    if report.tokens_per_second and report.tokens_per_second < 50:
        answer = servers.generation_timeout(settings.timeout, settings.max_output_tokens)
        report.notes.append(
            f"a slow server: a full answer of {settings.max_output_tokens} tokens may take "
            f"{settings.max_output_tokens / report.tokens_per_second:.0f}s; the tool waits up to {answer:.0f}s"
        )
    if not any(check.honoured for check in report.modes):
        report.notes.append("no structured-output mode gave a valid answer: check the model and the server log")


def format_report(report: Report) -> str:
    lines = [
        f"server: {report.base_url} ({report.server or 'OpenAI-compatible'})",
        f"model: {report.model}",
    ]
    window = (
        f"{report.context_window} tokens (from {report.context_source})"
        if report.context_window
        else "not reported by the server"
    )
    lines.append(f"context window: {window}")
    if report.slots is not None:
        lines.append(f"parallel requests: {report.slots}")
    if report.tokenizer_ratio is not None:
        lines.append(f"tokenizer: the server counts {report.tokenizer_ratio:.2f}x our estimate")
    lines.append("structured output:")
    for check in report.modes:
        mark = "yes" if check.honoured else "no "
        lines.append(f"  {mark} {check.mode:<19} {' '.join(check.detail.split())[:160]}")
    speed = f"{report.tokens_per_second} tokens/s" if report.tokens_per_second else "unknown (no valid answer)"
    lines.append(f"speed: {speed}")
    lines.append(f"mode the tool will use: {report.chosen or 'none works'}")
    lines.extend(f"advice: {note}" for note in report.notes)
    return "\n".join(lines)
