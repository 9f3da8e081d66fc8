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

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from summarizer.chunking import split_utterances
from summarizer.config import ResolvedSettings
from summarizer.errors import ModelError
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
from summarizer.prompting import Chunk, PromptSet
from summarizer.tokens import TokenCounter

Progress = Callable[[str], None]
UNKNOWN_MODEL_CONTEXT = 8192
SAFETY_MARGIN = 0.05
DUPLICATE_SCORE = 90

# Context windows (input + output tokens) of known models; unknown names are assumed small.
CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-4.1": 1_047_576,
    "gpt-5": 400_000,
    "gpt-4o": 128_000,
    "gpt-4-turbo": 128_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
}


def context_window(model: str | None, configured: int | None) -> int:
    if configured:
        return configured
    if model:
        prefixes = [name for name in CONTEXT_WINDOWS if model.startswith(name)]
        if prefixes:
            return CONTEXT_WINDOWS[max(prefixes, key=len)]
    return UNKNOWN_MODEL_CONTEXT


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


@dataclass
class LLMEngine:
    resolved: ResolvedSettings
    prompts: PromptSet
    log: CallLog | None = None
    on_http_status: Callable[[int, str | None], None] | None = None
    name: str = "openai"

    def __post_init__(self) -> None:
        self.client = ModelClient(
            self.resolved,
            log=self.log,
            prompt_version=self.prompts.version,
            output_tokens=self.output_tokens,
            on_http_status=self.on_http_status,
        )
        self.counter = TokenCounter(self.resolved.settings.model)

    @property
    def model(self) -> str:
        return self.client.model

    @property
    def prompt_version(self) -> str:
        return self.prompts.version

    @property
    def budget(self) -> int:
        settings = self.resolved.settings
        window = context_window(settings.model, settings.context_window)
        return int(window * (1 - SAFETY_MARGIN)) - self.output_tokens

    @property
    def output_tokens(self) -> int:
        """Tokens reserved for the answer: the configured cap, at most a quarter of a small window."""
        settings = self.resolved.settings
        window = context_window(settings.model, settings.context_window)
        return min(settings.max_output_tokens, window // 4)

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
            raise ModelError(
                f"the model's input budget ({budget} tokens) leaves no room for the transcript; "
                "raise context_window or use a larger model"
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
            result = self.client.extract(self.prompt(transcript, candidates), label=label)
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
            result = self.client.extract(prompt, label=f"{label} (part {index + 1}/{total})")
            done += 1
            if progress:
                progress(f"part {done}/{total} extracted")
            return result.extraction, result.usage

        workers = max(1, min(self.resolved.settings.concurrency, total))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(run, range(total)))
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
                result = self.client.extract(self._reduce_prompt(transcript, group), label=f"{label} (merge)")
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

    @property
    def model(self) -> str:
        return "offline"

    @property
    def prompt_version(self) -> str:
        from summarizer.offline import PROMPT_VERSION

        return PROMPT_VERSION

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
        return offline_result(transcript, owner=s.owner, owner_aliases=s.owner_aliases)
