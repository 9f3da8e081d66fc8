"""Engines turn a Transcript into an ExtractionResult.

`LLMEngine` asks the configured model. A meeting that does not fit the
model's input budget is never cut silently: it is split on utterance
boundaries with a small overlap, each part is extracted in parallel (map),
the lists are merged in code with near-duplicates removed, and the model
writes the whole-meeting summary from the part summaries (reduce), in
groups and recursively if even those do not fit.

`OfflineEngine` needs no model at all (see `summarizer.offline`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from summarizer.chunking import split_utterances
from summarizer.compact import compact_system, wants_compact
from summarizer.config import ResolvedSettings
from summarizer.errors import ConfigError, ModelError
from summarizer.llm import CallLog, ModelClient, Prompt
from summarizer.models import (
    ActionItem,
    Decision,
    Entity,
    ExtractionResult,
    MeetingExtraction,
    Transcript,
    Usage,
    Utterance,
)
from summarizer.modelseam import Extractor, HttpObserver, Wrapper
from summarizer.parallel import run_parts
from summarizer.prompting import Chunk, PromptSet
from summarizer.servers import context_window, safety_margin  # the table of known windows moved to servers
from summarizer.tokens import TokenCounter

Progress = Callable[[str], None]
DUPLICATE_SCORE = 90
PART_THREADS = 64  # a long meeting's parts start at once up to this; a limiter decides how many are in flight


class Engine(Protocol):
    name: str

    @property
    def model(self) -> str: ...

    @property
    def prompt_version(self) -> str: ...

    def cache_key(self, transcript: Transcript, candidates: Sequence[str]) -> str: ...

    def plan(self, transcript: Transcript, candidates: Sequence[str]) -> Plan: ...

    def extract(
        self,
        transcript: Transcript,
        *,
        label: str,
        candidates: Sequence[str],
        progress: Progress | None = None,
    ) -> ExtractionResult: ...

    def with_prompts(self, prompts: PromptSet) -> Engine:
        """The same engine (same client, limiter and log) reading `prompts` (a template set's)."""
        ...


@dataclass
class Plan:
    """What a run would send, for --dry-run and for deciding to split."""

    prompt_tokens: int
    budget: int
    chunks: list[list[Utterance]] = field(default_factory=list)
    exact: bool = True
    uses_model: bool = True

    @property
    def calls(self) -> int:
        if not self.uses_model:
            return 0
        return 1 if len(self.chunks) <= 1 else len(self.chunks) + 1


def _digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def reserved_output_tokens(resolved: ResolvedSettings) -> int:
    """Tokens reserved for the answer: the configured cap, at most a quarter of a small window."""
    settings = resolved.settings
    window = context_window(settings.model, settings.context_window)
    return min(settings.max_output_tokens, window // 4)


@dataclass
class LLMEngine:
    """Extraction by a model. `client` is what it calls (any `Extractor`: a provider, possibly
    wrapped, e.g. by the rate limiter); `provider` is the OpenAI-compatible client underneath when
    there is one (the Batch API needs it). Both are built by `build_engine`; given neither, a
    plain OpenAI-compatible client is made."""

    resolved: ResolvedSettings
    prompts: PromptSet
    log: CallLog | None = None
    name: str = "openai"
    provider: ModelClient | None = None
    client: Extractor | None = None
    # `client` holds a limiter that bounds the run's requests: then every part of a long meeting starts at
    # once and the limiter decides how many are in flight; else parts keep to `concurrency`.
    limited: bool = False

    def __post_init__(self) -> None:
        if self.provider is None and self.client is None:
            self.provider = ModelClient(
                self.resolved,
                log=self.log,
                prompt_version=self.prompts.version,
                output_tokens=self.output_tokens,
            )
        extractor = self.client or self.provider
        assert extractor is not None
        self.extractor: Extractor = extractor
        self.counter = TokenCounter(self.resolved.settings.model)

    @property
    def model(self) -> str:
        return self.extractor.model

    def with_prompts(self, prompts: PromptSet) -> LLMEngine:
        return dataclasses.replace(self, prompts=prompts, provider=self.provider, client=self.extractor)

    @property
    def prompt_version(self) -> str:
        return self.prompts.version

    @property
    def budget(self) -> int:
        settings = self.resolved.settings
        window = context_window(settings.model, settings.context_window)
        return int(window * (1 - safety_margin(settings.model))) - self.output_tokens

    @property
    def output_tokens(self) -> int:
        return reserved_output_tokens(self.resolved)

    def cache_key(self, transcript: Transcript, candidates: Sequence[str]) -> str:
        s = self.resolved.settings
        return _digest(
            {
                "transcript": transcript.content_hash(),
                "meta": [
                    str(transcript.date),
                    transcript.title,
                    transcript.source_name,
                    transcript.participants,
                ],
                "engine": self.name,
                "base_url": s.base_url,
                "model": self.model,
                "prompts": self.prompt_version,
                "owner": [s.owner, s.owner_aliases],
                "temperature": s.temperature,
                "max_output_tokens": s.max_output_tokens,
                "budget": self.budget,
                "candidates": list(candidates),
            }
        )

    # ------------------------------------------------------------------ prompts and counting

    def _system(self) -> tuple[str, str]:
        s = self.resolved.settings
        window = context_window(s.model, s.context_window)
        if wants_compact(window, self.prompts.origins.get("system.j2")):  # small window: smaller fixed prompt
            plain = compact_system(owner=s.owner, owner_aliases=s.owner_aliases, with_schema=False)
            return plain, compact_system(owner=s.owner, owner_aliases=s.owner_aliases, with_schema=True)
        plain = self.prompts.system(owner=s.owner, owner_aliases=s.owner_aliases, with_schema=False)
        with_schema = self.prompts.system(owner=s.owner, owner_aliases=s.owner_aliases, with_schema=True)
        return plain, with_schema

    def prompt(
        self,
        transcript: Transcript,
        candidates: Sequence[str],
        text: str | None = None,
        chunk: Chunk | None = None,
    ) -> Prompt:
        plain, with_schema = self._system()
        user = self.prompts.user(transcript, text=text, chunk=chunk, candidates=list(candidates))
        return Prompt(plain, with_schema, user)

    def count(self, prompt: Prompt) -> int:
        """Tokens of the request as sent in the richer of the two forms (schema in prompt or as format)."""
        return self.counter.count_messages(prompt.messages("schema"))

    def plan(self, transcript: Transcript, candidates: Sequence[str], *, exact: bool = True) -> Plan:
        """exact=False only decides whether to split: a prompt whose bytes fit loads no tokenizer."""
        budget = self.budget
        messages = self.prompt(transcript, candidates).messages("schema")
        whole = self.counter.count_messages(messages, at_most=None if exact else budget)
        if whole <= budget:
            return Plan(whole, budget, [transcript.utterances], exact and self.counter.exact)
        chunks = self._split(transcript, candidates, budget)
        sent = sum(
            self.count(self.prompt(transcript, candidates, _lines(c), Chunk(i + 1, len(chunks))))
            for i, c in enumerate(chunks)
        )
        return Plan(sent, budget, chunks, self.counter.exact)

    def _split(self, transcript: Transcript, candidates: Sequence[str], budget: int) -> list[list[Utterance]]:
        overhead = self.count(self.prompt(transcript, candidates, "", Chunk(99, 99)))
        capacity = budget - overhead
        if capacity < 200:
            window = context_window(self.resolved.settings.model, self.resolved.settings.context_window)
            raise ModelError(
                f"no plan fits: a {window}-token window less {self.output_tokens} for the answer and a safety "
                f"margin leaves {budget} tokens, and the fixed prompt takes {overhead}, so no part of the "
                "transcript fits; raise context_window (the server's real limit) or use a larger model",
                transcript.source_name or None,
            )
        overlap = self.resolved.settings.chunk_overlap
        return split_utterances(transcript.utterances, lambda u: self.counter.count(_lines([u])) + 1, capacity, overlap)

    # ------------------------------------------------------------------ extraction

    def extract(
        self,
        transcript: Transcript,
        *,
        label: str,
        candidates: Sequence[str],
        progress: Progress | None = None,
    ) -> ExtractionResult:
        plan = self.plan(transcript, candidates, exact=False)
        if len(plan.chunks) <= 1:
            result = self.extractor.extract(self.prompt(transcript, candidates), label=label)
            return ExtractionResult(
                extraction=result.extraction,
                engine=self.name,
                model=self.model,
                prompt_version=self.prompt_version,
                usage=result.usage,
            )
        total = len(plan.chunks)
        done = 0

        def run(index: int) -> tuple[MeetingExtraction, Usage]:
            nonlocal done
            chunk = plan.chunks[index]
            prompt = self.prompt(transcript, candidates, _lines(chunk), Chunk(index + 1, total))
            result = self.extractor.extract(prompt, label=f"{label} (part {index + 1}/{total})")
            done += 1
            if progress:
                progress(f"part {done}/{total} extracted")
            return result.extraction, result.usage

        workers = min(total, PART_THREADS) if self.limited else max(1, min(self.resolved.settings.concurrency, total))
        outcomes = run_parts(run, total, workers)  # a part that fails for good stops the others at once
        parts = [extraction for extraction, _ in outcomes]
        usage = sum((u for _, u in outcomes), Usage())
        merged, reduce_usage = self._reduce(transcript, parts, label, progress)
        return ExtractionResult(
            extraction=merged,
            engine=self.name,
            model=self.model,
            prompt_version=self.prompt_version,
            usage=usage + reduce_usage,
        )

    def _reduce(
        self, transcript: Transcript, parts: list[MeetingExtraction], label: str, progress: Progress | None
    ) -> tuple[MeetingExtraction, Usage]:
        usage = Usage()
        heads = parts
        while True:
            groups = self._reduce_groups(transcript, heads)
            if progress:
                progress(f"merging {len(heads)} parts in {len(groups)} call(s)")
            merged_heads: list[MeetingExtraction] = []
            for group in groups:
                result = self.extractor.extract(self._reduce_prompt(transcript, group), label=f"{label} (merge)")
                merged_heads.append(result.extraction)
                usage = usage + result.usage
            heads = merged_heads
            if len(heads) == 1:
                break
        head = heads[0]
        merged = head.model_copy(
            update={
                "action_items": merge_action_items([i for p in parts for i in p.action_items]),
                "decisions": merge_decisions([d for p in parts for d in p.decisions]),
                "key_information": merge_texts([k for p in parts for k in p.key_information]),
                "related": merge_entities([e for p in parts for e in p.related]),
            }
        )
        return merged, usage

    def _reduce_prompt(self, transcript: Transcript, group: list[MeetingExtraction]) -> Prompt:
        plain, with_schema = self._system()
        return Prompt(plain, with_schema, self.prompts.reduce(transcript, group))

    def _reduce_groups(self, transcript: Transcript, heads: list[MeetingExtraction]) -> list[list[MeetingExtraction]]:
        groups: list[list[MeetingExtraction]] = [[]]
        for head in heads:
            trial = [*groups[-1], head]
            if groups[-1] and self.count(self._reduce_prompt(transcript, trial)) > self.budget:
                groups.append([head])
            else:
                groups[-1] = trial
        if len(groups) == len(heads) and len(heads) > 1:
            # Each summary alone fills the budget: merge pairwise so the recursion still converges.
            groups = [heads[i : i + 2] for i in range(0, len(heads), 2)]
        return groups


def _lines(utterances: Sequence[Utterance]) -> str:
    return Transcript(utterances=list(utterances)).as_text()


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _similar(a: str, b: str) -> bool:
    """Near-identical wording (the overlap between parts), never two items that differ in a number."""
    from rapidfuzz import fuzz

    if sorted(_NUMBER.findall(a)) != sorted(_NUMBER.findall(b)):
        return False
    return fuzz.token_sort_ratio(a.casefold(), b.casefold()) >= DUPLICATE_SCORE


def merge_texts(items: Sequence[str]) -> list[str]:
    kept: list[str] = []
    for item in items:
        if item.strip() and not any(_similar(item, k) for k in kept):
            kept.append(item)
    return kept


def merge_action_items(items: Sequence[ActionItem]) -> list[ActionItem]:
    """Near-duplicates (the overlap between parts) collapse into the most complete one."""
    kept: list[ActionItem] = []
    for item in items:
        for index, other in enumerate(kept):
            if _similar(item.text, other.text):
                kept[index] = other.model_copy(
                    update={
                        "owner": other.owner or item.owner,
                        "due": other.due or item.due,
                        "priority": other.priority if other.priority != "none" else item.priority,
                    }
                )
                break
        else:
            kept.append(item)
    return kept


def merge_decisions(items: Sequence[Decision]) -> list[Decision]:
    kept: list[Decision] = []
    for item in items:
        if not any(_similar(item.text, k.text) for k in kept):
            kept.append(item)
    return kept


def merge_entities(items: Sequence[Entity]) -> list[Entity]:
    kept: dict[str, Entity] = {}
    for item in items:
        kept.setdefault(item.name.casefold().strip(), item)
    return list(kept.values())


@dataclass
class OfflineEngine:
    """Extraction without a model: deterministic, no network (see `summarizer.offline`)."""

    resolved: ResolvedSettings
    name: str = "offline"
    template_set: str = ""  # it reads no prompts: a template set only marks its prompt version

    @property
    def model(self) -> str:
        return "offline"

    @property
    def prompt_version(self) -> str:
        from summarizer.offline import PROMPT_VERSION

        return f"{PROMPT_VERSION}+{self.template_set}" if self.template_set else PROMPT_VERSION

    def with_prompts(self, prompts: PromptSet) -> OfflineEngine:
        return dataclasses.replace(self, template_set=prompts.version.partition("+")[2])

    def cache_key(self, transcript: Transcript, candidates: Sequence[str]) -> str:
        s = self.resolved.settings
        return _digest(
            {
                "transcript": transcript.content_hash(),
                "meta": [str(transcript.date), transcript.title, transcript.participants],
                "engine": self.name,
                "version": self.prompt_version,
                "owner": [s.owner, s.owner_aliases],
            }
        )

    def plan(self, transcript: Transcript, candidates: Sequence[str]) -> Plan:
        return Plan(0, 0, [transcript.utterances], uses_model=False)

    def extract(
        self,
        transcript: Transcript,
        *,
        label: str,
        candidates: Sequence[str],
        progress: Progress | None = None,
    ) -> ExtractionResult:
        from summarizer.offline import offline_result

        s = self.resolved.settings
        result = offline_result(transcript, owner=s.owner, owner_aliases=s.owner_aliases)
        return result.model_copy(update={"prompt_version": self.prompt_version})


# ---------------------------------------------------------------------------- the one place engines are chosen


@dataclass(frozen=True)
class EngineSetup:
    """What a factory may use: settings, prompts, the call log, HTTP observers and client wrappers."""

    resolved: ResolvedSettings
    prompts: PromptSet
    log: CallLog | None = None
    observers: Sequence[HttpObserver] = ()
    wrappers: Sequence[Wrapper] = ()
    limited: bool = False  # one of `wrappers` is a limiter that bounds every request (see `LLMEngine.limited`)

    def wrap(self, client: Extractor) -> Extractor:
        for wrapper in self.wrappers:
            client = wrapper(client)
        return client


def _openai_engine(setup: EngineSetup) -> Engine:
    provider = ModelClient(
        setup.resolved,
        log=setup.log,
        prompt_version=setup.prompts.version,
        output_tokens=reserved_output_tokens(setup.resolved),
        observers=tuple(setup.observers),
    )
    provider.model  # noqa: B018 - fail early with a clear message when no model is set
    client = setup.wrap(provider)
    return LLMEngine(setup.resolved, setup.prompts, setup.log, provider=provider, client=client, limited=setup.limited)


def _offline_engine(setup: EngineSetup) -> Engine:
    return OfflineEngine(setup.resolved)


# A new provider: one module with an `Extractor`, a factory like `_openai_engine`, one line here.
ENGINES: dict[str, Callable[[EngineSetup], Engine]] = {
    "openai": _openai_engine,
    "offline": _offline_engine,
}
AUTO = "auto"


def check_engine_choice(choice: str | None) -> None:
    """--engine / `engine =`: a registered name or auto; a one-line error before any work."""
    if choice is not None and choice != AUTO and choice not in ENGINES:
        raise ConfigError(f"--engine must be {', '.join(ENGINES)} or {AUTO}, not {choice!r}")


def resolve_engine_choice(choice: str | None, resolved: ResolvedSettings) -> tuple[str, bool]:
    """The engine name to build, and whether auto fell back to offline for want of a model."""
    check_engine_choice(choice)
    name = choice or resolved.settings.engine
    if name == AUTO:
        return ("openai", False) if resolved.settings.model else ("offline", True)
    return name, False


def build_engine(name: str, setup: EngineSetup) -> Engine:
    check_engine_choice(name)
    return ENGINES[name](setup)
