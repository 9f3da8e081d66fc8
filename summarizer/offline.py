"""Extraction without a model: graph ranking plus cue-phrase rules.

Why: the tool must still produce a useful (if plainer) note with no API key,
offline, or in CI; and the evaluation needs a cheap, deterministic baseline to
compare the model against. Everything here is pure Python plus numpy, and a
three-hour (~30k-word) transcript takes a fraction of a second.

How, in brief:

* sentences come from utterances after undoing QMSum tokenisation
  (``I 'll`` -> ``I'll``) and dropping tags and filler utterances;
* summary: TextRank (PageRank over word-overlap similarity, Mihalcea & Tarau
  2004) picks ~100 words of central, non-redundant sentences; they are reported
  in transcript order as attributed quotes after a one-line topic sentence
  (honest third person: "Alice said: “...”" rather than a fragile pronoun rewrite);
* action items: commitment cues ("I'll", "I'm going to", "can you", "<name> will",
  "we need to", "action item") followed by an action verb; the owner is the
  speaker, or the addressee for requests; deadlines are resolved against the
  meeting date (rules in `resolve_deadline`);
* decisions: decision cues ("we agreed", "let's go with", "decided", ...)
  that are not negated or asked;
* key information: sentences carrying numbers, money, percentages, dates or
  mid-sentence capitalised names; related entities are the frequent ones.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz

from summarizer.grounding import detokenise
from summarizer.models import (
    ActionItem,
    Decision,
    Entity,
    EntityKind,
    ExtractionResult,
    MeetingExtraction,
    Priority,
    Transcript,
    Usage,
)

VERSION = "3"  # bump when the rules change: it is part of the extraction cache key
ENGINE = "offline"
MODEL = "offline"
PROMPT_VERSION = f"offline-{VERSION}"

SUMMARY_WORDS = 100  # about the length of a human abstract of a one-hour meeting
MAX_SUMMARY_SENTENCES = 6
MAX_ACTIONS = 12
MAX_DECISIONS = 8
MAX_KEY_INFO = 8
MAX_RELATED = 10
MAX_EVIDENCE_WORDS = 25
_MAX_RANKED = 1500  # TextRank is quadratic; beyond this, pre-select by a linear centroid score


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOPWORDS = _wordset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by did do does doing done down during each few for from further had has have having he
    her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor
    not now of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours yourself yourselves
    can could may might must shall also yeah yes okay ok um uh erm hmm mm oh ah like know think mean gonna
    wanna gotta really actually kind sort thing things something anything everything stuff right well lot
    get got go going goes went say said see saw want maybe probably basically guess sure yep nope alright
    one way let's let us i'm i'll i've i'd you're you've you'll we're we've we'll they're it's that's there's
    don't doesn't didn't can't won't isn't aren't wasn't weren't haven't hasn't wouldn't couldn't shouldn't
    what's here's he's she's come make made take good great cool fine pretty bit little much many quite
    even still already yet again ever never always sometimes often us uh-huh mm-hmm hm huh whatever
    work need use look time start talk people point question today now put ones talking means kay"""
)
_FILLER = _wordset(
    "okay ok yeah yes yep no nope right mm-hmm mm uh-huh hmm hm um uh oh ah alright sure cool great fine "
    "good thanks thank you so well and but huh wow exactly true indeed absolutely definitely"
)
_HESITATION = re.compile(
    r"(?<![\w'-])(?:um+|uh+|erm+|hmm+|mm+|uh-huh|mm-hmm)(?![\w'-])[,.]?\s*", re.IGNORECASE
)
_ACRONYM = re.compile(r"\b((?:[A-Za-z]_){2,})")  # QMSum writes "TV" as "T_V_"
_SENT_SPLIT = re.compile(r"(?<=[.?!…])\s+")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")
_LEADING_MARKER = re.compile(
    r"^(?:(?:so|okay|ok|and|well|yeah|yes|right|alright|now|but|oh|um|uh|like|then|anyway)\b[,.]?\s+)+",
    re.IGNORECASE,
)
_REPEAT = re.compile(r"\b(\w+(?:'\w+)?)(?:\s+\1\b)+", re.IGNORECASE)

# --------------------------------------------------------------------------- text helpers


def _clean(text: str) -> str:
    """Detokenised text with QMSum acronyms joined and an ellipsis treated as a pause."""
    text = _ACRONYM.sub(lambda m: m.group(1).replace("_", ""), text)
    return detokenise(text.replace("…", ". ").replace("...", ". "))


def _tidy(sentence: str) -> str:
    """A readable rendering: no hesitations, stutters or leading discourse markers."""
    s = _HESITATION.sub("", sentence)
    s = _REPEAT.sub(r"\1", s)
    s = _LEADING_MARKER.sub("", s).strip(" ,;-")
    s = re.sub(r"\s+([,.?!])", r"\1", s)
    s = re.sub(r"([,;])\1+|,\s*([.?!])", lambda m: m.group(1) or m.group(2), s)
    return s[:1].upper() + s[1:] if s else s


def _evidence(sentence: str) -> str:
    """A verbatim-enough quote: hesitations dropped (grounding ignores them), nothing reworded."""
    return re.sub(r"\s+", " ", _HESITATION.sub("", sentence)).strip()


def _words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def _stem(word: str) -> str:
    """A crude suffix stripper: enough to make 'buttons' meet 'button' in the similarity graph."""
    if word.endswith("'s"):
        word = word[:-2]
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _content(words: Sequence[str]) -> list[str]:
    return [_stem(w) for w in words if w not in _STOPWORDS and len(w) > 2 and not w.isdigit()]


def _cut_words(text: str, start: int, limit: int) -> str:
    """At most `limit` words of `text`, starting a little before word `start` when cutting is needed."""
    words = text.split()
    if len(words) <= limit:
        return text
    first = max(0, min(start - 3, len(words) - limit))
    return " ".join(words[first : first + limit])


@dataclass
class _Sentence:
    position: int
    utterance: int
    speaker: str | None
    text: str  # cleaned (detokenised), still verbatim
    plain: str  # `text` without hesitations: the evidence form
    lower: str  # `plain` lower-cased, same offsets, for cue matching
    words: list[str]
    terms: list[str]  # stemmed content words

    @property
    def is_question(self) -> bool:
        return self.text.rstrip().endswith("?")

    @property
    def is_filler(self) -> bool:
        return all(w in _FILLER for w in self.words) or len(self.terms) < 2


def _sentences(transcript: Transcript) -> list[_Sentence]:
    out: list[_Sentence] = []
    for u_index, utterance in enumerate(transcript.utterances):
        for raw in _SENT_SPLIT.split(_clean(utterance.text)):
            text = raw.strip()
            words = _words(text)
            if not words:
                continue
            plain = _evidence(text)
            lower = plain.lower().replace("’", "'")
            if len(lower) != len(plain):  # exotic case mapping: keep offsets aligned
                plain = lower
            out.append(
                _Sentence(len(out), u_index, utterance.speaker, text, plain, lower, words, _content(words))
            )
    return out


# --------------------------------------------------------------------------- summary (TextRank)


def _textrank(sentences: Sequence[_Sentence], damping: float = 0.85) -> tuple[np.ndarray, np.ndarray]:
    """PageRank scores over the overlap graph, plus the cosine matrix used to avoid repeats.

    Edge weight is the original TextRank one: shared terms / (log|Si| + log|Sj|).
    """
    vocab: dict[str, int] = {}
    rows: list[list[int]] = []
    for s in sentences:
        rows.append(sorted({vocab.setdefault(t, len(vocab)) for t in s.terms}))
    n = len(sentences)
    matrix = np.zeros((n, max(len(vocab), 1)), dtype=np.float32)
    for i, cols in enumerate(rows):
        matrix[i, cols] = 1.0
    overlap = matrix @ matrix.T
    np.fill_diagonal(overlap, 0.0)
    sizes = np.maximum(matrix.sum(axis=1), 1.0)
    logs = np.log(np.maximum(sizes, 2.0))
    weights = overlap / (logs[:, None] + logs[None, :])
    row_sums = weights.sum(axis=1, keepdims=True)
    transition = np.where(row_sums > 0, weights / np.where(row_sums > 0, row_sums, 1.0), 1.0 / n)
    rank = np.full(n, 1.0 / n, dtype=np.float64)
    for _ in range(100):
        new = (1.0 - damping) / n + damping * (transition.T @ rank)
        if float(np.abs(new - rank).sum()) < 1e-7:
            rank = new
            break
        rank = new
    cosine = overlap / np.sqrt(sizes[:, None] * sizes[None, :])
    return rank, cosine


def _centroid_preselect(candidates: list[_Sentence], limit: int) -> list[_Sentence]:
    """Keep the `limit` sentences richest in frequent terms, so the quadratic step stays bounded."""
    freq = Counter(t for s in candidates for t in set(s.terms))
    scored = sorted(candidates, key=lambda s: -sum(freq[t] for t in set(s.terms)) / (len(s.terms) ** 0.5))
    return sorted(scored[:limit], key=lambda s: s.position)


def _summary_sentences(sentences: Sequence[_Sentence]) -> list[_Sentence]:
    candidates = [s for s in sentences if not s.is_filler and not s.is_question and 6 <= len(s.words) <= 35]
    candidates = [s for s in candidates if len(s.terms) >= 3] or candidates
    if len(candidates) > _MAX_RANKED:
        candidates = _centroid_preselect(candidates, _MAX_RANKED)
    if not candidates:
        return []
    rank, cosine = _textrank(candidates)
    chosen: list[int] = []
    words = 0
    for i in sorted(range(len(candidates)), key=lambda k: (-rank[k], k)):
        if any(cosine[i, j] > 0.5 for j in chosen):
            continue
        chosen.append(i)
        words += len(candidates[i].words)
        if words >= SUMMARY_WORDS or len(chosen) >= MAX_SUMMARY_SENTENCES:
            break
    return [candidates[i] for i in sorted(chosen)]


def _join_names(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _compose_summary(transcript: Transcript, picked: Sequence[_Sentence], topics: Sequence[str]) -> str:
    speakers = transcript.speakers()
    who = f"{_join_names(speakers)}" if 0 < len(speakers) <= 4 else f"{len(speakers)} participants"
    if not speakers:
        who = "The participants"
    opening = f"{who} discussed {_join_names(list(topics))}." if topics else f"{who} met."
    verbs = ("said", "noted", "explained", "added")
    parts = [opening]
    for k, s in enumerate(picked):
        quote = _tidy(s.text).rstrip(".")
        if not quote:
            continue
        speaker = s.speaker or "One participant"
        parts.append(f"{speaker} {verbs[k % len(verbs)]}: “{quote}.”")
    return " ".join(parts)


# --------------------------------------------------------------------------- deadlines

_WEEKDAYS = {d.lower(): i for i, d in enumerate(calendar.day_name)}
_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m and m != "May"})
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "ten": 10}
_PREP = r"(?:(?:by|on|before|until|till|for|due|at)\s+)?(?:the\s+)?"
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_YEAR = r"\.?(?:,?\s*(\d{4}))?"
_DEADLINE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("iso", re.compile(r"\b(?:by|on|before|until|due)?\s*(\d{4})-(\d{2})-(\d{2})\b")),
    ("day_month", re.compile(_PREP + rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_RE})\b{_YEAR}")),
    ("month_day", re.compile(_PREP + rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b{_YEAR}")),
    (
        "today",
        re.compile(_PREP + r"\b(?:end of (?:the |to)?day|eod|today|tonight|this (?:afternoon|evening))\b"),
    ),
    ("tomorrow", re.compile(_PREP + r"\b(?:end of )?tomorrow\b")),
    ("end_next_week", re.compile(_PREP + r"\bend of next week\b")),
    ("this_week", re.compile(_PREP + r"\b(?:end of (?:the |this )?week|this week)\b")),
    ("next_week", re.compile(_PREP + r"\bnext week\b")),
    ("end_next_month", re.compile(_PREP + r"\bend of next month\b")),
    ("end_month", re.compile(_PREP + r"\bend of (?:the |this )?month\b")),
    ("next_month", re.compile(_PREP + r"\bnext month\b")),
    ("weekday", re.compile(_PREP + r"\b(?:this |next |coming )?(" + "|".join(_WEEKDAYS) + r")\b")),
    ("in_n", re.compile(r"\b(?:with)?in\s+(\d+|a|an|one|two|three|four|five|six|ten)\s+(day|week)s?\b")),
]


def resolve_deadline(sentence: str, meeting: dt.date | None) -> tuple[dt.date | None, tuple[int, int] | None]:
    """The deadline stated in `sentence`, resolved against the meeting date, and where it was said.

    Rules (all relative to the meeting date; no meeting date means no due date,
    except a full ISO date or a day-month-year date):
    * "today"/"tonight"/"end of day" -> the meeting date; "tomorrow" -> the next day;
    * "<weekday>", "this/next/coming <weekday>" -> the first such day strictly after the meeting
      (people say "next Friday" for both readings; the earlier one is the safer deadline);
    * "this week"/"end of the week" -> that week's Friday (the meeting date if already past Friday);
    * "next week" and "end of next week" -> Friday of the following week (the LLM prompt's rule too,
      so both engines date a task alike);
    * "end of the month" -> its last day; "next month" -> the 1st of the next month;
      "end of next month" -> the last day of the next month;
    * "in N days/weeks" -> meeting date + N days/weeks;
    * "March 20"/"20th of March" -> that day in the meeting's year, or the next year if already past.
    Returns (due, (start, end) span of the phrase in `sentence`) or (None, None).
    """
    text = sentence.lower()
    for kind, pattern in _DEADLINE_PATTERNS:
        match = pattern.search(text)
        if match is None:
            continue
        span = match.span()
        try:
            return _resolve(kind, match, meeting), span
        except ValueError:  # "31 February" and the like
            return None, span
    return None, None


def _resolve(kind: str, m: re.Match[str], meeting: dt.date | None) -> dt.date | None:
    if kind == "iso":
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if kind in ("day_month", "month_day"):
        day, month = (m.group(1), m.group(2)) if kind == "day_month" else (m.group(2), m.group(1))
        if m.group(3):
            return dt.date(int(m.group(3)), _MONTHS[month], int(day))
        if meeting is None:
            return None
        due = dt.date(meeting.year, _MONTHS[month], int(day))
        return due if due >= meeting else due.replace(year=meeting.year + 1)
    if meeting is None:
        return None
    monday_next = meeting + dt.timedelta(days=7 - meeting.weekday())
    if kind == "today":
        return meeting
    if kind == "tomorrow":
        return meeting + dt.timedelta(days=1)
    if kind == "this_week":
        return meeting + dt.timedelta(days=max(0, 4 - meeting.weekday()))
    if kind in ("next_week", "end_next_week"):
        return monday_next + dt.timedelta(days=4)
    if kind == "end_month":
        return meeting.replace(day=calendar.monthrange(meeting.year, meeting.month)[1])
    first_next = (meeting.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    if kind == "next_month":
        return first_next
    if kind == "end_next_month":
        return first_next.replace(day=calendar.monthrange(first_next.year, first_next.month)[1])
    if kind == "weekday":
        ahead = (_WEEKDAYS[m.group(1)] - meeting.weekday()) % 7 or 7
        return meeting + dt.timedelta(days=ahead)
    count = int(m.group(1)) if m.group(1).isdigit() else _NUMBERS[m.group(1)]
    return meeting + dt.timedelta(days=count * (7 if m.group(2) == "week" else 1))


# --------------------------------------------------------------------------- action items

_ACTION_VERBS = _wordset(
    """send email e-mail mail forward share post circulate distribute check look review read write draft
    prepare put update follow schedule set book organise organize arrange contact call ping ask talk reach
    find figure investigate research test fix merge finish complete implement add create build design make
    work start open file submit upload run deploy release document summarise summarize type compile collect
    gather bring present demo coordinate sort clean handle take assign confirm verify measure calculate
    estimate order buy install configure notify invite reply respond sync rebase rerun regenerate publish
    announce report record note tell remind discuss evaluate explore analyse analyze compare finalise
    finalize revise rewrite edit refine deliver provide produce plan propose mock sketch prototype get
    move raise escalate approve sign write-up loop cc reschedule cancel remove delete change replace copy
    pull push close double-check"""
)
_SKIP_AFTER_CUE = _wordset(
    "just also then probably definitely actually quickly maybe still certainly really first try to go ahead "
    "and be sure please kindly"
)
# verbs that only describe a task with the right particle ("talk to", "look into", "get back")
_PARTICLES = {
    "get": _wordset("back in touch the a an that this it them everyone"),
    "talk": _wordset("to with"),
    "look": _wordset("into at over through for"),
    "follow": _wordset("up"),
    "reach": _wordset("out"),
    "figure": _wordset("out"),
    "find": _wordset("out the a an"),
    "sort": _wordset("out"),
    "set": _wordset("up"),
    "put": _wordset("together up in"),
    "take": _wordset("care a over on ownership"),
    "note": _wordset("down"),
}
# ... and verbs that, with these next words, narrate the meeting instead ("tell you about", "start with")
_NOT_BEFORE = {
    "tell": _wordset("you"),
    "start": _wordset("with by off"),
    "present": _wordset("you"),
    "show": _wordset("you"),
}
_LET_ME = _wordset(
    "check send email e-mail follow look find confirm get ask reach circulate forward double-check"
)
_FIRST_PERSON = r"(?:i'll|i will|i'm going to|i am going to|i'm gonna|i shall|i can take care of|let me)"
_TEAM = r"(?:we need to|we should|we'll need to|we'll have to|we have to|we've got to|we must)"
_REQUEST = r"(?:can you|could you|would you|will you)"
_OFFER = r"(?:i can|i could)"  # an offer is a commitment only with a deadline ("I can send it by Friday")
_CUT = re.compile(
    r",\s*(?:and|but|so|because|then|if|or|okay|yeah|right|which|since|(?:it|that|this)(?:'s| is| was))\b"
    r"|[;?!:]|\.\s|\.$"
    r"|\s(?:but|because|so that|if|although|unless|since|while)\s",
    re.IGNORECASE,
)
_URGENT = re.compile(
    r"\b(?:urgent(?:ly)?|asap|as soon as possible|immediately|top priority|critical|right away)\b"
)
_RELAXED = re.compile(
    r"\b(?:no rush|when you (?:get|have) (?:a|the) chance|low priority|at some point|eventually)\b"
)
_AFFIRM = re.compile(
    r"^(?:yes|yeah|yep|sure|ok|okay|will do|i can|i will|i'll|no problem|absolutely|of course)\b"
)


@dataclass
class _NameIndex:
    """Participant labels and the first names they can be addressed by."""

    lookup: dict[str, str]  # lower-cased spoken form -> participant label
    alternatives: str  # regex alternation of the spoken forms, longest first ("" when none)
    pattern: re.Pattern[str] | None

    @classmethod
    def build(cls, participants: Sequence[str]) -> _NameIndex:
        lookup: dict[str, str] = {}
        for p in participants:
            if re.fullmatch(r"(?i)speaker[ _]?\d+", p):
                continue  # diarisation labels are never spoken
            lookup.setdefault(p.lower(), p)
            first = p.split()[0]
            if (
                len(p.split()) > 1
                and len(first) >= 3
                and first[0].isupper()
                and first.lower() not in _STOPWORDS
            ):
                lookup.setdefault(first.lower(), p)
        if not lookup:
            return cls(lookup, "", None)
        alternatives = "|".join(re.escape(k) for k in sorted(lookup, key=len, reverse=True))
        return cls(lookup, alternatives, re.compile(rf"\b(?:the\s+)?({alternatives})\b", re.IGNORECASE))

    def find(self, text: str, exclude: str | None) -> str | None:
        if self.pattern is None:
            return None
        for m in self.pattern.finditer(text):
            label = self.lookup[m.group(1).lower()]
            if label != exclude:
                return label
        return None


def _verb_start(lower: str, start: int) -> int | None:
    """Offset of the action verb that starts the clause at `start`, skipping adverbs; None if no action."""
    for m in re.finditer(r"[a-z][a-z'-]*", lower[start:]):
        word = m.group(0)
        if word in _SKIP_AFTER_CUE:
            continue
        if word in _ACTION_VERBS:
            after = [w.strip(",.") for w in lower[start + m.end() :].split()[:1]]
            if word in _PARTICLES and (not after or after[0] not in _PARTICLES[word]):
                return None
            if word in _NOT_BEFORE and after and after[0] in _NOT_BEFORE[word]:
                return None
            return start + m.start()
        return None
    return None


def _imperative(sentence: str, verb_at: int, deadline: tuple[int, int] | None) -> str:
    """The clause from the verb on, minus the deadline phrase, cut at the next clause break."""
    text = sentence
    if deadline and deadline[0] >= verb_at:
        text = text[: deadline[0]] + " " + text[deadline[1] :]
    clause = text[verb_at:]
    cut = _CUT.search(clause)
    if cut:
        clause = clause[: cut.start()]
    clause = _RELAXED.sub(" ", _URGENT.sub(" ", clause))  # priority is its own field
    clause = re.sub(r"\s+", " ", clause).strip(" ,.-")
    clause = re.sub(r"\s+(?:as well|too|please|then|okay|right)$", "", clause, flags=re.IGNORECASE)
    words = _tidy(clause).split()
    return " ".join(words[:15])


def _priority(lower: str) -> Priority:
    if _URGENT.search(lower):
        return "high"
    if _RELAXED.search(lower):
        return "low"
    return "none"


def _actions(
    sentences: Sequence[_Sentence],
    transcript: Transcript,
    names: _NameIndex,
    canon: _Canon,
) -> list[ActionItem]:
    third_person = (
        re.compile(
            rf"\b(?:the\s+)?({names.alternatives})\s+(?:will|'ll|is going to|is gonna)\s", re.IGNORECASE
        )
        if names.alternatives
        else None
    )
    cues = re.compile(
        rf"\b(?P<first>{_FIRST_PERSON})\s|\b(?P<team>{_TEAM})\s|\b(?P<req>{_REQUEST})\s"
        rf"|\b(?P<offer>{_OFFER})\s"
        r"|\b(?P<you>you'll|you will|you're going to)\s|\baction items?\b(?: for (?P<for>[a-z]+))?[:,]?\s*"
    )
    items: list[ActionItem] = []
    for s in sentences:
        lower = s.lower
        hit: tuple[int, str | None] | None = None  # (verb offset, owner)
        if third_person is not None:
            m3 = third_person.search(lower)
            if m3 and (verb := _verb_start(lower, m3.end())) is not None:
                hit = (verb, names.lookup[m3.group(1).lower()])
        if hit is None:
            for m in cues.finditer(lower):
                verb = _verb_start(lower, m.end())
                if verb is None:
                    continue
                if m.group("first"):
                    if s.is_question or (
                        m.group("first") == "let me" and lower[verb:].split()[0] not in _LET_ME
                    ):
                        continue  # "let me make that clear", "let me share my screen" are not tasks
                    hit = (verb, s.speaker)
                elif m.group("team") or m.group("offer"):
                    if s.is_question or resolve_deadline(lower, None)[1] is None:
                        continue  # "we should ..." / "I can ..." is only a commitment when it has a deadline
                    hit = (verb, s.speaker if m.group("offer") else None)
                elif m.group("you") and lower[verb:].startswith("get "):
                    continue  # "you'll get the specs" is a delivery, not a task
                elif m.group("req") or m.group("you"):
                    hit = (verb, names.find(s.text, exclude=s.speaker) or _responder(s, transcript))
                else:
                    who = m.group("for")
                    hit = (verb, names.lookup.get(who, None) if who else s.speaker)
                break
        if hit is None:
            continue
        verb_at, owner = hit
        due, span = resolve_deadline(lower, transcript.date)
        text = _imperative(s.plain, verb_at, span)
        if (
            owner is not None
            and owner != s.speaker
            and s.speaker
            and not s.speaker.upper().startswith("SPEAKER")
        ):
            text = re.sub(r"\bme\b", s.speaker, re.sub(r"\bmy\b", f"{s.speaker}'s", text))
        if len(text.split()) < 2:
            continue
        quote = _cut_words(s.plain, len(lower[:verb_at].split()), MAX_EVIDENCE_WORDS)
        owner = canon(owner)
        if any(a.owner == owner and fuzz.token_set_ratio(a.text.lower(), text.lower()) >= 85 for a in items):
            continue
        items.append(
            ActionItem(
                text=text,
                owner=owner,
                due=due.isoformat() if due else None,
                priority=_priority(lower),
                evidence=quote,
            )
        )
    if len(items) > MAX_ACTIONS:  # keep the ones with deadlines first, then the earliest
        keep = sorted(range(len(items)), key=lambda i: (items[i].due is None, i))[:MAX_ACTIONS]
        items = [items[i] for i in sorted(keep)]
    return items


def _responder(s: _Sentence, transcript: Transcript) -> str | None:
    """Who answered a request with a yes in the very next turn (the implied addressee)."""
    for u in transcript.utterances[s.utterance + 1 : s.utterance + 3]:
        if u.speaker and u.speaker != s.speaker:
            lower = _HESITATION.sub("", _clean(u.text).lower()).strip(" ,.")
            return u.speaker if _AFFIRM.match(lower) else None
    return None


# --------------------------------------------------------------------------- decisions

_DECISION = re.compile(  # alternatives sharing a start are tried in order: "decided to" before "decided"
    r"\b(?:(?P<to>(?:we(?:'ve| have)?|it was|it's been) (?:agreed|decided) to)"
    r"|(?P<go>let's|we'll|we will|we're going to|we are going to)\s+(?:go|stick) (?:with|for)"
    r"|(?P<on>(?:we(?:'ve| have)?|it was) (?:agreed|decided|settled) on|we're going with|we are going with"
    r"|we(?:'ve| have)? settled on)"
    r"|(?P<that>(?:we(?:'ve| have)?|everyone|everybody|all) agreed(?: that)?"
    r"|(?:it's|it is|it was|we've|we have|we) decided(?: that)?|the decision is(?: that)?"
    r"|we(?:'ve| have) settled(?: that)?|so it's decided(?: that)?))\b"
)
_UNDECIDED = re.compile(
    r"\b(?:not|n't|never|haven't|hasn't|yet to|to be|need to|needs to|have to|should|if|once|whether|when)"
    r"\s+(?:\w+\s+)?(?:decided?|agreed?|settled)\b|\bundecided\b"
)


def _decisions(sentences: Sequence[_Sentence]) -> list[Decision]:
    found: list[Decision] = []
    for s in sentences:
        m = _DECISION.search(s.lower)
        if m is None or s.is_question or _UNDECIDED.search(s.lower):
            continue
        rest = s.plain[m.end() :]  # same offsets as s.lower, original case
        cut = _CUT.search(rest)
        clause = _tidy((rest[: cut.start()] if cut else rest).strip(" ,.")).rstrip(".")
        if len(clause.split()) < 2:
            continue
        clause = clause[:1].lower() + clause[1:]
        if m.group("that"):
            text = f"Decided that {clause}."
        elif m.group("on"):
            text = f"Decided on {clause}."
        elif m.group("go"):
            text = f"Decided to {' '.join(m.group(0).split()[-2:])} {clause}."
        else:
            text = f"Decided to {clause}."
        words_before = len(s.lower[: m.start()].split())
        quote = _cut_words(s.plain, words_before, MAX_EVIDENCE_WORDS)
        if any(fuzz.token_set_ratio(d.text.lower(), text.lower()) >= 85 for d in found):
            continue
        found.append(Decision(text=text, evidence=quote))
    return found[:MAX_DECISIONS]


# --------------------------------------------------------------------------- key information, entities

_NUMBER_WORDS = _wordset(
    "three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety"
)
_BIG_NUMBERS = re.compile(r"\b(?:hundred|thousand|million|billion|percent|per cent)\b")
_MONEY = re.compile(r"[$€£]\s?\d|\b(?:euros?|dollars?|pounds?|cents?|usd|eur|gbp|budget|price|cost)\b")
_DATE_WORDS = re.compile(
    r"\b(?:" + "|".join([*_WEEKDAYS, *(m.lower() for m in calendar.month_name if m)]) + r")\b"
)
_NOT_ENTITY = frozenset(
    _wordset("I I'm I'll I've I'd Okay OK Yeah Um Uh So And But The Oh Mm")
    | {m for m in calendar.month_name if m}
    | set(calendar.day_name)
)
_CAPITALISED = re.compile(r"(?<![.?!]\s)(?<!^)\b([A-Z][\w'-]*(?:\s+[A-Z][\w'-]*){0,2})")


def _entities(sentence: str) -> list[str]:
    """Capitalised names not at the sentence start (so 'Okay' and 'So' do not count)."""
    out = []
    for m in _CAPITALISED.finditer(sentence):
        if m.start() == 0:
            continue
        if sentence[m.start() - 1] in "'’":
            continue  # "'kay", "'cause"
        name = " ".join(w for w in m.group(1).split() if w not in _NOT_ENTITY and "_" not in w)
        name = re.sub(r"(?:'s|')$", "", name)
        if len(name) > 1 and name.lower() not in _STOPWORDS and name.lower() not in _FILLER:
            out.append(name)
    return out


def _info_score(s: _Sentence) -> int:
    lower = s.lower
    strong = (
        re.search(r"\d", lower),
        _MONEY.search(lower),
        _BIG_NUMBERS.search(lower),
        _DATE_WORDS.search(lower),
    )
    score = 2 * sum(m is not None for m in strong) + bool(_NUMBER_WORDS.intersection(s.words))
    return score + min(2, len(_entities(s.text)))


def _key_information(sentences: Sequence[_Sentence]) -> list[str]:
    """Fact-bearing sentences; they may repeat a summary quote, since a fact list must stand alone."""
    pool = [s for s in sentences if not s.is_question and not s.is_filler and 6 <= len(s.words) <= 40]
    scored = [(score, s) for s in pool if (score := _info_score(s)) >= 2]
    best = sorted(scored, key=lambda x: (-x[0], x[1].position))[: MAX_KEY_INFO * 2]
    out: list[str] = []
    for _, s in sorted(best, key=lambda x: x[1].position):
        text = _tidy(s.text)
        if text and not any(fuzz.token_set_ratio(text, o) >= 85 for o in out):
            out.append(text)
    if len(out) > MAX_KEY_INFO:  # keep the highest-scoring, still in transcript order
        ranked = {_tidy(s.text): score for score, s in best}
        top = set(sorted(out, key=lambda t: (-ranked.get(t, 0), out.index(t)))[:MAX_KEY_INFO])
        out = [t for t in out if t in top]
    return out


def _related(sentences: Sequence[_Sentence], participants: Sequence[str]) -> list[Entity]:
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for s in sentences:
        for e in _entities(s.text):
            counts[e] += 1
            first_seen.setdefault(e, s.position)
    people = {p.lower() for p in participants} | {p.split()[0].lower() for p in participants if p.split()}
    minimum = 2 if len(sentences) < 2000 else 3
    names = [e for e, c in counts.items() if c >= minimum]
    names.sort(key=lambda e: (-counts[e], first_seen[e]))
    return [Entity(name=e, kind=_kind(e, people)) for e in names[:MAX_RELATED]]


_ORG_SUFFIX = re.compile(
    r"\b(?:Corp|Corporation|Inc|Ltd|LLC|GmbH|PLC|Group|Company|Bank|University|Foundation|Institute|"
    r"Ministry|Government|Council|Agency|Commission|Committee)\.?$"
)


def _kind(name: str, people: set[str]) -> EntityKind:
    if name.lower() in people or name.split()[0].lower() in people:
        return "person"
    return "organisation" if _ORG_SUFFIX.search(name) else "concept"


def _topics(sentences: Sequence[_Sentence], limit: int = 3) -> list[str]:
    """Most frequent content phrases (one bigram first), for the title and the summary's opening.

    Each word keeps its most common spelling, so "PRs" and "HiveChain" survive.
    """
    unigrams: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    surface: dict[str, Counter[str]] = {}
    for s in sentences:
        if s.is_filler:
            continue
        tokens = [w for w in _WORD.findall(s.text) if len(w) > 2 and not w[0].isdigit()]
        content = []
        for token in tokens:
            low = token.lower().replace("’", "'")
            if low in _STOPWORDS or low in _NUMBER_WORDS or "_" in low:
                continue
            content.append(low)
            surface.setdefault(low, Counter())[token] += 1
        unigrams.update(content)
        bigrams.update(f"{a} {b}" for a, b in itertools.pairwise(content) if a != b)
    picked: list[str] = [phrase for phrase, count in bigrams.most_common(1) if count >= 2]
    used = {_stem(w) for p in picked for w in p.split()}
    for word, _ in unigrams.most_common(20):
        if len(picked) >= limit:
            break
        if _stem(word) not in used:
            picked.append(word)
            used.add(_stem(word))
    return [" ".join(surface[w].most_common(1)[0][0] for w in phrase.split()) for phrase in picked]


def _title(transcript: Transcript, topics: Sequence[str]) -> str:
    if transcript.title and transcript.title.strip():
        return transcript.title.strip()
    if not topics:
        return "Meeting"
    words = [w[:1].upper() + w[1:] for t in topics for w in t.split()]
    return " ".join(words[:7])


# --------------------------------------------------------------------------- entry points


class _Canon:
    """Maps any of the vault owner's aliases to the owner's canonical name."""

    def __init__(self, owner: str | None, aliases: Sequence[str]) -> None:
        self.owner = owner
        self.aliases = {a.strip().lower() for a in (*aliases, *([owner] if owner else []))}

    def __call__(self, name: str | None) -> str | None:
        if name is not None and self.owner and name.strip().lower() in self.aliases:
            return self.owner
        return name


def offline_extract(
    transcript: Transcript, *, owner: str | None = None, owner_aliases: Sequence[str] = ()
) -> MeetingExtraction:
    """Read a meeting without a model: deterministic, no network, well under a second for three hours."""
    canon = _Canon(owner, owner_aliases)
    sentences = _sentences(transcript)
    participants: list[str] = []
    for p in (*transcript.speakers(), *transcript.participants):
        name = canon(p) or p
        if name not in participants:
            participants.append(name)
    names = _NameIndex.build([*transcript.speakers(), *transcript.participants])
    topics = _topics(sentences)
    picked = _summary_sentences(sentences)
    return MeetingExtraction(
        title=_title(transcript, topics),
        meeting_date=transcript.date.isoformat() if transcript.date else None,
        note_type="internal",
        account=None,
        account_category=None,
        participants=participants,
        summary=_compose_summary(transcript, picked, topics),
        action_items=_actions(sentences, transcript, names, canon),
        decisions=_decisions(sentences),
        key_information=_key_information(sentences),
        related=_related(sentences, participants),
    )


def offline_result(
    transcript: Transcript, *, owner: str | None = None, owner_aliases: Sequence[str] = ()
) -> ExtractionResult:
    """`offline_extract` wrapped as an engine answer (zero usage), the shape `evaluate` and the cache take."""
    return ExtractionResult(
        extraction=offline_extract(transcript, owner=owner, owner_aliases=owner_aliases),
        engine=ENGINE,
        model=MODEL,
        prompt_version=PROMPT_VERSION,
        usage=Usage(calls=0, cost=0.0),
    )
