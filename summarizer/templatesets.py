"""Template sets: what a kind of meeting (one-to-one, stand-up, customer call, ...) asks for.

A set is a folder holding `set.toml` (`description`, `label`, `instructions`: a
jinja2 prompt addition rendered with `owner` and `owner_aliases`) and, if wanted,
`note.md.j2`. Presets ship in the package (`prompts/sets/<name>/`); a vault adds
or replaces sets in `.summarizer/templates/<name>/`. The vault's
`.summarizer.toml` chooses with rules, tried in order:

    [[templates.rules]]
    set = "standup"
    match = "name:*standup*"        # file-name glob (case-insensitive)
    # match = "folder:Inbox/Standups"   the transcript's folder (or one below it)
    # match = "type:people"             the note type the model detects

How one transcript's set is chosen (`Catalogue.select`):
1. `summarise --template NAME` forces NAME;
2. else the first `name:`/`folder:` rule that matches the path: those are known
   before the call, so they beat `type:` rules wherever they stand;
3. else the `type:` rules apply together: the prompt carries each one's
   instructions "for note_type X" (the model detects the type and follows the
   block for it in the same call), and after extraction the note is rendered
   with the note template of the set for the detected type.
With no rule matching and no `type:` rule, nothing changes: the base prompts and
note template, byte for byte.

A set keeps the vault's base format: without its own `note.md.j2` it renders
with the vault's note template plus a `**Meeting**: <label>` header line. The
set's content is part of the prompt version recorded with each note
(`<base>+<set>.<hash>`), so `regenerate --stale` finds the notes a change
affects, and `regenerate` keeps the set a note was made with.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import jinja2

from summarizer.config import TemplateRule, TemplatesConfig
from summarizer.errors import ConfigError
from summarizer.models import NoteType
from summarizer.prompting import compile_template

if TYPE_CHECKING:
    from summarizer.pipeline import Pipeline
    from summarizer.store import NoteRecord

SET_FILE = "set.toml"
NOTE_FILE = "note.md.j2"
VAULT_SETS = ".summarizer/templates"
BY_TYPE = "@type"  # the label of the type-conditional prompt (not a valid set name)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
_KINDS = ("name", "folder", "type")
_NOTE_TYPES: tuple[str, ...] = get_args(NoteType)
_ATTENDEES = re.compile(r"^\*\*Attendees\*\*:.*$", re.MULTILINE)


@dataclass(frozen=True)
class TemplateSet:
    name: str
    description: str
    label: str
    instructions: str
    note_template: str | None  # the set's own note.md.j2, if it has one
    origin: str  # "preset" or the folder it was read from

    def note_text(self, base: str) -> str:
        """The note template for this set: its own, else the vault's base plus a `**Meeting**:` line."""
        if self.note_template is not None:
            return self.note_template
        if not self.label:
            return base
        line = f"**Meeting**: {self.label}".replace("{", "{{ '{' }}")
        return _ATTENDEES.sub(lambda m: m.group(0) + "\n" + line, base, count=1)


@dataclass(frozen=True)
class Selection:
    """What applies to one transcript: a chosen set, or the `type:` rules' sets by note type."""

    chosen: TemplateSet | None = None
    by_type: tuple[tuple[str, TemplateSet], ...] = ()

    @property
    def empty(self) -> bool:
        return self.chosen is None and not self.by_type

    @property
    def name(self) -> str:
        """The name recorded in the prompt version: the set's, or `@type`."""
        if self.chosen is not None:
            return self.chosen.name
        return BY_TYPE if self.by_type else ""

    def prompt_addition(self) -> str:
        """The jinja2 text appended to the system prompt (owner and owner_aliases are defined)."""
        if self.chosen is not None:
            return f"Emphasis for this kind of meeting ({self.chosen.description}):\n{self.chosen.instructions.strip()}"
        blocks = [
            "Emphasis by kind of meeting: once you have decided note_type, also follow the block for that "
            "note_type below; none applies to other types."
        ]
        for note_type, chosen in self.by_type:
            blocks.append(
                f'<emphasis note_type="{note_type}">\n{chosen.description}:\n{chosen.instructions.strip()}\n</emphasis>'
            )
        return "\n".join(blocks)

    def note_template(self, base: str) -> str:
        """The note template: the chosen set's, else one that picks by the detected `note.note_type`."""
        if self.chosen is not None:
            return self.chosen.note_text(base)
        branches = [(t, s.note_text(base)) for t, s in self.by_type]
        branches = [(t, text) for t, text in branches if text != base]
        if not branches:
            return base
        out = ""
        for index, (note_type, text) in enumerate(branches):
            out += "{% " + ("if" if index == 0 else "elif") + f' note.note_type == "{note_type}" %}}' + text
        return out + "{% else %}" + base + "{% endif %}"


@dataclass
class Catalogue:
    """The sets known to a vault (presets, then the vault's own) and its rules."""

    sets: dict[str, TemplateSet]
    rules: list[TemplateRule] = field(default_factory=list)

    @classmethod
    def load(cls, vault: Path | None, config: TemplatesConfig | None = None) -> Catalogue:
        sets: dict[str, TemplateSet] = {}
        presets = files("summarizer.prompts").joinpath("sets")
        for folder in sorted(presets.iterdir(), key=lambda f: f.name) if presets.is_dir() else []:
            if folder.joinpath(SET_FILE).is_file():
                sets[folder.name] = _read_set(folder, "preset")
        root = vault / VAULT_SETS if vault is not None else None
        if root is not None and root.is_dir():
            for path in sorted(p for p in root.iterdir() if (p / SET_FILE).is_file()):
                if not _NAME.match(path.name):
                    raise ConfigError("a template set's folder name must be lowercase letters, digits, - or _", path)
                sets[path.name] = _read_set(path, str(path))
        rules = list(config.rules) if config is not None else []
        catalogue = cls(sets, rules)
        for rule in rules:
            if rule.set not in sets:
                raise ConfigError(f"setting 'templates': rule {rule.match!r} names {catalogue.unknown(rule.set)}")
        return catalogue

    def unknown(self, name: str) -> str:
        return f"unknown template set {name!r} (known: {', '.join(sorted(self.sets))})"

    def get(self, name: str) -> TemplateSet:
        if name not in self.sets:
            raise ConfigError(f"--template: {self.unknown(name)}")
        return self.sets[name]

    def select(self, rel: str | None, forced: str | None = None) -> Selection:
        """The selection for a transcript at vault-relative path `rel` (see the module's docstring)."""
        if forced is not None:
            return Selection(chosen=self.get(forced))
        for rule in self.rules:
            if rel is not None and rule.matches_path(rel):
                return Selection(chosen=self.sets[rule.set])
        by_type: dict[str, TemplateSet] = {}
        for rule in self.rules:
            if rule.kind == "type":
                by_type.setdefault(rule.pattern, self.sets[rule.set])
        return Selection(by_type=tuple(by_type.items()))

    def recorded(self, prompt_version: str | None, rel: str | None) -> Selection:
        """The selection for regenerating a note: the set named in its recorded prompt version if that
        set still exists (the folder it came from is gone once archived), else the rules' choice."""
        name = recorded_set(prompt_version)
        if name and name in self.sets:
            return Selection(chosen=self.sets[name])
        return self.select(rel)


def recorded_set(prompt_version: str | None) -> str | None:
    """The set name in a recorded prompt version `<base>+<name>.<hash>`, if any."""
    if not prompt_version or "+" not in prompt_version:
        return None
    return prompt_version.rpartition("+")[2].rpartition(".")[0] or None


def _read_set(folder: Traversable | Path, origin: str) -> TemplateSet:
    where = f"{folder}/{SET_FILE}" if origin != "preset" else f"preset {folder.name}"
    try:
        data: dict[str, Any] = tomllib.loads(folder.joinpath(SET_FILE).read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"invalid TOML: {err}", where) from err
    unknown = sorted(set(data) - {"description", "label", "instructions"})
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} (known: description, label, instructions)", where)
    values = {k: data.get(k, "") for k in ("description", "label", "instructions")}
    bad = [k for k, v in values.items() if not isinstance(v, str)]
    if bad:
        raise ConfigError(f"{bad[0]!r} must be a string", where)
    if not values["instructions"].strip():
        raise ConfigError("'instructions' is missing or empty", where)
    note = folder.joinpath(NOTE_FILE)
    note_text = note.read_text(encoding="utf-8") if note.is_file() else None
    try:  # a broken template is a configuration error now, not a traceback mid-run
        compile_template(values["instructions"], keep_trailing_newline=False).render(owner="", owner_aliases=[])
        if note_text is not None:
            where = f"{folder}/{NOTE_FILE}"
            compile_template(note_text, keep_trailing_newline=True)
    except jinja2.TemplateError as err:
        raise ConfigError(f"template error: {err}", where) from err
    return TemplateSet(
        name=folder.name,
        description=values["description"].strip() or folder.name,
        label=values["label"].strip(),
        instructions=values["instructions"],
        note_template=note_text,
        origin=origin,
    )


# --------------------------------------------------------------------------- applying a selection


def catalogue_for(pipeline: Pipeline) -> Catalogue:
    return Catalogue.load(pipeline.vault.root, pipeline.resolved.settings.templates)


def for_transcript(
    pipeline: Pipeline, path: Path | str | None, forced: str | None = None, catalogue: Catalogue | None = None
) -> Pipeline:
    """The pipeline to summarise the transcript at `path` with: `pipeline` itself when no set applies.
    `catalogue`: the sets as a batch loaded them once (else they are read now)."""
    catalogue = catalogue or catalogue_for(pipeline)
    if forced is None and not catalogue.rules:
        return pipeline
    rel = pipeline.vault.relative(Path(path)) if path is not None else None
    return apply(pipeline, catalogue.select(rel, forced))


def for_note(pipeline: Pipeline, record: NoteRecord | None, transcript_ref: str | None) -> Pipeline:
    """The pipeline to regenerate (or judge stale) a note with, from its store record."""
    catalogue = catalogue_for(pipeline)
    version = (record.prompt_version if record else None) or ""
    if not catalogue.rules and recorded_set(version) is None:
        return pipeline
    return apply(pipeline, catalogue.recorded(version, transcript_ref))


def apply(pipeline: Pipeline, selection: Selection) -> Pipeline:
    """`pipeline` bound to `selection`'s prompt addition and note template (itself when nothing applies)."""
    if selection.empty:
        return pipeline
    prompts = pipeline.prompts.with_addition(selection.name, selection.prompt_addition())
    return pipeline.with_templates(prompts, selection.note_template(pipeline.template_text))
