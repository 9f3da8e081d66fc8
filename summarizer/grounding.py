"""Check that evidence quotes really occur in the transcript.

A model (or the offline engine) gives a short verbatim quote for every action
item and decision. A quote that cannot be found is the cheapest signal of a
hallucinated item, so every quote gets a 0..1 support score:

* both sides are normalised first (case, punctuation, whitespace, QMSum
  tokenisation such as ``I 'll`` / ``do n't``, non-speech tags such as
  ``{vocalsound}``, and hesitation tokens like "um"/"uh" that quoters drop);
* a quote of fewer than `MIN_QUOTE_WORDS` words (after normalising) scores 0:
  "no" or "agreed" is found in any meeting, so it proves nothing; an empty
  quote is no evidence at all;
* the quote's words found as whole words in the normalised transcript score
  1.0 ("no" is not found in "I know the plan");
* otherwise rapidfuzz's ``partial_ratio_alignment`` finds the best-aligned
  window of the transcript, the window is widened to whole words, and the score
  is ``ratio(quote, window) / 100``, provided at least 80% of the quote's
  words are whole words of that window (a quote cut mid-word is not a quote).
  It is bit-parallel C code, a few milliseconds for a 100k-character transcript.

`DEFAULT_THRESHOLD` (0.85) accepts light paraphrase of a real quote (a dropped
word, a fixed typo) and rejects invented sentences, which in practice score
0.5-0.7 against meeting text.
"""

from __future__ import annotations

import functools
import re
from typing import Literal

from pydantic import BaseModel
from rapidfuzz import fuzz

from summarizer.models import MeetingExtraction, Transcript

DEFAULT_THRESHOLD = 0.85
MIN_QUOTE_WORDS = 3
MIN_WHOLE_WORDS = 0.8  # share of a fuzzy-matched quote's words that must appear as whole words

_TAG = re.compile(r"\{[a-z_]+\}|<[^<>\s]+/>", re.IGNORECASE)  # {vocalsound}, <other_noise/>
_CONTRACTION = re.compile(r"(\w) (n't|'(?:s|ll|re|ve|d|m))\b", re.IGNORECASE)  # QMSum "I 'll", "do n't"
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.?!;:%)])")
_SPACE_AFTER_OPEN = re.compile(r"([($])\s+")
_SPACES = re.compile(r"\s+")
_QUOTES = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2014": " ", "\u2013": "-"}
)
_NON_WORD = re.compile(r"[^a-z0-9']+")
_HESITATION = re.compile(r"\b(?:um+|uh+|erm+|er|hmm+|mm+|uh-huh|mm-hmm)\b")


def detokenise(text: str) -> str:
    """Undo QMSum tokenisation and drop non-speech tags, keeping case and punctuation.

    Shared with the offline engine so both see "I'll" however the transcript spelled it.
    """
    text = text.translate(_QUOTES)
    text = _TAG.sub(" ", text)
    text = _CONTRACTION.sub(r"\1\2", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _SPACE_AFTER_OPEN.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip()


def normalise(text: str) -> str:
    """Lower-case word sequence used for matching: no punctuation, tags or hesitations."""
    text = detokenise(text).lower()
    text = _NON_WORD.sub(" ", text).replace("'", "")
    text = _HESITATION.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def _score_normalised(quote: str, text: str) -> float:
    """Score a normalised quote (single spaces, no punctuation) against a normalised transcript."""
    if not text or len(quote.split()) < MIN_QUOTE_WORDS:
        return 0.0
    if f" {quote} " in f" {text} ":
        return 1.0
    window = fuzz.partial_ratio_alignment(quote, text)
    if window is None:
        return 0.0
    start = text.rfind(" ", 0, window.dest_start) + 1  # widen to whole words on both sides
    end = text.find(" ", window.dest_end)
    found = text[start : end if end >= 0 else len(text)]
    score = float(fuzz.ratio(quote, found)) / 100.0
    words, window_words = quote.split(), set(found.split())
    whole = sum(1 for word in words if word in window_words) / len(words)
    # Light edits keep most words whole; "maximum production co" or "ype up the minute" do not.
    return score if whole >= MIN_WHOLE_WORDS else min(score, whole)


@functools.lru_cache(maxsize=8)
def _normalised_transcript(text: str) -> str:
    """Normalising a long transcript costs ~20 ms; callers check many quotes against the same one."""
    return normalise(text)


def check_evidence(quote: str, transcript_text: str) -> float:
    """Support score in 0..1 for `quote` inside `transcript_text` (1.0 = found verbatim)."""
    return _score_normalised(normalise(quote), _normalised_transcript(transcript_text))


def is_supported(quote: str, transcript_text: str, threshold: float = DEFAULT_THRESHOLD) -> bool:
    """True when the quote is (nearly) verbatim in the transcript."""
    return check_evidence(quote, transcript_text) >= threshold


class ItemVerdict(BaseModel):
    """The grounding verdict on one action item or decision."""

    kind: Literal["action_item", "decision"]
    index: int  # position in the extraction's list
    text: str
    evidence: str
    score: float
    supported: bool


class GroundingReport(BaseModel):
    """Per-item verdicts plus counts, so callers can flag items and evaluation can rate engines."""

    threshold: float
    items: list[ItemVerdict]
    checked: int
    supported: int
    unsupported: int

    @property
    def rate(self) -> float | None:
        """Share of checked items whose evidence was found; None when nothing was checked."""
        return self.supported / self.checked if self.checked else None


def ground_extraction(
    extraction: MeetingExtraction, transcript: Transcript, *, threshold: float = DEFAULT_THRESHOLD
) -> GroundingReport:
    """Check every action item's and decision's evidence against the transcript (normalised once)."""
    text = _normalised_transcript(transcript.as_text())
    pairs: list[tuple[Literal["action_item", "decision"], int, str, str]] = [
        ("action_item", i, a.text, a.evidence) for i, a in enumerate(extraction.action_items)
    ]
    pairs += [("decision", i, d.text, d.evidence) for i, d in enumerate(extraction.decisions)]
    items: list[ItemVerdict] = []
    for kind, index, item_text, evidence in pairs:
        score = _score_normalised(normalise(evidence), text)
        items.append(
            ItemVerdict(
                kind=kind,
                index=index,
                text=item_text,
                evidence=evidence,
                score=round(score, 4),
                supported=score >= threshold,
            )
        )
    supported = sum(1 for v in items if v.supported)
    return GroundingReport(
        threshold=threshold,
        items=items,
        checked=len(items),
        supported=supported,
        unsupported=len(items) - supported,
    )
