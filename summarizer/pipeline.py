"""read transcript -> build prompt -> call model -> validate -> render -> write.

The CLI's commands are thin layers over `Pipeline`: it owns the run's
settings, engine, templates and state store, and runs one transcript at a
time through the stages. I/O happens here and in `vault`; the stages it
calls (`rules`, `render`, the engines' prompt building) are pure.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from summarizer.config import ResolvedSettings, load_settings
from summarizer.engines import Engine, LLMEngine, OfflineEngine, Plan, Progress
from summarizer.errors import ConfigError, SummarizerError
from summarizer.models import ExtractionResult, MeetingNote, Transcript, Usage
from summarizer.prompting import PromptSet
from summarizer.render import load_note_template, render_note, template_version
from summarizer.rules import NoteContext, build_note
from summarizer.store import Store
from summarizer.vault import Vault

if TYPE_CHECKING:
    from summarizer.linking import LinkResult
    from summarizer.vault_index import VaultIndex

CANDIDATE_TOKENS = 600  # room in the prompt for names the vault already knows

NO_MODEL_NOTICE = (
    "notice: no model configured, using the offline engine; for LLM notes set SUMMARIZER_MODEL "
    "and OPENAI_API_KEY (plus OPENAI_BASE_URL for a local server)"
)


@dataclass
class Outcome:
    """What happened to one transcript."""

    transcript: Path
    note_path: Path | None = None
    note_text: str = ""
    note: MeetingNote | None = None
    result: ExtractionResult | None = None
    usage: Usage = field(default_factory=Usage)
    cached: bool = False
    plan: Plan | None = None
    backup: Path | None = None
    unsupported: int = 0
    checked: int = 0
    link: LinkResult | None = None
    stubs: list[Path] = field(default_factory=list)


@dataclass
class Pipeline:
    vault: Vault
    resolved: ResolvedSettings
    engine: Engine
    prompts: PromptSet
    store: Store
    template_text: str
    notices: list[str] = field(default_factory=list)
    _index: VaultIndex | None = field(default=None, init=False, repr=False)
    _index_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def open(
        cls,
        vault_root: Path,
        flags: dict[str, Any] | None = None,
        *,
        engine: str | None = None,
        on_http_status: Any = None,
    ) -> Pipeline:
        vault = Vault.open(vault_root)
        resolved = load_settings(vault.root, flags)
        store = Store(vault.state_dir / "state.db")
        prompts = PromptSet.load(vault.root)
        choice = engine or resolved.settings.engine
        notices: list[str] = []
        if choice == "auto":
            choice = "openai" if resolved.settings.model else "offline"
            if choice == "offline":
                notices.append(NO_MODEL_NOTICE)
        chosen: Engine
        if choice == "offline":
            chosen = OfflineEngine(resolved)
        else:
            chosen = LLMEngine(resolved, prompts, log=store, on_http_status=on_http_status)
            chosen.model  # noqa: B018 - fail early with a clear message when no model is set
        return cls(vault, resolved, chosen, prompts, store, load_note_template(vault.root), notices)

    @property
    def template_version(self) -> str:
        return template_version(self.template_text)

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ stages

    def read(self, path: Path, date: dt.date | None = None) -> Transcript:
        from summarizer.reader import read_transcript

        return read_transcript(path, date=date)

    @property
    def index(self) -> VaultIndex:
        """The vault's notes (names, aliases, types), built once per run from a cache by mtime."""
        with self._index_lock:
            if self._index is None:
                from summarizer.vault_index import VaultIndex, default_cache_path

                self._index = VaultIndex.build(
                    self.vault.root,
                    cache_path=default_cache_path(self.vault.root),
                    exclude=(self.resolved.settings.inbox,),
                )
            return self._index

    def candidates(self, transcript: Transcript) -> list[str]:
        """Vault names the transcript probably mentions, for the prompt (the model gets the spellings)."""
        if self.engine.name == "offline":
            return []
        from summarizer.linking import candidates_for_prompt
        from summarizer.tokens import TokenCounter

        counter = TokenCounter(self.resolved.settings.model)
        cost = counter.running(CANDIDATE_TOKENS)  # byte lengths until exact counts could matter
        found = candidates_for_prompt(transcript, self.index, max_tokens=CANDIDATE_TOKENS, count_tokens=cost)
        return [c.prompt_line().removeprefix("- ") for c in found]

    def link(self, result: ExtractionResult) -> LinkResult:
        from summarizer.linking import link_extraction

        s = self.resolved.settings
        return link_extraction(
            result.extraction,
            self.index,
            owner=s.owner,
            owner_aliases=s.owner_aliases,
            stub_folder=s.stub_folder,
            keep_owner_in_related=True,  # the vault's reference note lists its owner under Related
        )

    def plan(self, transcript: Transcript) -> Plan:
        return self.engine.plan(transcript, self.candidates(transcript))

    def extract(
        self, transcript: Transcript, *, label: str, progress: Progress | None = None, use_cache: bool = True
    ) -> tuple[ExtractionResult, bool]:
        """The engine's result, from the cache when nothing that affects it has changed."""
        candidates = self.candidates(transcript)
        key = self.engine.cache_key(transcript, candidates)
        if use_cache:
            cached = self.store.cached_extraction(key)
            if cached is not None:
                return cached, True
        result = self.engine.extract(transcript, label=label, candidates=candidates, progress=progress)
        self.store.cache_extraction(key, transcript.content_hash(), result)
        return result, False

    def note_context(self, transcript: Transcript, source_ref: str, link: LinkResult | None = None) -> NoteContext:
        from summarizer.grounding import is_supported

        s = self.resolved.settings
        text = transcript.as_text()
        linked: dict[str, Any] = {}
        if link is not None:
            linked = {
                "account_override": link.account,
                "account_linked": link.account_linked,
                "participants_override": link.participants,
                "related_override": link.related,
                "owner_map": link.owners,
            }
        return NoteContext(
            source_ref=source_ref,
            owner=s.owner,
            owner_aliases=s.owner_aliases,
            task_status=s.task_status,
            note_tags=s.note_tags,
            evidence_check=lambda quote: is_supported(quote, text),
            unsupported=s.unsupported_evidence,
            **linked,
        )

    def compose(
        self, transcript: Transcript, result: ExtractionResult, source_ref: str, link: LinkResult | None = None
    ) -> MeetingNote:
        link = link or self.link(result)
        return build_note(result.extraction, transcript, self.note_context(transcript, source_ref, link))

    def create_stubs(self, link: LinkResult) -> list[Path]:
        """Stub notes the vault config asked for (`stub_folder`), never over an existing file."""
        from summarizer.vault_index import IndexedNote

        created: list[Path] = []
        for rel, name in link.stubs_to_create:
            path = self.vault.inside(rel)
            if path.exists():
                continue
            self.vault.write_atomic(path, f"---\ntags:\n- stub\n---\n\n# {name}\n")
            self.index.add(IndexedNote.from_frontmatter(rel, {"tags": ["stub"]}))
            created.append(path)
        return created

    def render(self, note: MeetingNote) -> str:
        return render_note(note, self.template_text, self.resolved.settings.task_tags)

    def target(self, note: MeetingNote) -> Path:
        return self.vault.note_path(self.resolved.settings.note_path, note)

    # ------------------------------------------------------------------ one transcript, end to end

    def summarise(
        self,
        path: Path,
        *,
        date: dt.date | None = None,
        source_ref: str | None = None,
        out: Path | None = None,
        to_stdout: bool = False,
        force: bool = False,
        dry_run: bool = False,
        progress: Progress | None = None,
        transcript: Transcript | None = None,
        result: ExtractionResult | None = None,
    ) -> Outcome:
        """`result`: an extraction the caller already has (and accounts for): used as is, no call."""
        transcript = transcript or self.read(path, date)
        outcome = Outcome(transcript=path)
        ref = source_ref or self.vault.relative(path)
        label = str(path)
        if dry_run:
            outcome.plan = self.plan(transcript)
            return outcome
        cached = result is not None
        if result is None:
            try:
                result, cached = self.extract(transcript, label=label, progress=progress)
            except SummarizerError as err:
                if err.path is None:
                    raise type(err)(err.reason, path) from err
                raise
        link = self.link(result)
        note = self.compose(transcript, result, ref, link)
        text = self.render(note)
        outcome.link = link
        outcome.note, outcome.note_text, outcome.result, outcome.cached = note, text, result, cached
        outcome.usage = Usage() if cached else result.usage
        verdicts = [t.supported for t in note.action_items] + [d.supported for d in note.decisions]
        outcome.checked = sum(v is not None for v in verdicts)
        outcome.unsupported = sum(v is False for v in verdicts)
        if to_stdout:
            return outcome
        outcome.stubs = self.create_stubs(link)
        if out is not None and not self.vault.contains(out):
            raise ConfigError("--out must be inside the vault (or '-' to print)", out)
        target = self.vault.inside(self.vault.relative(out)) if out else self.target(note)
        if target.exists():
            if force:
                outcome.backup = self.vault.backup(target)
            else:
                target = self.vault.free_path(target)
        self.vault.write_atomic(target, text)
        self.store.record_note(
            self.vault.relative(target), transcript.content_hash(), ref, result, self.template_version, text
        )
        outcome.note_path = target
        return outcome


def resolve_vault(explicit: Path | None, near: Sequence[Path] = ()) -> Path:
    """--vault, else SUMMARIZER_VAULT, else the nearest vault above the given files, else refuse."""
    import os

    from summarizer.config import find_vault

    if explicit is not None:
        return explicit
    env = os.environ.get("SUMMARIZER_VAULT")
    if env:
        return Path(env)
    for path in near:
        found = find_vault(path)
        if found is not None:
            return found
    raise ConfigError(
        "no vault found: pass --vault PATH or set SUMMARIZER_VAULT "
        "(a vault is a folder holding .obsidian/ or .summarizer.toml)"
    )
