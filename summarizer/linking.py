"""Linking a meeting into the vault: names the model wrote -> notes that exist.

The model writes names as they were spoken, and speech recognition misspells them ("Manish" for
the vault's "Maneesh Sah", "Renan" for "Ronen Cohen"). A link to a note that does not exist makes
a new, empty note in Obsidian and splits a person's history in two, so a name is only linked when
the match is confident; otherwise it stays plain text, and `--explain` says why.

Rules, tried in order; the first that finds anything decides (a tie there is *ambiguous*, never a
guess, and the name stays unresolved with its candidates):

1. ``exact``: the note's file name.
2. ``alias``: a frontmatter alias.
3. ``normalised``: name or alias equal after case-folding, accent stripping and collapsing
   punctuation/whitespace ("jose muller" -> "José Müller"); honorifics (Dr, Mr...) dropped.
4. ``fuzzy``: rapidfuzz ``token_sort_ratio`` >= 90 against names and aliases of people,
   organisations, projects and other non-meeting notes, for queries of 4+ characters; the best
   must beat any *other* note by more than 3 points. (``WRatio``/``token_set_ratio`` score a bare
   first name 90-100 against any full name containing it, which would defeat rule 5's
   uniqueness check, so they are not used.)
5. ``first-name``: a one-word name equal to the first name of exactly one person note ("Jeff").
6. ``phonetic/asr-slip``: every word's `phonetic_key` equals the person note's (first name for
   a one-word query, whole name otherwise), the keys hold at least two consonants (three for a
   full name), exactly one person matches, and the first names still have a rapidfuzz
   ``ratio`` >= 55 (so "Aaron" and "Erin", which share a key, are not merged).

Rules 5-6 only consider person notes and are skipped when the caller says the entity is not a
person. Link text never contains ``[ ] | # ^``: a note whose name has them is not linked.
"""

from __future__ import annotations

import re
import unicodedata
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Literal, get_args

from rapidfuzz import fuzz, process

from summarizer.datefind import MONTHS
from summarizer.models import AccountCategory, MeetingExtraction, NoteType, Transcript
from summarizer.vault_index import IndexedNote, VaultIndex

Method = Literal["exact", "alias", "normalised", "fuzzy", "first-name", "phonetic/asr-slip"]
Role = Literal["account", "participant", "owner", "related"]
StubKind = Literal["person", "organisation"]

MYSELF = "Myself"
FUZZY_THRESHOLD = 90.0
FUZZY_MARGIN = 3.0
FUZZY_MIN_CHARS = 4
PHONETIC_MIN_CONSONANTS = 2
PHONETIC_MIN_RATIO = 55.0
LINK_FORBIDDEN = frozenset("[]|#^")
# Also unsafe in a file name, so never in a stub's name.
_FILENAME_FORBIDDEN = LINK_FORBIDDEN | frozenset('\\/:*?"<>')
_HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "dr", "prof", "sir", "dame"})
_OWNER_WORDS = frozenset({"me", "myself", "i", "vault owner"})
# A stub's `type`, as the vault's own notes write it (People/: people, Companies/: companies).
_STUB_TYPES = {"person": "people", "organisation": "companies"}

# --------------------------------------------------------------------------- normalisation

# Letters NFKD does not decompose into a base letter plus accents.
_FOLD = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i", "ß": "ss"}
)
_APOSTROPHES = re.compile(r"['’`´]")
_NON_WORD = re.compile(r"[\W_]+")


@lru_cache(maxsize=65_536)
def normalise_name(s: str) -> str:
    """Case-folded, accent-free, single-spaced words: the form names are compared in.

    Apostrophes vanish ("O'Brien" -> "obrien") and other punctuation separates words
    ("Jean-Luc" -> "jean luc"), so spelling variants of punctuation compare equal.
    Cached: a vault's names and first names repeat across tables and lookups.
    """
    folded = s.casefold()
    if folded.isascii():
        stripped = folded
    else:
        # Compatibility forms can decompose to capitals (U+A7F2 -> "C"): fold again after.
        compat = unicodedata.normalize("NFKD", folded).casefold().translate(_FOLD)
        decomposed = unicodedata.normalize("NFKD", compat)
        stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    stripped = _APOSTROPHES.sub("", stripped)
    return " ".join(_NON_WORD.sub(" ", stripped).split())


def _strip_honorific(norm: str) -> str:
    words = norm.split(" ")
    return " ".join(words[1:]) if len(words) > 1 and words[0] in _HONORIFICS else norm


_VOWELS = frozenset("aeiou")
# Multi-letter spellings of one sound, longest first; values are consonant symbols ("" = silent).
_CLUSTERS: tuple[tuple[str, str], ...] = (
    ("tch", "X"),
    ("sch", "X"),
    ("sh", "X"),
    ("ch", "X"),
    ("ph", "F"),
    ("th", "T"),
    ("gh", ""),
    ("ck", "K"),
    ("dg", "J"),
    ("qu", "K"),
)
_INITIAL = (("kn", "n"), ("gn", "n"), ("pn", "n"), ("wr", "r"), ("ps", "s"), ("wh", "w"))
_SINGLE = {"c": "K", "q": "K", "z": "S", "v": "F", "x": "KS"}


@lru_cache(maxsize=65_536)
def phonetic_key(word: str) -> str:
    """A rough sound key for one name word, for catching speech-recognition spelling slips.

    Metaphone-like: spellings of one sound share a symbol (sh/sch/ch -> X, ph/v -> F,
    c -> S before e/i/y else K, g -> J before e/i/y, z -> S), silent letters go (initial kn/wr,
    gh, h not starting a syllable, a final e after a consonant), doubled consonants count once,
    each run of vowels (with y and w where they act as vowels) counts as one syllable, and a
    leading vowel is kept as "A". The key is the consonant skeleton plus the syllable count:
    "Manish" and "Maneesh" -> "MNX2", "Renan" and "Ronen" -> "RNN2", "Jeff"/"Geoff" -> "JF1",
    but "Ryan" -> "RN1". Returns "" for a word with no letters.
    """
    w = "".join(c for c in normalise_name(word) if "a" <= c <= "z")
    if not w:
        return ""
    for prefix, repl in _INITIAL:
        if w.startswith(prefix):
            w = repl + w[len(prefix) :]
            break
    if len(w) > 3 and w[-1] == "e" and w[-2] not in _VOWELS and any(c in _VOWELS for c in w[:-2]):
        w = w[:-1]
    skeleton: list[str] = ["A"] if w[0] in _VOWELS or (w[0] == "y" and w[1:2] not in _VOWELS) else []
    syllables = 0
    in_vowel = False
    last = ""
    i = 0
    while i < len(w):
        c, nxt = w[i], w[i + 1 : i + 2]
        sym: str | None = None
        step = 1
        for cluster, repl in _CLUSTERS:
            if w.startswith(cluster, i):
                sym, step = repl, len(cluster)
                break
        if sym is None:
            if c in _VOWELS or (c == "y" and not (i == 0 and nxt in _VOWELS)):
                sym = "V"
            elif c == "w":
                sym = "W" if nxt in _VOWELS else "V"
            elif c == "h":
                sym = "H" if i == 0 and nxt in _VOWELS else ""
            elif c == "c":
                sym = "S" if nxt in ("e", "i", "y") else "K"
            elif c == "g":
                sym = "J" if nxt in ("e", "i", "y") else "G"
            else:
                sym = _SINGLE.get(c, c.upper())
        i += step
        if sym == "V":
            if not in_vowel:
                syllables += 1
            in_vowel = True
            last = ""
        elif sym:
            if sym != last:
                skeleton.append(sym)
            last = sym
            in_vowel = False
    return "".join(skeleton) + str(syllables)


def _consonants(key: str) -> int:
    return sum(1 for c in key if c.isalpha() and c != "A")


def is_linkable(name: str) -> bool:
    """Whether `[[name]]` is a well-formed link: no `[ ] | # ^`, no line breaks, not blank."""
    return bool(name.strip()) and not (LINK_FORBIDDEN.intersection(name) or "\n" in name or "\r" in name)


def clean_display(name: str) -> str:
    """Plain text safe to show unlinked: no link/tag/block syntax, single-spaced."""
    return " ".join("".join(" " if c in LINK_FORBIDDEN else c for c in name).split())


def _clean_query(name: str) -> str:
    """What the model meant: `[[Jai Menon|Jai]]`, `@Jai Menon`, `"Jai Menon"` all mean Jai Menon."""
    s = name.strip()
    if s.startswith("[[") and s.endswith("]]"):
        s = s[2:-2].split("|", 1)[0]
    s = s.strip().lstrip("@").strip().strip("\"'“”‘’").strip()
    return " ".join(s.split())


def slugify(name: str) -> str | None:
    """Tag slug: lowercase, spaces -> '-', only [\\w-/] (Unicode letters kept), one '-' at a time.

    None when nothing usable is left or it is all digits (Obsidian does not accept `#2025`).
    """
    s = "-".join(name.lower().split())
    s = re.sub(r"[^\w\-/]", "", s)
    s = re.sub(r"-{2,}", "-", s)
    s = re.sub(r"/{2,}", "/", s).strip("-/")
    if not s or not re.search(r"[^\d\-/_]", s):
        return None
    return s


# --------------------------------------------------------------------------- lookup tables


def _sorted_words(s: str) -> str:
    return " ".join(sorted(normalise_name(s).split()))


class _Tables:
    """Lookups derived from one version of an index, built lazily and only as rules need them."""

    def __init__(self, index: VaultIndex) -> None:
        self.index = index
        self.version = index.version

    @cached_property
    def normalised(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for note in self.index.notes:
            for form in (note.name, *note.aliases):
                key = _strip_honorific(normalise_name(form))
                if key:
                    out.setdefault(key, set()).add(note.name)
        return out

    @cached_property
    def entities(self) -> list[IndexedNote]:
        return [n for n in self.index.notes if n.kind != "meeting"]

    @cached_property
    def people(self) -> list[IndexedNote]:
        return [n for n in self.index.notes if n.kind == "person"]

    @cached_property
    def fuzzy(self) -> tuple[list[str], list[str]]:
        """Parallel lists: entity notes' names/aliases, normalised with words sorted, and their notes.

        Sorting once here makes `fuzz.ratio` against a sorted query equal `token_sort_ratio`
        without re-sorting 10,000 choices on every lookup.
        """
        forms: list[str] = []
        names: list[str] = []
        for note in self.entities:
            for form in {_sorted_words(f) for f in (note.name, *note.aliases)}:
                if form:
                    forms.append(form)
                    names.append(note.name)
        return forms, names

    @cached_property
    def first_names(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for note in self.people:
            for form in (note.name, *note.aliases):
                words = _strip_honorific(normalise_name(form)).split()
                if words:
                    out.setdefault(words[0], set()).add(note.name)
        return out

    @cached_property
    def phonetic(self) -> dict[tuple[str, ...], set[str]]:
        """Keys of whole person names and aliases, and of their first names alone."""
        out: dict[tuple[str, ...], set[str]] = {}
        for note in self.people:
            for form in (note.name, *note.aliases):
                words = _strip_honorific(normalise_name(form)).split()
                if not words:
                    continue
                out.setdefault(tuple(phonetic_key(w) for w in words), set()).add(note.name)
                if len(words) > 1:
                    out.setdefault((phonetic_key(words[0]),), set()).add(note.name)
        return out

    @cached_property
    def tokens(self) -> dict[str, set[str]]:
        """Each word of an entity note's name or alias -> the notes it appears in."""
        out: dict[str, set[str]] = {}
        for note in self.entities:
            for form in (note.name, *note.aliases):
                for word in normalise_name(form).split():
                    out.setdefault(word, set()).add(note.name)
        return out

    @cached_property
    def by_name(self) -> dict[str, IndexedNote]:
        out: dict[str, IndexedNote] = {}
        for name in self.index.names:
            note = self.index.get(name)
            if note is not None:
                out[name] = note
        return out


_TABLES: weakref.WeakKeyDictionary[VaultIndex, _Tables] = weakref.WeakKeyDictionary()


def _tables(index: VaultIndex) -> _Tables:
    tables = _TABLES.get(index)
    if tables is None or tables.version != index.version:
        tables = _TABLES[index] = _Tables(index)
    return tables


# --------------------------------------------------------------------------- resolve


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome for one name: a note to link to, or why not."""

    query: str
    target: str | None  # note name to link; None when unresolved
    method: Method | None
    score: float | None  # 0-100, how close the match was
    candidates: tuple[str, ...] = ()  # the tied notes when ambiguous
    reason: str = ""  # why it stayed unresolved

    @property
    def ambiguous(self) -> bool:
        return self.target is None and len(self.candidates) > 1


def _decide(query: str, hits: Iterable[str], method: Method, score: float) -> Resolution:
    names = sorted(set(hits))
    if len(names) > 1:
        return Resolution(query, None, None, None, tuple(names), f"ambiguous ({method})")
    target = names[0]
    if not is_linkable(target):
        return Resolution(query, None, None, None, (target,), "note name has [ ] | # ^ and cannot be linked")
    return Resolution(query, target, method, round(score, 1))


def resolve(name: str, index: VaultIndex, *, kind: str | None = None) -> Resolution:
    """Find the note `name` refers to, confidently or not at all (see the module docstring).

    `kind` is the model's entity kind when known: the person-only rules (first name, phonetic)
    are skipped unless it is None or "person".
    """
    query = _clean_query(name)
    if not query:
        return Resolution(name, None, None, None, reason="empty name")
    if query in index.names:
        return _decide(name, [query], "exact", 100.0)
    if query in index.aliases:
        return _decide(name, (n.name for n in index.aliases[query]), "alias", 100.0)
    tables = _tables(index)
    norm = _strip_honorific(normalise_name(query))
    if not norm:
        return Resolution(name, None, None, None, reason="no letters or digits")
    if norm in tables.normalised:
        return _decide(name, tables.normalised[norm], "normalised", 100.0)

    if len(norm) >= FUZZY_MIN_CHARS:
        forms, owners = tables.fuzzy
        matches = process.extract(
            " ".join(sorted(norm.split())), forms, scorer=fuzz.ratio, score_cutoff=FUZZY_THRESHOLD, limit=20
        )
        if matches:
            best: dict[str, float] = {}
            for _form, score, idx in matches:
                best[owners[idx]] = max(best.get(owners[idx], 0.0), float(score))
            top = max(best.values())
            tied = [n for n, s in best.items() if s > top - FUZZY_MARGIN]
            return _decide(name, tied, "fuzzy", top)

    if kind not in (None, "person"):
        return Resolution(name, None, None, None, reason="not in the vault")
    words = norm.split()
    if len(words) == 1 and words[0] in tables.first_names:
        return _decide(name, tables.first_names[words[0]], "first-name", 100.0)

    key = tuple(phonetic_key(w) for w in words)
    # One word must carry two consonants of evidence; a full name (e.g. "Jay Menon") three.
    needed = PHONETIC_MIN_CONSONANTS + (len(key) > 1)
    if all(key) and sum(_consonants(k) for k in key) >= needed and key in tables.phonetic:
        hits: dict[str, float] = {}
        for target in tables.phonetic[key]:
            ratio = float(fuzz.ratio(words[0], normalise_name(target).split()[0]))
            for alias in tables.by_name[target].aliases if target in tables.by_name else ():
                alias_words = normalise_name(alias).split()
                if alias_words:
                    ratio = max(ratio, float(fuzz.ratio(words[0], alias_words[0])))
            if ratio >= PHONETIC_MIN_RATIO:
                hits[target] = ratio
        if hits:
            return _decide(name, hits, "phonetic/asr-slip", max(hits.values()))
    return Resolution(name, None, None, None, reason="not in the vault")


# --------------------------------------------------------------------------- prompt candidates


@dataclass(frozen=True, slots=True)
class Candidate:
    """A vault note the transcript seems to mention, for the prompt's list of known names."""

    name: str
    aliases: tuple[str, ...]
    type: str | None
    kind: str
    score: float  # higher = more likely mentioned
    mentions: tuple[str, ...]  # the transcript's words that pointed here

    def prompt_line(self) -> str:
        """One line for the prompt: `- Maneesh Sah (person; also: Maneesh)`."""
        label = self.type or self.kind
        extra = f"; also: {', '.join(self.aliases)}" if self.aliases else ""
        return f"- {self.name} ({label}{extra})"


# Capitalised words that start sentences or fill speech rather than name anyone.
_STOPWORDS = frozenset(
    {
        "i",
        "i'm",
        "i've",
        "i'll",
        "i'd",
        "a",
        "an",
        "the",
        "and",
        "but",
        "or",
        "so",
        "if",
        "then",
        "than",
        "that",
        "this",
        "these",
        "those",
        "there",
        "here",
        "we",
        "you",
        "he",
        "she",
        "it",
        "they",
        "me",
        "my",
        "our",
        "your",
        "his",
        "her",
        "its",
        "their",
        "us",
        "them",
        "what",
        "who",
        "whom",
        "which",
        "when",
        "where",
        "why",
        "how",
        "yes",
        "yeah",
        "yep",
        "no",
        "nope",
        "ok",
        "okay",
        "oh",
        "um",
        "uh",
        "uhm",
        "hmm",
        "ah",
        "well",
        "right",
        "sure",
        "thanks",
        "thank",
        "hi",
        "hello",
        "hey",
        "bye",
        "good",
        "great",
        "cool",
        "just",
        "also",
        "now",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "do",
        "does",
        "did",
        "don't",
        "can",
        "can't",
        "could",
        "would",
        "should",
        "will",
        "won't",
        "let",
        "let's",
        "maybe",
        "actually",
        "really",
        "basically",
        "anyway",
        "because",
        "for",
        "to",
        "of",
        "in",
        "on",
        "at",
        "by",
        "with",
        "from",
        "as",
        "about",
        "all",
        "any",
        "some",
        "not",
        "one",
        "two",
        "mr",
        "mrs",
        "ms",
        "dr",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        *MONTHS,
    }
)
_WORD = re.compile(r"[^\W\d_][\w'’.-]*")
_MAX_SHARED_TOKEN = 20  # a word in more notes than this says nothing about which one


def _mentions(transcript: Transcript) -> Counter[str]:
    """Names the transcript offers: speaker labels, listed participants, capitalised word runs."""
    found: Counter[str] = Counter()
    for name in [*transcript.speakers(), *transcript.participants]:
        found[" ".join(name.split())] += 3
    for utt in transcript.utterances:
        run: list[str] = []
        last_end = -1
        for m in _WORD.finditer(utt.text):
            word = m.group().rstrip(".'’-")
            capital = word[:1].isupper() and normalise_name(word) not in _STOPWORDS
            if capital and run and m.start() == last_end + 1 and len(run) < 4:
                run.append(word)
            else:
                if run:
                    found[" ".join(run)] += 1
                run = [word] if capital else []
            last_end = m.start() + len(word)
        if run:
            found[" ".join(run)] += 1
    return found


def candidates_for_prompt(
    transcript: Transcript,
    index: VaultIndex,
    *,
    max_tokens: int,
    count_tokens: Callable[[str], int],
) -> list[Candidate]:
    """The vault's people and organisations this transcript probably mentions, best first.

    Scores: a mention resolved by `resolve` counts 10 per occurrence, a word shared with a note's
    name or alias counts 2 per occurrence split between the notes sharing it (so "Jason" puts both
    Jasons in front of the model, which can then tell them apart from context). The list is cut
    where the next `prompt_line()` (plus a newline) would exceed `max_tokens`.
    """
    tables = _tables(index)
    scores: dict[str, float] = {}
    why: dict[str, list[str]] = {}

    def credit(target: str, points: float, mention: str) -> None:
        scores[target] = scores.get(target, 0.0) + points
        seen = why.setdefault(target, [])
        if mention not in seen:
            seen.append(mention)

    for mention, count in _mentions(transcript).items():
        res = resolve(mention, index)
        if res.target is not None:
            credit(res.target, 10.0 * count, mention)
        for target in res.candidates:
            credit(target, 5.0 * count / len(res.candidates), mention)
        for word in normalise_name(mention).split():
            if len(word) < 2 or word in _STOPWORDS:
                continue
            sharing = tables.tokens.get(word, set())
            if 0 < len(sharing) <= _MAX_SHARED_TOKEN:
                for target in sharing:
                    credit(target, 2.0 * count / len(sharing), mention)

    out: list[Candidate] = []
    used = 0
    for target, score in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])):
        note = tables.by_name.get(target)
        if note is None or note.kind == "meeting" or not is_linkable(target):
            continue
        cand = Candidate(
            note.name, note.aliases, note.type, note.kind, round(float(score), 2), tuple(why[target])
        )
        cost = count_tokens(cand.prompt_line() + "\n")
        if used + cost > max_tokens:
            break
        used += cost
        out.append(cand)
    return out


# --------------------------------------------------------------------------- linking a meeting


@dataclass(frozen=True, slots=True)
class ExplainLine:
    """One name's fate, for `--explain`."""

    role: Role
    name: str  # as the model wrote it
    target: str | None  # what it links to / renders as; None when dropped
    method: str | None  # a `Method`, "owner", "stub" or None
    score: float | None
    detail: str  # how, or why it stayed unresolved / was left out


@dataclass(slots=True)
class LinkResult:
    """Everything the renderer needs to link a meeting note into the vault."""

    account: str | None  # canonical note name if resolved, else the text as given
    account_linked: bool
    account_tag_slug: str | None  # slug of `account` for the `account/<slug>` tag
    participants: list[str]
    owners: dict[str, str]  # action item owner as given -> "Myself" / canonical / as given
    related: list[str]  # note names to list under Related, each an existing note or planned stub
    stubs_to_create: list[tuple[str, str]] = field(default_factory=list)  # (vault-relative path, name)
    explain: list[ExplainLine] = field(default_factory=list)
    stub_kinds: dict[str, StubKind] = field(default_factory=dict)  # stub path -> what the stub is about
    note_type: NoteType | None = None  # set when the account came from the vault, not the extraction
    account_category: AccountCategory | None = None  # likewise

    def apply(self, extraction: MeetingExtraction) -> MeetingExtraction:
        """The extraction with the note type and category the vault decided, if it decided any."""
        if self.note_type is None:
            return extraction
        return extraction.model_copy(
            update={"note_type": self.note_type, "account_category": self.account_category}
        )


def stub_frontmatter(kind: StubKind | None) -> dict[str, object]:
    """A stub's properties: the vault's type for what it is (so it indexes as that) and the `stub` tag."""
    return {"type": _STUB_TYPES.get(kind or "", "stub"), "tags": ["stub"]}


def stub_text(name: str, kind: StubKind | None) -> str:
    """The whole text of a stub note for `name` (a name `_stub_name` accepted: one line, file-safe)."""
    data = stub_frontmatter(kind)
    return f"---\ntype: {data['type']}\ntags:\n- stub\n---\n\n# {name}\n"


# Words of speaker labels that name a role, not a person ("Project Manager", "Grad C", "Speaker 2").
_ROLE_WORDS = frozenset(
    {
        "speaker",
        "participant",
        "unknown",
        "guest",
        "host",
        "moderator",
        "interviewer",
        "interviewee",
        "caller",
        "attendee",
        "user",
        "manager",
        "designer",
        "interface",
        "marketing",
        "expert",
        "professor",
        "grad",
        "phd",
        "postdoc",
        "student",
        "team",
        "member",
    }
)


def _person_like(name: str) -> bool:
    """Whether a name is a person's full name fit for a stub: two words or more, no role word, not
    ending in a one-letter or number label ("Grad C", "Speaker 2"). A bare first name is too little."""
    words = normalise_name(name).split()
    return (
        len(words) >= 2
        and not _ROLE_WORDS.intersection(words)
        and not (len(words[-1]) == 1 or words[-1].isdigit())
    )


def _stub_name(name: str) -> str | None:
    """A name fit to become a note's file name and link text, or None."""
    cleaned = " ".join("".join(" " if c in _FILENAME_FORBIDDEN else c for c in _clean_query(name)).split())
    return cleaned if cleaned and not cleaned.startswith(".") else None


# Related lists people first, then projects and concepts, then organisations (the reference note's order).
_RELATED_RANK = {"person": 0, "organisation": 2}
_TITLE_NGRAM = 4


def _orgs_in_title(title: str, index: VaultIndex) -> list[tuple[IndexedNote, bool]]:
    """Organisation notes the title names exactly (name, alias or normalised), each with whether
    "with" comes right before it ("Planning with Northwind"). No fuzzy matching: a title is short."""
    words = [w.strip(".,:;!?()\"'“”‘’") for w in title.split()]
    tables = _tables(index)
    found: dict[str, tuple[IndexedNote, bool]] = {}
    for size in range(_TITLE_NGRAM, 0, -1):
        for start in range(len(words) - size + 1):
            phrase = " ".join(words[start : start + size]).strip()
            if not phrase:
                continue
            names = {n.name for n in index.names.get(phrase, [])} | {n.name for n in index.aliases.get(phrase, [])}
            names |= tables.normalised.get(_strip_honorific(normalise_name(phrase)), set())
            after_with = start > 0 and words[start - 1].casefold() == "with"
            for name in names:
                note = index.get(name)
                if note is not None and note.kind == "organisation" and is_linkable(note.name):
                    seen = found.get(note.name)
                    found[note.name] = (note, after_with or (seen is not None and seen[1]))
    return list(found.values())


def _org_of(person: IndexedNote | None, index: VaultIndex) -> IndexedNote | None:
    """The organisation note a person's note names (`company: ...`), if the vault has one."""
    if person is None or person.org is None:
        return None
    res = resolve(person.org, index, kind="organisation")
    note = index.get(res.target) if res.target else None
    return note if note is not None and note.kind == "organisation" else None


def _account_from_vault(
    title: str, people: Sequence[IndexedNote], owner_note: IndexedNote | None, index: VaultIndex
) -> tuple[IndexedNote, str] | None:
    """The organisation (or person) a meeting without an account is with, when the vault makes it clear.

    Conservative: an organisation only mentioned somewhere never counts. It must be named in the
    title *and* be the organisation of a participant's note, or be the one outside organisation
    the participants belong to (the owner's own organisation known and different), or follow
    "with" in the title with no participant from elsewhere. Failing those, a participant the
    title says the meeting is "with" ("1:1 with Jai Menon") is the account of a `people` note.
    """
    own = _org_of(owner_note, index)
    members: dict[str, list[str]] = {}
    notes: dict[str, IndexedNote] = {}
    for person in people:
        org = _org_of(person, index)
        if org is not None and (own is None or org.name != own.name):
            members.setdefault(org.name, []).append(person.name)
            notes[org.name] = org
    titled = [(n, w) for n, w in _orgs_in_title(title, index) if own is None or n.name != own.name]
    both = [n for n, _ in titled if n.name in members]
    if len(both) == 1:
        org = both[0]
        return org, f"named in the title, and the organisation of {', '.join(members[org.name])}"
    if not both and own is not None and len(members) == 1:
        name, who = next(iter(members.items()))
        return notes[name], f"the organisation of {', '.join(who)} (the owner is at {own.name})"
    with_orgs = [n for n, w in titled if w]
    if not both and not members and len(with_orgs) == 1:
        return with_orgs[0], "the title says the meeting is with it"
    # "1:1 with Jai": a participant the title says the meeting is with (full name, alias or first name).
    _, with_word, rest = title.casefold().partition("with ")
    after = normalise_name(rest).split() if with_word else []
    met = [
        p
        for p in people
        if any(
            words and after[: len(words)] == words
            for words in (normalise_name(f).split() for f in (p.name, *p.aliases, p.name.split()[0]))
        )
    ]
    if after and len(met) == 1:
        return met[0], "the title says the meeting is with them, and they took part"
    return None


def link_extraction(
    extraction: MeetingExtraction,
    index: VaultIndex,
    *,
    owner: str | None,
    owner_aliases: Sequence[str],
    stub_folder: str | None = None,
    keep_owner_in_related: bool = False,
) -> LinkResult:
    """Resolve the account, participants, action owners and Related entities against the vault.

    Only confident matches become links. Related lists, once each, the notes of the participants
    and action owners, the account's organisation (when the account is a person) and what the
    meeting was about, people first, then projects and concepts, then organisations, never the
    meeting's own account. With no account in the extraction, one the vault makes clear (see
    `_account_from_vault`) is used, with its note type and category. With `stub_folder` set, a
    participant or action owner with a full name and no note, and an unknown account, are
    planned as stub notes in that folder (never a name only mentioned: "PR", "API"); the caller
    writes `stub_text` and `index.add`s them. `keep_owner_in_related` keeps the vault owner in
    Related, as the vault's notes do.
    """
    explain: list[ExplainLine] = []
    owner_forms = {normalise_name(x) for x in (owner, *owner_aliases) if x} | _OWNER_WORDS
    owner_res = resolve(owner, index, kind="person") if owner else None
    owner_target = owner_res.target if owner_res else None
    owner_display = owner_target or (clean_display(owner) if owner else MYSELF)

    def is_owner(name: str, res: Resolution | None) -> bool:
        if _strip_honorific(normalise_name(_clean_query(name))) in owner_forms:
            return True
        return owner_target is not None and res is not None and res.target == owner_target

    planned: dict[str, str] = {}  # normalised name -> stub name
    stubs: list[tuple[str, str]] = []
    stub_kinds: dict[str, StubKind] = {}

    def plan_stub(name: str, kind: StubKind) -> str | None:
        stub = _stub_name(name)
        if stub_folder is None or stub is None:
            return None
        if kind == "person" and not _person_like(stub):
            return None
        key = normalise_name(stub)
        if key not in planned:
            planned[key] = stub
            folder = stub_folder.strip("/")
            path = f"{folder}/{stub}.md" if folder else f"{stub}.md"
            stubs.append((path, stub))
            stub_kinds[path] = kind
        return planned[key]

    def unresolved_detail(res: Resolution) -> str:
        if res.ambiguous:
            return f"unresolved: {res.reason}: {', '.join(res.candidates)}"
        return f"unresolved: {res.reason}"

    # Related candidates in the order they come up: (note name, what it is).
    mentioned: list[tuple[str, str]] = []

    def mention(target: str, kind: str | None) -> None:
        note = index.get(target)
        mentioned.append((target, note.kind if note is not None else (kind or "other")))

    # Account
    account: str | None = None
    account_linked = False
    account_kind: StubKind = "person" if extraction.note_type == "people" else "organisation"
    if extraction.account and _clean_query(extraction.account):
        res = resolve(extraction.account, index)
        if res.target is not None:
            account, account_linked = res.target, True
            explain.append(
                ExplainLine(
                    "account", extraction.account, res.target, res.method, res.score, f"linked ({res.method})"
                )
            )
        elif not res.ambiguous and (stub := plan_stub(extraction.account, account_kind)) is not None:
            account, account_linked = stub, True
            explain.append(
                ExplainLine("account", extraction.account, stub, "stub", None, f"stub planned ({res.reason})")
            )
        else:
            account = clean_display(_clean_query(extraction.account))
            explain.append(
                ExplainLine(
                    "account",
                    extraction.account,
                    account,
                    None,
                    None,
                    unresolved_detail(res) + "; kept as plain text",
                )
            )

    def person(name: str, role: Role, res: Resolution) -> tuple[str, ExplainLine]:
        """How a participant or action owner who is not the owner shows, stub planned if asked."""
        if res.target is not None:
            mention(res.target, "person")
            return res.target, ExplainLine(role, name, res.target, res.method, res.score, f"linked ({res.method})")
        if not res.ambiguous and (stub := plan_stub(name, "person")) is not None:
            mention(stub, "person")
            return stub, ExplainLine(role, name, stub, "stub", None, f"stub planned ({res.reason})")
        shown = clean_display(_clean_query(name)) or name
        return shown, ExplainLine(role, name, shown, None, None, unresolved_detail(res) + "; as given")

    def owner_mention() -> None:
        if keep_owner_in_related and owner_target is not None:
            mention(owner_target, "person")

    # Participants
    participants: list[str] = []
    people: list[IndexedNote] = []  # participants' own notes, the owner's excluded
    for name in extraction.participants:
        if not _clean_query(name):
            continue
        res = resolve(name, index, kind="person")
        if is_owner(name, res):
            shown = owner_display
            line = ExplainLine("participant", name, owner_display, "owner", None, "the vault owner")
            owner_mention()
        else:
            shown, line = person(name, "participant", res)
            note = index.get(res.target) if res.target else None
            if note is not None and note.kind == "person":
                people.append(note)
        if shown in participants:
            line = ExplainLine("participant", name, None, line.method, line.score, f"duplicate of {shown}")
        else:
            participants.append(shown)
        explain.append(line)

    # Action item owners
    owners: dict[str, str] = {}
    for item in extraction.action_items:
        if item.owner is None or item.owner in owners:
            continue
        res = resolve(item.owner, index, kind="person")
        if is_owner(item.owner, res):
            owners[item.owner] = MYSELF
            explain.append(ExplainLine("owner", item.owner, MYSELF, "owner", None, "the vault owner"))
            owner_mention()
        else:
            owners[item.owner], line = person(item.owner, "owner", res)
            explain.append(line)

    # No account given: the vault may say who the meeting is with.
    note_type: NoteType | None = None
    category: AccountCategory | None = None
    if account is None:
        owner_note = index.get(owner_target) if owner_target else None
        found = _account_from_vault(extraction.title, people, owner_note, index)
        if found is not None:
            org, why = found
            is_person = org.kind == "person"
            account, account_linked = org.name, True
            note_type = "people" if is_person else "customer"
            # The category is the vault's word for it: the note's type, else (a person) their organisation's.
            typed = [org, *([o] if is_person and (o := _org_of(org, index)) else [])]
            kinds = [(n.type or "").casefold() for n in typed]
            category = next((c for k in kinds for c in get_args(AccountCategory) if c == k), None)
            explain.insert(0, ExplainLine("account", "(none given)", org.name, "vault", None, f"from the vault: {why}"))
    account_key = normalise_name(account) if account else None
    account_slug = slugify(account) if account else None

    # A person account's organisation belongs in Related (the account itself never does).
    if account_linked and account is not None:
        account_org = _org_of(index.get(account), index)
        if account_org is not None:
            mention(account_org.name, "organisation")

    # What the meeting was about
    for entity in extraction.related:
        res = resolve(entity.name, index, kind=entity.kind)
        if (
            entity.kind in ("person", "organisation")
            and not keep_owner_in_related
            and is_owner(entity.name, res)
        ):
            explain.append(
                ExplainLine("related", entity.name, None, "owner", None, "left out: the vault owner")
            )
            continue
        target: str | None = res.target
        method: str | None = res.method
        if target is None:
            if res.ambiguous:
                explain.append(
                    ExplainLine(
                        "related", entity.name, None, None, None, unresolved_detail(res) + "; left out"
                    )
                )
                continue
            stub = _stub_name(entity.name)
            target = planned.get(normalise_name(stub)) if stub else None
            method = "stub"
            if target is None:
                why = "; left out"
                if stub_folder is not None:
                    why = "; left out (stubs are only made for speakers, action owners and the account)"
                explain.append(
                    ExplainLine("related", entity.name, None, None, None, unresolved_detail(res) + why)
                )
                continue
        if account_key is not None and normalise_name(target) == account_key:
            explain.append(
                ExplainLine(
                    "related", entity.name, None, method, res.score, "left out: the meeting's account"
                )
            )
        elif any(target == t for t, _ in mentioned):
            explain.append(
                ExplainLine("related", entity.name, None, method, res.score, f"duplicate of {target}")
            )
        else:
            mention(target, entity.kind)
            detail = "stub planned" if method == "stub" else f"linked ({method})"
            explain.append(ExplainLine("related", entity.name, target, method, res.score, detail))

    related: list[str] = []
    for target, _kind in sorted(mentioned, key=lambda m: _RELATED_RANK.get(m[1], 1)):
        if target not in related and (account_key is None or normalise_name(target) != account_key):
            related.append(target)

    return LinkResult(
        account=account,
        account_linked=account_linked,
        account_tag_slug=account_slug,
        participants=participants,
        owners=owners,
        related=related,
        stubs_to_create=stubs,
        explain=explain,
        stub_kinds=stub_kinds,
        note_type=note_type,
        account_category=category,
    )


def format_explain(result: LinkResult) -> str:
    """Human-readable report of every linking decision, one line per name."""
    lines: list[str] = []
    width = max((len(line.name) for line in result.explain), default=0)
    for line in result.explain:
        arrow = (
            f"-> [[{line.target}]]"
            if line.target and (line.method not in (None, "owner"))
            else (f"-> {line.target}" if line.target else "-> (none)")
        )
        linked = line.target is not None and line.score is not None
        score = f" score {line.score:g}" if linked else ""
        lines.append(f"{line.role:<11} {line.name:<{width}}  {arrow}  {line.detail}{score}")
    if result.stubs_to_create:
        lines.append("stubs to create: " + ", ".join(path for path, _ in result.stubs_to_create))
    return "\n".join(lines)
