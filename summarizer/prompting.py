"""Prompt templates (jinja2) and the messages they make.

Order matters for the provider's prompt cache: the system message holds only
what is the same for every meeting of a vault (instructions, schema, owner),
the transcript comes next, and what varies per meeting (date, file name) last.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2

from summarizer.models import MeetingExtraction, Transcript

TEMPLATE_NAMES = ("system.j2", "user.j2", "reduce.j2")
Message = dict[str, str]


@dataclass(frozen=True)
class Chunk:
    index: int
    total: int
    sentences: int | None = None  # this part's share of a summary joined from the parts; None: a merge call follows


@dataclass
class PromptSet:
    """The effective templates of a vault: its overrides, else the packaged ones."""

    texts: dict[str, str]
    origins: dict[str, str]
    addition: str = ""  # a template set's jinja2 text for the system message (see templatesets)
    addition_name: str = ""

    @classmethod
    def load(cls, vault: Path | None = None) -> PromptSet:
        texts: dict[str, str] = {}
        origins: dict[str, str] = {}
        packaged = files("summarizer.prompts")
        for name in TEMPLATE_NAMES:
            override = vault / ".summarizer" / "prompts" / name if vault else None
            if override is not None and override.is_file():
                texts[name] = override.read_text(encoding="utf-8")
                origins[name] = str(override)
            else:
                texts[name] = packaged.joinpath(name).read_text(encoding="utf-8")
                origins[name] = "packaged"
        return cls(texts, origins)

    @property
    def version(self) -> str:
        """A hash of the templates' text: recorded with every result, part of the cache key."""
        digest = hashlib.sha256()
        for name in TEMPLATE_NAMES:
            digest.update(name.encode() + b"\0" + self.texts[name].encode("utf-8") + b"\0")
        base = digest.hexdigest()[:12]
        if not self.addition_name:
            return base
        extra = hashlib.sha256(self.addition.encode("utf-8")).hexdigest()[:8]
        return f"{base}+{self.addition_name}.{extra}"

    def with_addition(self, name: str, text: str) -> PromptSet:
        """These templates plus a template set's text in the system message; the version names the set."""
        return replace(self, addition=text, addition_name=name)

    def _render(self, name: str, **values: Any) -> str:
        return compile_template(self.texts[name], keep_trailing_newline=False).render(**values).strip() + "\n"

    def system(
        self,
        *,
        owner: str | None,
        owner_aliases: list[str],
        with_schema: bool,
        base: Callable[[bool], str] | None = None,
    ) -> str:
        """The system message; `base(with_schema)` renders another base than `system.j2` (the compact one
        for small windows): a template set's addition is placed the same way whichever base is used."""

        def packaged(schema: bool) -> str:
            schema_json = json.dumps(extraction_schema(), ensure_ascii=False) if schema else ""
            return self._render("system.j2", owner=owner, owner_aliases=owner_aliases, schema_json=schema_json)

        render = base or packaged
        text = render(with_schema)
        if not self.addition:
            return text
        extra = compile_template(self.addition, keep_trailing_newline=False)
        addition = extra.render(owner=owner, owner_aliases=owner_aliases).strip()
        # Before the JSON schema when the schema only ends the message (the packaged template), else last.
        plain = render(False).rstrip()
        head, tail = (plain, text[len(plain) :]) if with_schema and text.startswith(plain) else (text.rstrip(), "\n")
        return f"{head}\n\n{addition}{tail}"

    def user(
        self,
        transcript: Transcript,
        *,
        text: str | None = None,
        chunk: Chunk | None = None,
        candidates: list[str] | None = None,
    ) -> str:
        return self._render(
            "user.j2",
            transcript=text if text is not None else transcript.as_text(),
            chunk=chunk,
            candidates=candidates or [],
            meeting_date=transcript.date.isoformat() if transcript.date else None,
            weekday=transcript.date.strftime("%A") if transcript.date else "",
            source_name=transcript.source_name,
            title=transcript.title,
            participants=transcript.participants,
        )

    def reduce(self, transcript: Transcript, parts: list[MeetingExtraction]) -> str:
        keep = {
            "title",
            "meeting_date",
            "note_type",
            "account",
            "account_category",
            "participants",
            "summary",
        }
        return self._render(
            "reduce.j2",
            parts=[p.model_dump_json(include=keep, indent=1) for p in parts],
            meeting_date=transcript.date.isoformat() if transcript.date else None,
            source_name=transcript.source_name,
        )


@functools.cache
def compile_template(text: str, *, keep_trailing_newline: bool) -> jinja2.Template:
    """Templates compile once per process: a batch renders the same few thousands of times."""
    env = jinja2.Environment(
        autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=keep_trailing_newline
    )
    return env.from_string(text)


@functools.cache
def extraction_schema() -> dict[str, Any]:
    """The JSON schema of MeetingExtraction (treat as read-only: it is shared)."""
    return MeetingExtraction.model_json_schema()
