"""Measure extraction quality against reference summaries.

Why: prompt and engine changes must be judged by numbers, not by reading one
note. `evaluate` is the single call behind `summarizer eval DIR`; it takes any
`extract(transcript) -> ExtractionResult`, so the model engine and the offline
engine are measured the same way.

Cases come from two layouts (`find_cases`):

* corpus files: `<id>.txt|.vtt|.srt|.json` next to `<id>.reference.json`
  (several transcripts may share one reference: `ami_IS1001a.teams-style.vtt`,
  `ami_IS1001a.whisper-style.srt`, ... all use `ami_IS1001a.reference.json`);
* golden-case folders: any transcript plus `reference.json` of the form
  `{"summary": str, "action_items": [str], "decisions": [str]}` (optional
  `"problems": [str]`, and `"date": "YYYY-MM-DD"` when the transcript itself
  carries none).

A file with "minutes" in its name is a reference, never a transcript.

Metrics, per case and overall:

* summary ROUGE-1/2/L F1 (rouge-score, Porter stemming) against the reference
  summary, and the same for a LEAD-W baseline: the transcript's first W words,
  W = the reference summary's length, so the baseline is never penalised for length;
* action-item and decision precision/recall/F1, and recall of the AMI/ICSI
  problems in Key Information: one-to-one greedy matching by rapidfuzz
  `token_set_ratio` on lower-cased, Porter-stemmed content words, with a short
  list of synonyms merged (send/e-mail/share, check/review/investigate/find out,
  choose/adopt/go with, ...) and the speakers' own label words left out (who does
  a task is not what it is: "E-mail the slides to User Interface" must not match
  "The user interface designer will ..."). A pair matches when it scores >=
  `MATCH_THRESHOLD` (60) and shares at least two content words (one-word items
  can only match one-word items): token_set_ratio gives 100 whenever one side's
  words are a subset of the other's, so "Merge it" would otherwise match any
  reference mentioning "merge". Overall precision/recall are micro-averaged;
* noise figures over action items, decisions and key information: unresolved
  pronouns, items of three words or fewer, questions, repeats of another section
  (`noise`);
* grounding rate: supported / checked evidence quotes (`summarizer.grounding`);
* tokens and cost from `ExtractionResult.usage`, and wall time.

Reference summary, in order of preference: QMSum's whole-meeting query answer
("Summarize the whole meeting." or the corpus's variant), ELITR `minutes_text`
(`parse_minutes`), the AMI/ICSI abstract, the ACDbot highlights (silver,
machine-written), a golden summary.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel
from rapidfuzz import fuzz

from summarizer.errors import ConfigError, SummarizerError
from summarizer.grounding import detokenise, ground_extraction
from summarizer.models import ExtractionResult, MeetingExtraction, Transcript, Usage

MATCH_THRESHOLD = 60  # token_set_ratio; see the module docstring for how it was chosen
MIN_SHARED_WORDS = 2
SHORT_ITEM_WORDS = 3  # an item this short is a fragment ("Send in the chat")
DUPLICATE_RATIO = 85  # token_sort_ratio at or above which two items say the same thing
TRANSCRIPT_SUFFIXES = (".txt", ".vtt", ".srt", ".json", ".md")
GOLDEN_REFERENCE = "reference.json"
_REFERENCE_SUFFIX = ".reference.json"
_NOT_AN_ITEM = {"", "na", "n/a", "none", "nil", "-"}
_MATCH_STOPWORDS = frozenset(
    {"the", "a", "an", "to", "of", "and", "or", "will", "would", "be", "is", "are", "was", "were", "for"}
    | {"on", "in", "at", "with", "that", "this", "it", "its", "their", "his", "her", "they", "we", "team"}
    | {"should", "need", "needs", "going", "all", "also", "by", "as", "decided", "agreed", "decision"}
    | {"these", "those", "them", "they", "you", "your", "i", "we", "our", "my", "me", "us", "he", "she", "him"}
    | {"can", "could", "may", "might", "must", "shall", "do", "does", "did", "has", "have", "had", "been", "some"}
    | {"any", "from", "into", "about", "so", "then", "than", "there", "here", "which", "who", "what", "if", "not"}
)
_MINUTES_NAME = re.compile(r"(?:^|[._ -])(?<!\d[ -])minutes(?:[._ -]|$)", re.IGNORECASE)  # a reference, not speech
_DATE_IN_NAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


# --------------------------------------------------------------------------- cases


class Reference(BaseModel):
    """What a transcript should yield; None means "no reference for this part", [] means "none expected"."""

    summary: str | None
    summary_source: (
        str  # qmsum_general | ami_abstract | icsi_abstract | elitr_minutes | acdbot_highlights | golden | none
    )
    action_items: list[str] | None
    decisions: list[str] | None
    problems: list[str] | None = None  # AMI/ICSI open problems, scored against Key Information


class EvalCase(BaseModel):
    """One transcript and the reference it is judged against."""

    case_id: str
    transcript_path: Path
    reference_path: Path
    reference: Reference
    date: dt.date | None = None  # fallback meeting date when the transcript has none


def _items(values: Iterable[Any], key: str | None = None) -> list[str]:
    out: list[str] = []
    for v in values:
        text = v.get(key, "") if key and isinstance(v, dict) else v
        if isinstance(text, str) and text.strip().strip(".").lower() not in _NOT_AN_ITEM:
            out.append(text.strip())
    return out


def _qmsum_general(data: dict[str, Any]) -> str | None:
    """The human answer to the whole-meeting query (its wording varies: 'Summarize the meeting', ...)."""
    queries = data.get("qmsum", {}).get("general_query_list", [])
    for q in queries:
        if "whole meeting" in q.get("query", "").lower():
            return str(q["answer"])
    for q in queries:
        if re.search(r"summari[sz]e|main discussion", q.get("query", ""), re.IGNORECASE):
            return str(q["answer"])
    return str(queries[0]["answer"]) if queries else None


_MINUTES_HEADING = re.compile(r"^\s*(?:#+\s*)?([A-Za-z][A-Za-z /&-]{1,40}?)\s*:?\s*$")
_MINUTES_BULLET = re.compile(r"^\s*(?:[-*•+]|\d+[.)])\s*")
_MINUTES_META = re.compile(r"^\s*(?:date|attendees?|participants?|purpose[\w ]*|minutes? by|time|place)\s*:", re.I)
_ACTION_HEADING = re.compile(r"\b(?:action|to ?do|tasks?|next steps?|follow[- ]ups?)\b", re.I)
_DECISION_HEADING = re.compile(r"\b(?:decisions?|decided|agreed|agreements?|conclusions?|resolutions?)\b", re.I)
_ACTION_LINE = re.compile(r"^\s*(?:action(?: item)?|todo|to do|ai)\s*[:\-]\s*", re.I)


def parse_minutes(text: str) -> tuple[str | None, list[str] | None, list[str] | None]:
    """ELITR-style minutes -> (summary text, action items, decisions).

    The summary is every content line (meta lines such as "Date:" or "Attendees:" left out).
    Lines under a heading naming actions/to-dos/next steps are action items (as are lines
    starting "ACTION:"), lines under a decisions/agreed heading are decisions. A minutes text
    with no such heading has no action or decision reference (None: not scored), not an empty one.
    """
    section = ""
    body: list[str] = []
    actions: list[str] = []
    decisions: list[str] = []
    saw_actions = saw_decisions = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or _MINUTES_META.match(line):
            continue
        heading = _MINUTES_HEADING.match(line)
        if heading and not _MINUTES_BULLET.match(line) and len(line.split()) <= 5:
            section = heading.group(1).lower()
            saw_actions = saw_actions or bool(_ACTION_HEADING.search(section))
            saw_decisions = saw_decisions or bool(_DECISION_HEADING.search(section))
            continue
        item = _MINUTES_BULLET.sub("", line).strip()
        if not item:
            continue
        if _ACTION_LINE.match(item):
            actions.append(_ACTION_LINE.sub("", item))
            saw_actions = True
        elif _ACTION_HEADING.search(section):
            actions.append(item)
        elif _DECISION_HEADING.search(section):
            decisions.append(item)
        body.append(item)
    summary = " ".join(body) or None
    return summary, (_items(actions) if saw_actions else None), (_items(decisions) if saw_decisions else None)


def _minutes_text(data: dict[str, Any]) -> str | None:
    value = data.get("minutes_text")
    if isinstance(value, list):
        value = "\n".join(str(v) for v in value)
    return value if isinstance(value, str) and value.strip() else None


def parse_reference(data: dict[str, Any]) -> Reference:
    """Normalise the corpus formats (QMSum, AMI/ICSI abstractive, ELITR minutes, ACDbot tldr) and the golden one."""
    if "summary" in data or ("action_items" in data and "acdbot_tldr" not in data):
        summary = data.get("summary")
        return Reference(
            summary=summary if isinstance(summary, str) and summary.strip() else None,
            summary_source="golden",
            action_items=_items(data["action_items"]) if "action_items" in data else None,
            decisions=_items(data["decisions"]) if "decisions" in data else None,
            problems=_items(data["problems"]) if "problems" in data else None,
        )
    abstractive = data.get("ami_abstractive") or data.get("icsi_abstractive")
    corpus = "ami" if "ami_abstractive" in data else "icsi"
    summary, source = _qmsum_general(data), "qmsum_general"
    actions: list[str] | None = None
    decisions: list[str] | None = None
    problems: list[str] | None = None
    minutes = _minutes_text(data)
    if minutes is not None:
        minutes_summary, actions, decisions = parse_minutes(minutes)
        if summary is None and minutes_summary:
            summary, source = minutes_summary, "elitr_minutes"
    if abstractive:
        if summary is None and abstractive.get("abstract"):
            summary, source = " ".join(_items(abstractive["abstract"])), f"{corpus}_abstract"
        if "actions" in abstractive:
            actions = _items(abstractive["actions"])
        if "decisions" in abstractive:
            decisions = _items(abstractive["decisions"])
        if "problems" in abstractive:
            problems = _items(abstractive["problems"])
    tldr = data.get("acdbot_tldr")
    if tldr:
        if summary is None:
            groups = tldr.get("highlights", {}).values()
            lines = [h for group in groups for h in _items(group, "highlight")]
            summary, source = (
                ". ".join(line.rstrip(".") for line in lines) + "." if lines else None,
                "acdbot_highlights",
            )
        actions = _items(tldr.get("action_items", []), "action")
        decisions = _items(tldr.get("decisions", []), "decision")
    return Reference(
        summary=summary,
        summary_source=source if summary else "none",
        action_items=actions,
        decisions=decisions,
        problems=problems,
    )


def _reference_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SummarizerError(f"cannot read reference: {exc}", path) from exc
    if not isinstance(data, dict):
        raise SummarizerError("reference must be a JSON object", path)
    return data


def load_reference(path: Path) -> Reference:
    """Read and normalise one reference file."""
    return parse_reference(_reference_json(path))


def _is_transcript(path: Path) -> bool:
    name = path.name
    return (
        path.is_file()
        and path.suffix.lower() in TRANSCRIPT_SUFFIXES
        and not name.endswith(_REFERENCE_SUFFIX)
        and name != GOLDEN_REFERENCE
        and not name.startswith(".")
        and name.lower() not in {"readme.md", "attribution.md"}
        and not _MINUTES_NAME.search(name)
    )


def _date_in_name(name: str) -> dt.date | None:
    m = _DATE_IN_NAME.search(name)
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _golden_cases(folder: Path) -> list[EvalCase]:
    ref_path = folder / GOLDEN_REFERENCE
    data = _reference_json(ref_path)  # read once; a broken file is one line naming it
    reference = parse_reference(data)
    fallback = dt.date.fromisoformat(data["date"]) if isinstance(data.get("date"), str) else None
    transcripts = sorted(p for p in folder.iterdir() if _is_transcript(p))
    return [
        EvalCase(
            case_id=folder.name if len(transcripts) == 1 else f"{folder.name}/{t.stem}",
            transcript_path=t,
            reference_path=ref_path,
            reference=reference,
            date=fallback or _date_in_name(t.name),
        )
        for t in transcripts
    ]


def find_cases(path: Path) -> list[EvalCase]:
    """Every (transcript, reference) pair under `path`: corpus-style files and golden-case folders."""
    path = Path(path)
    if not path.is_dir():
        raise SummarizerError("not a directory of evaluation cases", path)
    cases: list[EvalCase] = []
    folders = [path, *sorted(p for p in path.rglob("*") if p.is_dir() and not p.name.startswith("."))]
    for folder in folders:
        if (folder / GOLDEN_REFERENCE).is_file():
            cases += _golden_cases(folder)
        for ref_path in sorted(folder.glob(f"*{_REFERENCE_SUFFIX}")):
            stem = ref_path.name[: -len(_REFERENCE_SUFFIX)]
            reference = load_reference(ref_path)
            for t in sorted(folder.iterdir()):
                if _is_transcript(t) and (t.name.startswith(stem + ".")):
                    cases.append(
                        EvalCase(
                            case_id=t.name[: -len(t.suffix)],
                            transcript_path=t,
                            reference_path=ref_path,
                            reference=reference,
                            date=_date_in_name(t.name),
                        )
                    )
    return cases


def cases_in(folder: Path) -> list[EvalCase]:
    """`find_cases`, refusing a folder where no transcript has a reference (a usage error)."""
    cases = find_cases(folder)
    if not cases:
        raise ConfigError(
            f"no evaluation cases: no transcript here has a reference ({GOLDEN_REFERENCE} in a case "
            f"folder, or <name>{_REFERENCE_SUFFIX} beside <name>.txt|.vtt|.srt|.json)",
            folder,
        )
    return cases


# --------------------------------------------------------------------------- metrics


class Rouge(BaseModel):
    rouge1: float
    rouge2: float
    rougeL: float  # the metric's own spelling


class Matching(BaseModel):
    """Precision/recall of predicted items against reference items (None when undefined)."""

    predicted: int
    reference: int
    matched: int
    precision: float | None
    recall: float | None
    f1: float | None
    pairs: list[tuple[int, int, float]] = []  # (predicted index, reference index, score)


class CaseResult(BaseModel):
    case_id: str
    transcript: str
    summary_source: str
    transcript_words: int
    summary_words: int
    reference_words: int
    seconds: float
    rouge: Rouge | None
    lead: Rouge | None
    action_items: Matching | None
    decisions: Matching | None
    problems: Matching | None = None  # reference problems against Key Information
    noise: Noise | None = None
    grounding_checked: int
    grounding_supported: int
    grounding_rate: float | None
    usage: Usage
    engine: str
    model: str
    error: str | None = None


class Overall(BaseModel):
    cases: int
    failed: int
    rouge: Rouge | None  # macro mean over cases with a reference summary
    lead: Rouge | None
    action_items: Matching | None  # micro: pooled counts
    decisions: Matching | None
    problems: Matching | None = None
    noise: Noise | None = None  # pooled counts
    grounding_checked: int
    grounding_supported: int
    grounding_rate: float | None
    usage: Usage
    seconds: float


class EvalReport(BaseModel):
    match_threshold: int
    lead_rule: str
    cases: list[CaseResult]
    overall: Overall


class _Scorer(Protocol):
    def score(self, target: str, prediction: str) -> dict[str, Any]: ...


def _rouge_scorer() -> _Scorer:
    """rouge-score pulls in nltk and absl; import it only when evaluating."""
    from rouge_score import rouge_scorer

    scorer: _Scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    return scorer


def rouge(scorer: _Scorer, reference: str, prediction: str) -> Rouge:
    """ROUGE-1/2/L F1 in 0..1."""
    scores = scorer.score(reference, prediction)
    return Rouge(rouge1=scores["rouge1"].fmeasure, rouge2=scores["rouge2"].fmeasure, rougeL=scores["rougeL"].fmeasure)


def lead_words(transcript: Transcript, words: int) -> str:
    """LEAD-W baseline: the first `words` spoken words (speaker labels and noise tags left out)."""
    out: list[str] = []
    for u in transcript.utterances:
        out += detokenise(u.text).split()
        if len(out) >= words:
            break
    return " ".join(out[:words])


# Verbs and phrasings that say the same thing in meeting notes; each maps to one canonical word.
_SYNONYMS: dict[str, str] = {
    **dict.fromkeys(("send", "email", "mail", "forward", "circulate", "distribute", "share", "post"), "send"),
    **dict.fromkeys(("check", "verify", "investigate", "examine", "review", "explore", "research"), "check"),
    **dict.fromkeys(("evaluate", "assess", "analyse", "analyze", "test"), "check"),
    **dict.fromkeys(("write", "draft", "type", "prepare", "document"), "write"),
    **dict.fromkeys(("choose", "pick", "select", "adopt", "opt", "go with", "settle on"), "choose"),
    **dict.fromkeys(("build", "create", "implement", "develop", "construct"), "build"),
    **dict.fromkeys(("contact", "ask", "reach out", "talk to", "speak to", "speak with", "talk with"), "contact"),
    **dict.fromkeys(("finish", "complete", "finalise", "finalize", "wrap up"), "finish"),
    **dict.fromkeys(("fix", "repair", "resolve", "solve"), "fix"),
    **dict.fromkeys(("present", "show", "demo", "demonstrate"), "present"),
    **dict.fromkeys(("schedule", "arrange", "book", "organise", "organize", "set up"), "schedule"),
    **dict.fromkeys(("look into", "look at", "consider", "take a look at", "find out", "figure out"), "check"),
    **dict.fromkeys(("have a look at",), "check"),
    **dict.fromkeys(("include", "incorporate", "integrate", "add"), "include"),
}
_PHRASE_SYNONYMS = re.compile(
    r"\b(" + "|".join(sorted((k for k in _SYNONYMS if " " in k), key=len, reverse=True)) + r")\b"
)


@functools.lru_cache(maxsize=1)
def _stemmer() -> Callable[[str], str]:
    """Porter stemming (nltk, a dependency of rouge-score): 'slides' meets 'slide', 'merging' 'merge'."""
    from nltk.stem import porter  # type: ignore[import-untyped]

    stem: Callable[[str], str] = porter.PorterStemmer().stem
    return stem


def _match_words(text: str) -> list[str]:
    """Lower-cased content words, synonyms mapped to one word, Porter-stemmed."""
    stem = _stemmer()
    lower = detokenise(text).lower().replace("’", "'").replace("e-mail", "email")
    lower = re.sub(r"'s\b", "", lower)
    lower = _PHRASE_SYNONYMS.sub(lambda m: _SYNONYMS[m.group(1)], lower)
    words = re.sub(r"[^a-z0-9]+", " ", lower).split()
    return [stem(_SYNONYMS.get(w, w)) for w in words if w not in _MATCH_STOPWORDS]


def _match_form(text: str, ignore: frozenset[str] = frozenset()) -> str:
    return " ".join(w for w in _match_words(text) if w not in ignore)


def _shares_enough(a: str, b: str) -> bool:
    wa, wb = set(a.split()), set(b.split())
    return len(wa & wb) >= min(MIN_SHARED_WORDS, max(len(wa), len(wb)))


def match_items(
    predicted: Sequence[str],
    reference: Sequence[str],
    threshold: int = MATCH_THRESHOLD,
    participants: Sequence[str] = (),
) -> Matching:
    """One-to-one greedy matching: best-scoring pairs first, each item used at most once.

    The words of `participants` (speaker labels such as "User Interface") are left out on both
    sides: who does a task is not what the task is.
    """
    ignore = frozenset(w for p in participants for w in _match_words(p))
    pred = [_match_form(p, ignore) for p in predicted]
    ref = [_match_form(r, ignore) for r in reference]
    scored = [
        (float(fuzz.token_set_ratio(p, r)), i, j)
        for i, p in enumerate(pred)
        for j, r in enumerate(ref)
        if p and r and _shares_enough(p, r)
    ]
    used_p: set[int] = set()
    used_r: set[int] = set()
    pairs: list[tuple[int, int, float]] = []
    for score, i, j in sorted(scored, key=lambda x: (-x[0], x[1], x[2])):
        if score >= threshold and i not in used_p and j not in used_r:
            used_p.add(i)
            used_r.add(j)
            pairs.append((i, j, round(score, 1)))
    return _matching(len(pred), len(ref), len(pairs), sorted(pairs))


# --------------------------------------------------------------------------- noise

# A note is written in the third person: first and second person are always unresolved there.
_PERSONAL = re.compile(
    r"\b(?:i|i'm|i'll|i've|i'd|me|my|mine|we|we're|we'll|we've|us|our|ours|you|you're|you'll|your|yours)\b"
)
_THIRD = re.compile(r"\b(?:he|she|him|his|her|it|its|it's|they|they're|them|their)\b")
_OPENING_PRONOUN = re.compile(
    r"^(?:he|she|it|it's|its|they|they're|them|this|that|that's|these|those|there|there's|his|her|their)\b"
)
_QUESTION_START = re.compile(
    r"^(?:what|why|how|where|when|who|whom|which|whether|is|are|was|were|do|does|did|can|could|should|shall"
    r"|would|will|have|has)\b(?!\s*:)"
)


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", detokenise(text).lower().replace("’", "'")).strip()


def unresolved_pronoun(text: str, task: bool = False) -> bool:
    """First/second person anywhere; an opening he/it/this/...; in a task or decision, a he/it/they
    before the item has named at least two things it could refer to ("Add it later" is flagged,
    "Type up the minutes and email them" is not)."""
    lower = _plain(text)
    if _PERSONAL.search(lower) or _OPENING_PRONOUN.match(lower):
        return True
    if task:
        for m in _THIRD.finditer(lower):
            before = [w for w in re.findall(r"[a-z0-9']+", lower[: m.start()]) if w not in _MATCH_STOPWORDS]
            if len(before) < 2:
                return True
    return False


def is_question(text: str) -> bool:
    lower = _plain(text)
    return lower.endswith("?") or bool(_QUESTION_START.match(lower))


def is_short(text: str) -> bool:
    return len(_plain(text).split()) <= SHORT_ITEM_WORDS


def _duplicates(a: str, b: str) -> bool:
    """The same statement twice: near-identical word order, or one contained word for word in the other."""
    pa, pb = _plain(a).rstrip(".!"), _plain(b).rstrip(".!")
    short, long_ = sorted((pa, pb), key=len)
    if len(short.split()) >= 4 and short in long_:
        return True
    return fuzz.token_sort_ratio(pa, pb) >= DUPLICATE_RATIO


def _summary_sentences(summary: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", summary.strip()) if s]


class Noise(BaseModel):
    """Items a reader would have to fix: counts over action items, decisions and key information."""

    items: int
    pronoun: int  # unresolved pronoun (see `unresolved_pronoun`)
    short: int  # three words or fewer
    question: int
    duplicate: int  # repeats an item of another section (or a summary sentence)
    flagged: dict[str, list[str]] = {}  # figure -> the items it flagged

    def rate(self, count: int) -> float | None:
        return count / self.items if self.items else None


def noise(x: MeetingExtraction) -> Noise:
    """The noise figures of one extraction."""
    sections: list[tuple[str, list[str]]] = [
        ("actions", [a.text for a in x.action_items]),
        ("decisions", [d.text for d in x.decisions]),
        ("key", list(x.key_information)),
    ]
    flagged: dict[str, list[str]] = {"pronoun": [], "short": [], "question": [], "duplicate": []}
    others_of = {
        name: [t for other, texts in sections if other != name for t in texts] + _summary_sentences(x.summary)
        for name, _ in sections
    }
    for name, texts in sections:
        for text in texts:
            if unresolved_pronoun(text, task=name != "key"):
                flagged["pronoun"].append(text)
            if is_short(text):
                flagged["short"].append(text)
            if is_question(text):
                flagged["question"].append(text)
            if any(_duplicates(text, other) for other in others_of[name]):
                flagged["duplicate"].append(text)
    return Noise(
        items=sum(len(texts) for _, texts in sections),
        **{k: len(v) for k, v in flagged.items()},
        flagged={k: v for k, v in flagged.items() if v},
    )


def _pool_noise(values: Iterable[Noise]) -> Noise:
    values = list(values)
    return Noise(
        items=sum(v.items for v in values),
        pronoun=sum(v.pronoun for v in values),
        short=sum(v.short for v in values),
        question=sum(v.question for v in values),
        duplicate=sum(v.duplicate for v in values),
    )


def _matching(predicted: int, reference: int, matched: int, pairs: list[tuple[int, int, float]]) -> Matching:
    precision = matched / predicted if predicted else None
    recall = matched / reference if reference else None
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall > 0
        else (0.0 if precision is not None and recall is not None else None)
    )
    return Matching(
        predicted=predicted,
        reference=reference,
        matched=matched,
        precision=precision,
        recall=recall,
        f1=f1,
        pairs=pairs,
    )


def _pool(matchings: Iterable[Matching | None]) -> Matching | None:
    present = [m for m in matchings if m is not None]
    if not present:
        return None
    return _matching(
        sum(m.predicted for m in present),
        sum(m.reference for m in present),
        sum(m.matched for m in present),
        [],
    )


def _mean(values: Sequence[Rouge]) -> Rouge | None:
    if not values:
        return None
    n = len(values)
    return Rouge(
        rouge1=sum(v.rouge1 for v in values) / n,
        rouge2=sum(v.rouge2 for v in values) / n,
        rougeL=sum(v.rougeL for v in values) / n,
    )


# --------------------------------------------------------------------------- evaluation


def _read(case: EvalCase) -> Transcript:
    from summarizer.reader import read_transcript

    return read_transcript(case.transcript_path, date=case.date)


def evaluate(
    cases: Sequence[EvalCase] | Path,
    extract: Callable[[Transcript], ExtractionResult],
    *,
    match_threshold: int = MATCH_THRESHOLD,
    progress: Callable[[EvalCase], None] | None = None,
) -> EvalReport:
    """Run `extract` on every case (or every case under a directory) and score it.

    A case whose transcript or extraction fails is recorded with its error and left out of
    the averages, rather than stopping the run.
    """
    if isinstance(cases, Path):
        cases = cases_in(cases)
    scorer = _rouge_scorer()
    results: list[CaseResult] = []
    for case in cases:
        if progress is not None:
            progress(case)
        results.append(_evaluate_case(case, extract, scorer, match_threshold))
    return EvalReport(
        match_threshold=match_threshold,
        lead_rule="LEAD-W: the transcript's first W words, W = the reference summary's word count",
        cases=results,
        overall=_overall(results),
    )


def _failed(case: EvalCase, error: str, words: int = 0) -> CaseResult:
    return CaseResult(
        case_id=case.case_id,
        transcript=case.transcript_path.name,
        summary_source=case.reference.summary_source,
        transcript_words=words,
        summary_words=0,
        reference_words=len((case.reference.summary or "").split()),
        seconds=0.0,
        rouge=None,
        lead=None,
        action_items=None,
        decisions=None,
        grounding_checked=0,
        grounding_supported=0,
        grounding_rate=None,
        usage=Usage(),
        engine="",
        model="",
        error=error,
    )


def _evaluate_case(
    case: EvalCase, extract: Callable[[Transcript], ExtractionResult], scorer: _Scorer, threshold: int
) -> CaseResult:
    ref = case.reference
    try:
        transcript = _read(case)
    except SummarizerError as exc:
        return _failed(case, str(exc))
    words = sum(len(detokenise(u.text).split()) for u in transcript.utterances)
    started = time.perf_counter()
    try:
        result = extract(transcript)
    except SummarizerError as exc:
        return _failed(case, str(exc), words)
    seconds = time.perf_counter() - started
    x = result.extraction
    ref_words = len(ref.summary.split()) if ref.summary else 0
    grounding = ground_extraction(x, transcript)
    speakers = [p for p in transcript.speakers() if not re.fullmatch(r"(?i)speaker[ _]?\d+", p)]
    actions = (
        match_items([a.text for a in x.action_items], ref.action_items, threshold, speakers)
        if ref.action_items is not None
        else None
    )
    decisions = (
        match_items([d.text for d in x.decisions], ref.decisions, threshold, speakers)
        if ref.decisions is not None
        else None
    )
    problems = match_items(x.key_information, ref.problems, threshold, speakers) if ref.problems is not None else None
    return CaseResult(
        case_id=case.case_id,
        transcript=case.transcript_path.name,
        summary_source=ref.summary_source,
        transcript_words=words,
        summary_words=len(x.summary.split()),
        reference_words=ref_words,
        seconds=round(seconds, 4),
        rouge=rouge(scorer, ref.summary, x.summary) if ref.summary else None,
        lead=rouge(scorer, ref.summary, lead_words(transcript, ref_words)) if ref.summary else None,
        action_items=actions,
        decisions=decisions,
        problems=problems,
        noise=noise(x),
        grounding_checked=grounding.checked,
        grounding_supported=grounding.supported,
        grounding_rate=grounding.rate,
        usage=result.usage,
        engine=result.engine,
        model=result.model,
    )


def _overall(results: Sequence[CaseResult]) -> Overall:
    ok = [r for r in results if r.error is None]
    checked = sum(r.grounding_checked for r in ok)
    supported = sum(r.grounding_supported for r in ok)
    usage = Usage()
    for r in ok:
        usage = usage + r.usage
    return Overall(
        cases=len(results),
        failed=len(results) - len(ok),
        rouge=_mean([r.rouge for r in ok if r.rouge is not None]),
        lead=_mean([r.lead for r in ok if r.lead is not None]),
        action_items=_pool(r.action_items for r in ok),
        decisions=_pool(r.decisions for r in ok),
        problems=_pool(r.problems for r in ok),
        noise=_pool_noise(r.noise for r in ok if r.noise is not None) if ok else None,
        grounding_checked=checked,
        grounding_supported=supported,
        grounding_rate=supported / checked if checked else None,
        usage=usage,
        seconds=round(sum(r.seconds for r in ok), 4),
    )


# --------------------------------------------------------------------------- table


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _prf(m: Matching | None) -> str:
    if m is None:
        return "-"
    return f"{_pct(m.precision)}/{_pct(m.recall)}/{_pct(m.f1)} ({m.matched}/{m.predicted}/{m.reference})"


def _recall(m: Matching | None) -> str:
    return "-" if m is None else f"{_pct(m.recall)} ({m.matched}/{m.reference})"


def _noise_cells(n: Noise | None) -> list[str]:
    if n is None:
        return ["-"] * 5
    return [str(n.items), *(_pct(n.rate(c)) for c in (n.pronoun, n.short, n.question, n.duplicate))]


ERROR_WIDTH = 60  # an error row shows this much of the message; --json has all of it


def _short_error(message: str) -> str:
    line = " ".join(message.split())
    return line if len(line) <= ERROR_WIDTH else line[: ERROR_WIDTH - 1] + "…"


def _layout(rows: list[list[str]], left: int) -> list[str]:
    """Columns padded to their widest cell (the first `left` left-aligned); a rule under the header
    and above the last row. A short row (an error) spans the rest of the line with its last cell."""
    width = max(len(r) for r in rows)
    widths = [max((len(r[i]) for r in rows if len(r) == width), default=0) for i in range(width)]
    lines = []
    for k, r in enumerate(rows):
        cells = [c.ljust(widths[i]) if i < left else c.rjust(widths[i]) for i, c in enumerate(r[:-1])]
        cells.append(r[-1].ljust(widths[len(r) - 1]) if len(r) - 1 < left else r[-1].rjust(widths[len(r) - 1]))
        if len(r) < width:
            cells[-1] = r[-1]
        lines.append("  ".join(cells).rstrip())
        if k == 0 or k == len(rows) - 2:
            lines.append("-" * len(lines[0]))
    return lines


def format_table(report: EvalReport) -> str:
    """Two plain-text tables, scores then noise, each one line per case and a pooled ALL line."""
    o = report.overall
    all_name = f"ALL ({o.cases - o.failed}/{o.cases} ok)"
    scores = [
        [
            "case",
            "ref",
            "words",
            "R1",
            "R2",
            "RL",
            "lead R1",
            "R2",
            "RL",
            "actions P/R/F1",
            "decisions P/R/F1",
            "problems R",
        ]
    ]
    noise_rows = [["case", "items", "pron %", "short %", "quest %", "dup %", "grounded", "tokens", "cost $", "sec"]]
    for c in [*report.cases, None]:
        name = c.case_id if c is not None else all_name
        if c is not None and c.error is not None:
            scores.append([name, c.summary_source, str(c.transcript_words), f"ERROR: {_short_error(c.error)}"])
            noise_rows.append([name, "ERROR"])
            continue
        r = c.rouge if c is not None else o.rouge
        lead = c.lead if c is not None else o.lead
        scores.append(
            [
                name,
                c.summary_source if c is not None else "mean",
                str(c.transcript_words) if c is not None else "",
                _pct(r.rouge1 if r else None),
                _pct(r.rouge2 if r else None),
                _pct(r.rougeL if r else None),
                _pct(lead.rouge1 if lead else None),
                _pct(lead.rouge2 if lead else None),
                _pct(lead.rougeL if lead else None),
                _prf(c.action_items if c is not None else o.action_items),
                _prf(c.decisions if c is not None else o.decisions),
                _recall(c.problems if c is not None else o.problems),
            ]
        )
        usage = c.usage if c is not None else o.usage
        engine = c.engine if c is not None else next((x.engine for x in report.cases if x.error is None), "")
        checked = c.grounding_checked if c is not None else o.grounding_checked
        supported = c.grounding_supported if c is not None else o.grounding_supported
        # offline evidence is copied from the transcript: its grounding is 100% by construction
        grounded = "n/a" if engine == "offline" else f"{supported}/{checked}"
        if c is None and engine != "offline":
            grounded += f" ({_pct(o.grounding_rate)}%)"
        noise_rows.append(
            [
                name,
                *_noise_cells(c.noise if c is not None else o.noise),
                grounded,
                str(usage.prompt_tokens + usage.completion_tokens),
                "-" if usage.cost is None else f"{usage.cost:.4f}",
                f"{(c.seconds if c is not None else o.seconds):.2f}",
            ]
        )
    notes = (
        f"ROUGE F1 x100 (stemmed); lead = {report.lead_rule}.\n"
        f"P/R/F1 x100 (matched/predicted/reference): one-to-one matching, token_set_ratio >= "
        f"{report.match_threshold} on stemmed content words with synonyms merged and at least two shared; "
        "micro-averaged overall. Problems: reference problems found in Key Information.\n"
        "Noise, % of action items + decisions + key information: unresolved pronoun, <= 3 words, question, "
        "repeat of another section."
    )
    return "\n".join([*_layout(scores, 2), "", *_layout(noise_rows, 1), notes])
