"""read transcript -> build prompt -> call model -> validate -> render -> write.

The CLI's commands are thin layers over `Pipeline`: it owns the run's
settings, engine, templates and state store, and runs one transcript at a
time through the stages. I/O happens here and in `vault`; the stages it
calls (`rules`, `render`, the engines' prompt building) are pure.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from summarizer.config import ResolvedSettings, load_settings
from summarizer.engines import (
    Engine,
    EngineSetup,
    Plan,
    Progress,
    build_engine,
    request_slots,
    resolve_engine_choice,
    with_server_slots,
)
from summarizer.errors import ConfigError, SummarizerError
from summarizer.llm import ModelClient
from summarizer.models import ExtractionResult, MeetingNote, Transcript, Usage
from summarizer.noteformat import NoteFormat, for_template
from summarizer.prompting import PromptSet
from summarizer.render import load_note_template, template_version
from summarizer.rules import NoteContext, build_note
from summarizer.store import Store
from summarizer.vault import Vault

if TYPE_CHECKING:
    from summarizer.linking import LinkResult
    from summarizer.modelseam import HttpObserver, Wrapper
    from summarizer.notefind import FoundNote
    from summarizer.vault_index import VaultIndex

CANDIDATE_TOKENS = 600  # room in the prompt for names the vault already knows

NO_MODEL_NOTICE = (
    "notice: no model configured, using the offline engine; for LLM notes set SUMMARIZER_MODEL "
    "and OPENAI_API_KEY (plus OPENAI_BASE_URL for a local server)"
)


@dataclass
class Draft:
    """A note ready to write: made from one transcript and extraction, rendered once."""

    source: Path
    transcript: Transcript
    source_ref: str
    result: ExtractionResult
    cached: bool
    link: LinkResult
    note: MeetingNote
    text: str
    locate: Callable[[], Path] = field(repr=False)

    @cached_property
    def target(self) -> Path:
        """Where the note goes (from `note_path`, or --out); worked out when first asked."""
        return self.locate()

    @property
    def checked(self) -> int:
        """Items whose evidence was looked for in the transcript."""
        return sum(v is not None for v in self._verdicts())

    @property
    def unsupported(self) -> int:
        return sum(v is False for v in self._verdicts())

    def _verdicts(self) -> list[bool | None]:
        return [t.supported for t in self.note.action_items] + [d.supported for d in self.note.decisions]


@dataclass
class Committed:
    """Where a draft went: its path, the backup of a note it replaced, the stub notes it made."""

    stubs: list[Path]
    note_path: Path | None = None
    backup: Path | None = None


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
    draft: Draft | None = None
    existing: Path | None = None  # the transcript already has this note: nothing was written
    rewrote_existing: bool = False  # --force rewrote the transcript's existing note in place


@dataclass
class SharedIndex:
    """The vault index, built once and shared by every pipeline bound from one `Pipeline.open`."""

    index: VaultIndex | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Pipeline:
    vault: Vault
    resolved: ResolvedSettings
    engine: Engine
    prompts: PromptSet
    store: Store
    template_text: str
    notices: list[str] = field(default_factory=list)
    shared_index: SharedIndex = field(default_factory=lambda: SharedIndex(), repr=False)
    _warming: list[threading.Thread] = field(default_factory=list, repr=False)  # a daemon: exit never waits

    @classmethod
    def open(
        cls,
        vault_root: Path,
        flags: dict[str, Any] | None = None,
        *,
        engine: str | None = None,
        observers: Sequence[HttpObserver] = (),
        wrappers: Sequence[Wrapper] = (),
    ) -> Pipeline:
        """`observers` see every HTTP status; `wrappers` go around the model client and must include a
        limiter of the run's requests (`AdaptiveLimiter.wrap`), sized by the caller to the engine's
        `request_slots`; without wrappers, one of that size is composed here."""
        vault = Vault.open(vault_root)
        resolved = load_settings(vault.root, flags)
        name, fell_back = resolve_engine_choice(engine, resolved)
        prompts = PromptSet.load(vault.root)
        template_text = load_note_template(vault.root)  # before the store: a bad override leaves nothing open
        store = Store(vault.state_dir / "state.db")
        try:
            if name == "openai":  # no more transcripts at once than the server is known to run
                resolved = with_server_slots(resolved, store)
            if not wrappers:
                from summarizer.runner import AdaptiveLimiter

                limiter = AdaptiveLimiter(request_slots(resolved, store))
                observers, wrappers = [*observers, limiter], [limiter.wrap]
            setup = EngineSetup(resolved, prompts, store, observers, wrappers, limited=True)
            chosen = build_engine(name, setup)
        except BaseException:
            store.close()
            raise
        notices = [NO_MODEL_NOTICE] if fell_back else []
        return cls(vault, resolved, chosen, prompts, store, template_text, notices)

    @property
    def note_format(self) -> NoteFormat:
        """The active template's layout: section headings and order, the Source line."""
        return for_template(self.template_text)

    @property
    def template_version(self) -> str:
        return template_version(self.template_text)

    def warm_up(self) -> None:
        """For a run about to call the model: import the transcript reader here, and on a background
        thread build the model client (the SDK import alone takes about half a second) and import what
        a transcript's way to its request needs, so the first request does not wait for them and the
        workers do not queue on import locks. `warmed()` waits for it; exit never does (a daemon)."""
        import summarizer.reader  # noqa: F401 - once, on this thread, before any worker reads

        provider = getattr(self.engine, "provider", None)
        if not isinstance(provider, ModelClient) or self._warming:
            return

        def build() -> None:
            provider.prepare()
            import summarizer.linking
            import summarizer.notefind  # noqa: F401 - both on a transcript's way to its request
            from summarizer import collector

            collector.release()  # start-up's objects are made

        thread = threading.Thread(target=build, name="model-client-warm-up", daemon=True)
        thread.start()
        self._warming.append(thread)

    def warmed(self) -> None:
        """Wait for `warm_up`'s client to be built (at once if there is none)."""
        for thread in self._warming:
            thread.join()

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ stages

    def read(self, path: Path, date: dt.date | None = None) -> Transcript:
        from summarizer.reader import read_transcript

        return read_transcript(path, date=date)

    @property
    def index(self) -> VaultIndex:
        """The vault's notes (names, aliases, types), built once per run from a cache by mtime."""
        shared = self.shared_index
        with shared.lock:
            if shared.index is None:
                from summarizer.vault_index import VaultIndex, default_cache_path

                shared.index = VaultIndex.build(
                    self.vault.root,
                    cache_path=default_cache_path(self.vault.root),
                    exclude=(self.resolved.settings.inbox,),
                )
            return shared.index

    def with_templates(self, prompts: PromptSet, template_text: str) -> Pipeline:
        """This pipeline (same store, vault index, client, limiter) with a template set's prompts and note template."""
        return replace(self, prompts=prompts, engine=self.engine.with_prompts(prompts), template_text=template_text)

    def candidates(self, transcript: Transcript) -> list[str]:
        """Vault names the transcript probably mentions, for the prompt (the model gets the spellings)."""
        if self.engine.name == "offline":
            return []
        if not any(note.kind != "meeting" for note in self.index.notes):
            return []  # only meeting notes (or none): nothing a candidate could be
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

    def note_context(
        self,
        transcript: Transcript,
        source_ref: str,
        link: LinkResult | None = None,
        extra_frontmatter: dict[str, object] | None = None,
    ) -> NoteContext:
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
            extra_frontmatter=dict(extra_frontmatter or {}),
            **linked,
        )

    def compose(
        self,
        transcript: Transcript,
        result: ExtractionResult,
        source_ref: str,
        link: LinkResult | None = None,
        extra_frontmatter: dict[str, object] | None = None,
    ) -> MeetingNote:
        link = link or self.link(result)
        context = self.note_context(transcript, source_ref, link, extra_frontmatter)
        return build_note(link.apply(result.extraction), transcript, context)

    def create_stubs(self, link: LinkResult) -> list[Path]:
        """Stub notes the vault config asked for (`stub_folder`), never over an existing file."""
        from summarizer.linking import stub_frontmatter, stub_text
        from summarizer.vault_index import IndexedNote

        created: list[Path] = []
        for rel, name in link.stubs_to_create:
            path = self.vault.inside(rel)
            if path.exists():
                continue
            self.vault.write_atomic(path, stub_text(name, link.stub_kinds.get(rel)))
            self.index.add(IndexedNote.from_frontmatter(rel, stub_frontmatter(link.stub_kinds.get(rel))))
            created.append(path)
        return created

    def render(self, note: MeetingNote) -> str:
        return self.note_format.render(note, self.resolved.settings.task_tags)

    def target(self, note: MeetingNote) -> Path:
        return self.vault.note_path(self.resolved.settings.note_path, note)

    def existing_notes(self, transcript: Transcript, *, follow: bool = True) -> list[FoundNote]:
        """Our notes made from this transcript's content that still exist, wherever the person moved
        them (with `follow`, their records move with them), the most recent first."""
        from summarizer.notefind import notes_for_transcript

        return notes_for_transcript(self.store, self.vault, transcript.content_hash(), follow=follow)

    # ------------------------------------------------------------------ one transcript, end to end

    # ------------------------------------------------------------------ draft, then commit

    def draft(
        self,
        transcript: Transcript,
        result: ExtractionResult,
        source_ref: str,
        *,
        source: Path,
        cached: bool = False,
        out: Path | None = None,
        source_name: str | None = None,
    ) -> Draft:
        """Everything about the note, nothing written: linked, composed and rendered once.

        `source_name`: the transcript's original file name, kept as the note's `source_name` when it
        differs from the name `source_ref` links to; by default, `source`'s name when that one is
        not linkable and the note points elsewhere (the inbox archived it under a linkable name).
        """
        from summarizer.noteformat import is_linkable
        from summarizer.render import SOURCE_NAME_KEY

        if source_name is None and not is_linkable(source.name):
            source_name = source.name
        extra: dict[str, object] = {}
        if source_name is not None and source_name != PurePosixPath(source_ref).name:
            extra[SOURCE_NAME_KEY] = source_name
        link = self.link(result)
        note = self.compose(transcript, result, source_ref, link, extra)
        text = self.render(note)
        if out is not None and not self.vault.contains(out):
            raise ConfigError("--out must be inside the vault (or '-' to print)", out)

        def locate() -> Path:
            return self.vault.inside(self.vault.relative(out)) if out else self.target(note)

        return Draft(source, transcript, source_ref, result, cached, link, note, text, locate)

    def commit(self, draft: Draft, *, at: Path | None = None, force: bool = False) -> Committed:
        """Write the draft (atomically; over an existing file only with `force`, keeping a backup,
        else at the next free name), its stub notes, and its record in the state store."""
        committed = Committed(self.create_stubs(draft.link))
        target = at or draft.target
        if target.exists():
            if force:
                committed.backup = self.vault.backup(target)
            else:
                target = self.vault.free_path(target)
        self.vault.write_atomic(target, draft.text)
        self.store.record_note(
            self.vault.relative(target),
            draft.transcript.content_hash(),
            draft.source_ref,
            draft.result,
            self.template_version,
            draft.text,
        )
        committed.note_path = target
        return committed

    # ------------------------------------------------------------------ one transcript, end to end

    def summarise(
        self,
        path: Path,
        *,
        date: dt.date | None = None,
        out: Path | None = None,
        to_stdout: bool = False,
        force: bool = False,
        dry_run: bool = False,
        progress: Progress | None = None,
        source_ref: str | None = None,
        transcript: Transcript | None = None,
        result: ExtractionResult | None = None,
        new: bool = False,
    ) -> Outcome:
        """Read, extract (or take the caller's `result`, accounted for by the caller), draft, commit.

        One transcript, one note: when this transcript's content already has a note (wherever it
        was moved), nothing is written and `outcome.existing` names it; with `force` that note is
        rewritten in place (a backup kept); `new` writes another note regardless.
        """
        transcript = transcript or self.read(path, date)
        outcome = Outcome(transcript=path)
        if dry_run:
            outcome.plan = self.plan(transcript)
            return outcome
        rewrite: Path | None = None
        if not to_stdout and not new:
            found = self.existing_notes(transcript)
            if found and not force:
                outcome.existing = found[0].path
                return outcome
            if found:
                rewrite = found[0].path
                if out is not None and self.vault.contains(out) and out.resolve() != rewrite:
                    raise ConfigError(
                        f"already summarised in {self.vault.relative(rewrite)}: --force rewrites that note; "
                        "add --new to write another one at --out",
                        path,
                    )
        cached = result is not None
        if result is None:
            try:
                result, cached = self.extract(transcript, label=str(path), progress=progress)
            except SummarizerError as err:
                if err.path is None:
                    raise type(err)(err.reason, path) from err
                raise
        if to_stdout:
            out = None
        ref = source_ref or self.vault.relative(path)
        draft = self.draft(transcript, result, ref, source=path, cached=cached, out=out)
        outcome.draft = draft
        outcome.link, outcome.note, outcome.note_text = draft.link, draft.note, draft.text
        outcome.result, outcome.cached = result, cached
        outcome.usage = Usage() if cached else result.usage
        outcome.checked, outcome.unsupported = draft.checked, draft.unsupported
        if to_stdout:
            return outcome
        committed = self.commit(draft, at=rewrite, force=force)
        outcome.stubs, outcome.backup, outcome.note_path = committed.stubs, committed.backup, committed.note_path
        outcome.rewrote_existing = rewrite is not None
        return outcome


def discover_vault(explicit: Path | None, near: Sequence[Path] = ()) -> Path | None:
    """The vault every command uses: --vault, else SUMMARIZER_VAULT, else the nearest vault at or
    above each file named on the command line, else at or above the current folder; None if none."""
    import os

    from summarizer.config import find_vault

    if explicit is not None:
        return explicit
    env = os.environ.get("SUMMARIZER_VAULT")
    if env:
        return Path(env)
    for path in [*near, Path.cwd()]:
        found = find_vault(path)
        if found is not None:
            return found
    return None


def resolve_vault(explicit: Path | None, near: Sequence[Path] = ()) -> Path:
    """`discover_vault`, or a usage error (exit 2) saying how to name one."""
    found = discover_vault(explicit, near)
    if found is not None:
        return found
    raise ConfigError(
        "no vault found: pass --vault PATH or set SUMMARIZER_VAULT "
        "(a vault is a folder holding .obsidian/ or .summarizer.toml)"
    )
