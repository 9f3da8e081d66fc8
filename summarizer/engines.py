"""Engines turn a Transcript into an ExtractionResult.

`LLMEngine` asks the configured model. A meeting that does not fit the
model's input budget is never cut silently: it is split on utterance
boundaries with a small overlap, every part is extracted at once (map, up to
the server's limit), and the parts are merged in code (`summarizer.partmerge`):
near-duplicate items removed, each part's share of the summary joined in order.
With `merge_parts = "model"` the model instead writes the title and summary
from the part summaries (reduce: one more round), in groups and recursively if
even those do not fit.

`OfflineEngine` needs no model at all (see `summarizer.offline`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from summarizer.chunking import split_utterances
from summarizer.compact import compact_system, wants_compact
from summarizer.config import ResolvedSettings
from summarizer.errors import ConfigError, ModelError
from summarizer.llm import CallLog, ModelClient, Prompt, endpoint_of
from summarizer.models import (
    ExtractionResult,
    MeetingExtraction,
    Transcript,
    Usage,
    Utterance,
)
from summarizer.modelseam import ContextOverflowError, Extractor, HttpObserver, SlotsObserver, Wrapper
from summarizer.parallel import run_parts
from summarizer.partmerge import join_parts, merge_lists, sentences_per_part
from summarizer.prompting import Chunk, PromptSet
from summarizer.servers import (  # the table of known windows moved to servers
    HOSTED_SLOTS,
    ServerLimits,
    context_window,
    fitted_window,
    is_openai_api,
    probe_limits,
    safety_margin,
)
from summarizer.tokens import TokenCounter

Progress = Callable[[str], None]
PART_THREADS = 64  # a long meeting's parts start at once up to this; a limiter decides how many are in flight


class Engine(Protocol):
    name: str

    @property
    def model(self) -> str: ...

    @property
    def prompt_version(self) -> str: ...

    @property
    def request_slots(self) -> int:
        """Requests in flight at most, all of a run's transcripts and parts together."""
        ...

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
    merge_call: bool = False  # parts then one more request that merges them (`merge_parts = "model"`)

    @property
    def calls(self) -> int:
        if not self.uses_model:
            return 0
        return 1 if len(self.chunks) <= 1 else len(self.chunks) + self.merge_call


def _digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def reserved_output_tokens(resolved: ResolvedSettings, window: int | None = None) -> int:
    """Tokens reserved for the answer: the configured cap, at most a quarter of a small window."""
    settings = resolved.settings
    window = window or context_window(settings.model, settings.context_window)
    return min(settings.max_output_tokens, window // 4)


# ---------------------------------------------------------------------------- what the server taught us

PROBE_SAMPLE_CHARS = 6000  # of the transcript, for the tokenizer ratio: enough that message overhead is noise


@runtime_checkable
class LimitsLog(Protocol):
    """Where learned server limits are kept per endpoint (the vault's `Store`)."""

    def get_limits(self, endpoint: str) -> ServerLimits | None: ...
    def set_limits(self, endpoint: str, limits: ServerLimits) -> None: ...


@dataclass
class Learned:
    """What one endpoint taught this process, shared by an engine and its `with_prompts` copies."""

    limits: ServerLimits = field(default_factory=ServerLimits)
    loaded: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    slots: threading.BoundedSemaphore | None = field(default=None, repr=False)

    def update(self, limits: ServerLimits) -> None:
        merged = ServerLimits(
            limits.context_window or self.limits.context_window,
            limits.token_ratio or self.limits.token_ratio,
            limits.slots or self.limits.slots,
            limits.probed or self.limits.probed,
        )
        if merged.slots and (self.slots is None or merged.slots != self.limits.slots):
            self.slots = threading.BoundedSemaphore(merged.slots)
        self.limits = merged


def learned_limits(resolved: ResolvedSettings, log: object) -> ServerLimits | None:
    """The stored limits of the configured server and model (no I/O beyond the store)."""
    if not resolved.settings.model or not isinstance(log, LimitsLog):
        return None
    return log.get_limits(endpoint_of(resolved))


def with_server_slots(resolved: ResolvedSettings, known: object) -> ResolvedSettings:
    """Settings whose `concurrency` is at most the slots the server runs (`server_slots`, else stated):
    more transcripts at once would only queue there.

    `known` is the vault's store (read for this endpoint) or limits already in hand."""
    slots = _known_slots(resolved, known)
    settings = resolved.settings
    if not slots or settings.concurrency <= slots:
        return resolved
    return dataclasses.replace(resolved, settings=settings.model_copy(update={"concurrency": slots}))


def request_slots(resolved: ResolvedSettings, known: object) -> int:
    """How many requests may be in flight at once against the configured server, whatever they belong to
    (one transcript each, or a long meeting's parts): the `server_slots` setting; else the slots the server
    stated (llama.cpp `total_slots`, stored); else, for OpenAI's API, `HOSTED_SLOTS`, cut on its 429s; else
    (any other server that does not say, which may queue what it cannot run) `concurrency`."""
    settings = resolved.settings
    if slots := _known_slots(resolved, known):
        return slots
    return HOSTED_SLOTS if is_openai_api(settings.base_url) else settings.concurrency


def _known_slots(resolved: ResolvedSettings, known: object) -> int | None:
    """The `server_slots` setting, else the slots the server stated (`known`: the store or limits in hand)."""
    limits = known if isinstance(known, ServerLimits) else learned_limits(resolved, known)
    return resolved.settings.server_slots or (limits.slots if limits is not None else None)


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
    learned: Learned = field(default_factory=Learned)
    # `client` holds a limiter that bounds the run's requests: then every part of a long meeting starts at
    # once and the limiter decides how many are in flight; else parts keep to `concurrency`.
    limited: bool = False
    observers: Sequence[HttpObserver] = ()  # those that are `SlotsObserver`s hear a learned request limit

    def __post_init__(self) -> None:
        if not self.learned.loaded:
            self.learned.loaded = True
            stored = learned_limits(self.resolved, self.log)
            if stored is not None:
                self.learned.update(stored)
        if self.provider is None and self.client is None:
            self.provider = ModelClient(
                self.resolved,
                log=self.log,
                prompt_version=self.prompts.version,
                output_tokens=self.output_tokens,
            )
        self._tell_provider()
        extractor = self.client or self.provider
        assert extractor is not None
        self.extractor: Extractor = extractor
        self.counter = TokenCounter(self.resolved.settings.model)

    def _tell_provider(self) -> None:
        """The client sizes its answers (and repairs) within the window we plan with."""
        if self.provider is not None and self.resolved.settings.context_window is None:
            self.provider.learned_window = self.learned.limits.context_window
            self.provider.output_tokens = self.output_tokens
        if self.provider is not None:  # a `server_slots` setting wins over what the server stated
            self.provider.slots = None if self.resolved.settings.server_slots else self.learned.slots

    @property
    def model(self) -> str:
        return self.extractor.model

    @property
    def request_slots(self) -> int:
        return request_slots(self.resolved, self.learned.limits)

    def with_prompts(self, prompts: PromptSet) -> LLMEngine:
        return dataclasses.replace(
            self, prompts=prompts, provider=self.provider, client=self.extractor, learned=self.learned
        )

    @property
    def prompt_version(self) -> str:
        return self.prompts.version

    @property
    def window(self) -> int:
        """The window we plan in: the `context_window` setting, else what the server taught us (its
        stated limit; less when its tokenizer counts more than the margin covers), else the model table."""
        settings = self.resolved.settings
        if settings.context_window:
            return settings.context_window
        limits = self.learned.limits
        window = limits.context_window or context_window(settings.model, None)
        return fitted_window(window, limits.token_ratio, safety_margin(settings.model))

    @property
    def budget(self) -> int:
        return int(self.window * (1 - safety_margin(self.resolved.settings.model))) - self.output_tokens

    @property
    def configured_budget(self) -> int:
        """The budget from settings and the model table alone: what the server taught us does not change
        the extraction cache key (an answer only exists once a plan fitted), so a re-run still finds it."""
        settings = self.resolved.settings
        window = context_window(settings.model, settings.context_window)
        return int(window * (1 - safety_margin(settings.model))) - reserved_output_tokens(self.resolved, window)

    @property
    def output_tokens(self) -> int:
        return reserved_output_tokens(self.resolved, self.window)

    def cache_key(self, transcript: Transcript, candidates: Sequence[str]) -> str:
        s = self.resolved.settings
        key = {
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
            "budget": self.configured_budget,
            "candidates": list(candidates),
        }
        # How parts are merged matters only to a transcript that may be split: one whose UTF-8 bytes
        # exceed the budget, configured or learned (a token is at least a byte); one that fits keeps its key.
        if len(transcript.as_text().encode("utf-8")) > min(self.configured_budget, self.budget):
            key["merge_parts"] = s.merge_parts
        return _digest(key)

    # ------------------------------------------------------------------ prompts and counting

    def _system(self) -> tuple[str, str]:
        s = self.resolved.settings
        base: Callable[[bool], str] | None = None
        if wants_compact(self.window, self.prompts.origins.get("system.j2")):  # small window: smaller fixed prompt

            def base(schema: bool) -> str:
                return compact_system(owner=s.owner, owner_aliases=s.owner_aliases, with_schema=schema)

        plain = self.prompts.system(owner=s.owner, owner_aliases=s.owner_aliases, with_schema=False, base=base)
        with_schema = self.prompts.system(owner=s.owner, owner_aliases=s.owner_aliases, with_schema=True, base=base)
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
            self.count(self.prompt(transcript, candidates, _lines(c), self._chunk(i + 1, len(chunks))))
            for i, c in enumerate(chunks)
        )
        return Plan(sent, budget, chunks, self.counter.exact, merge_call=not self.joins_parts)

    def _split(self, transcript: Transcript, candidates: Sequence[str], budget: int) -> list[list[Utterance]]:
        overhead = self.count(self.prompt(transcript, candidates, "", self._chunk(99, 99)))
        capacity = budget - overhead
        if capacity < 200:
            raise ModelError(
                f"no plan fits: a {self.window}-token window less {self.output_tokens} for the answer and a safety "
                f"margin leaves {budget} tokens, and the fixed prompt takes {overhead}, so no part of the "
                "transcript fits; raise context_window (the server's real limit) or use a larger model",
                transcript.source_name or None,
            )
        overlap = self.resolved.settings.chunk_overlap
        return split_utterances(transcript.utterances, lambda u: self.counter.count(_lines([u])) + 1, capacity, overlap)

    # ------------------------------------------------------------------ what the server says about itself

    def _endpoint(self) -> str | None:
        return endpoint_of(self.resolved) if self.resolved.settings.model else None

    def _learn(self, limits: ServerLimits) -> None:
        with self.learned.lock:
            self.learned.update(limits)
            self._tell_provider()
            self.resolved = with_server_slots(self.resolved, self.learned.limits)  # parts: no more workers than slots
        if limits.slots:
            for observer in self.observers:
                if isinstance(observer, SlotsObserver):  # the run's limiter: the server's slots, not a guess
                    observer.request_slots(self.request_slots)
        endpoint = self._endpoint()
        if endpoint is not None and isinstance(self.log, LimitsLog):
            self.log.set_limits(endpoint, limits)

    def _probe_server(self, transcript: Transcript) -> None:
        """Once per endpoint (per store, or per process without one): a local server's window, slots and
        tokenizer, from its own routes. Never for OpenAI/Azure, never on a dry run (plans make no request)."""
        provider = self.provider
        if provider is None or provider.is_openai or self.learned.limits.probed:
            return
        with self.learned.lock:
            if self.learned.limits.probed:
                return
            sample = transcript.as_text()[:PROBE_SAMPLE_CHARS]
            key = self.resolved.api_key
            headers = {"authorization": f"Bearer {key}"} if key else {}
            limits = probe_limits(provider.base_url, self.model, sample, lambda: self.counter.count(sample), headers)
            self._learn(limits)

    def _learn_window(self, error: ContextOverflowError, planned: int) -> bool:
        """Re-plan after an overflow? Only with a stated limit below the window the failed plan used, and
        only when no `context_window` setting says otherwise (the setting wins). Another transcript may
        have learned it meanwhile: then it is only used."""
        if error.limit is None or self.resolved.settings.context_window:
            return False
        if error.limit >= planned:
            return self._learn_ratio(error, planned)
        if error.limit < self.window:
            self._learn(ServerLimits(context_window=error.limit))
        return True

    def _learn_ratio(self, error: ContextOverflowError, planned: int) -> bool:
        """The window was right but the server counted more tokens than we did: plan in `window / ratio`
        (stored as a ratio that much above the margin), once, when the error gives its count."""
        if not error.server_tokens or not error.our_tokens or error.server_tokens <= error.our_tokens:
            return False
        margin = safety_margin(self.resolved.settings.model)
        ratio = round(error.server_tokens / error.our_tokens * (1 + margin), 3)
        known = self.learned.limits.token_ratio
        if known is not None and known >= ratio:
            return self.window < planned  # someone else already learned it: just plan again
        self._learn(ServerLimits(token_ratio=ratio))
        return self.window < planned

    # ------------------------------------------------------------------ extraction

    def extract(
        self,
        transcript: Transcript,
        *,
        label: str,
        candidates: Sequence[str],
        progress: Progress | None = None,
    ) -> ExtractionResult:
        """Plan, extract; a server that says its window is smaller than planned gets one re-planned try."""
        self._probe_server(transcript)
        planned = self.window
        try:
            return self._extract_planned(transcript, label=label, candidates=candidates, progress=progress)
        except ContextOverflowError as error:
            if not self._learn_window(error, planned):
                raise
            if progress:
                progress(f"the server's window is {error.limit} tokens: planning again")
            return self._extract_planned(transcript, label=label, candidates=candidates, progress=progress)

    def _extract_planned(
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
            prompt = self.prompt(transcript, candidates, _lines(chunk), self._chunk(index + 1, total))
            result = self.extractor.extract(prompt, label=f"{label} (part {index + 1}/{total})")
            done += 1
            if progress:
                progress(f"part {done}/{total} extracted")
            return result.extraction, result.usage

        workers = min(total, PART_THREADS) if self.limited else max(1, min(self.request_slots, total))
        outcomes = run_parts(run, total, workers)  # a part that fails for good stops the others at once
        parts = [extraction for extraction, _ in outcomes]
        usage = sum((u for _, u in outcomes), Usage())
        if self.joins_parts:
            merged, reduce_usage = join_parts(parts), Usage()
        else:
            merged, reduce_usage = self._reduce(transcript, parts, label, progress)
        return ExtractionResult(
            extraction=merged,
            engine=self.name,
            model=self.model,
            prompt_version=self.prompt_version,
            usage=usage + reduce_usage,
        )

    @property
    def joins_parts(self) -> bool:
        """A long meeting's parts are joined here (one round of requests), not merged by one more request."""
        return self.resolved.settings.merge_parts == "local"

    def _chunk(self, index: int, total: int) -> Chunk:
        return Chunk(index, total, sentences_per_part(total) if self.joins_parts else None)

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
        merged = merge_lists(heads[0], parts)
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
    def request_slots(self) -> int:
        return self.resolved.settings.concurrency  # it makes no requests

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
    return LLMEngine(
        setup.resolved,
        setup.prompts,
        setup.log,
        provider=provider,
        client=client,
        limited=setup.limited,
        observers=tuple(setup.observers),
    )


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
