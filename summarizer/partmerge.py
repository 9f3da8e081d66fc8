"""One extraction from a long meeting's parts: the lists merged with near-duplicates removed, and (by
default) the title, metadata and summary joined here too, so a long meeting takes one round of requests.

Pure: parts in, one `MeetingExtraction` out. The parts overlap by a few utterances, so the same item
often comes back from two neighbours in slightly different words; those collapse into one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TypeVar

from summarizer.models import ActionItem, Decision, Entity, MeetingExtraction

DUPLICATE_SCORE = 90
SUMMARY_SENTENCES = 6  # a whole meeting's summary, at most; each part gets its share, at least one

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_ENDS_SENTENCE = re.compile(r"[.!?…。！？][\"'”’)\]」』]*$")

T = TypeVar("T")


def sentences_per_part(total: int) -> int:
    """How many summary sentences each of `total` parts writes, so the joined summary stays one paragraph."""
    return max(1, SUMMARY_SENTENCES // max(1, total))


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


def merge_lists(head: MeetingExtraction, parts: Sequence[MeetingExtraction]) -> MeetingExtraction:
    """`head`'s title, metadata and summary with every part's lists, merged in order."""
    return head.model_copy(
        update={
            "action_items": merge_action_items([i for p in parts for i in p.action_items]),
            "decisions": merge_decisions([d for p in parts for d in p.decisions]),
            "key_information": merge_texts([k for p in parts for k in p.key_information]),
            "related": merge_entities([e for p in parts for e in p.related]),
        }
    )


def _most_common(values: Sequence[T]) -> T:
    """The value most parts agree on; on a tie, the one met first."""
    counts = Counter(values)
    return max(values, key=lambda v: (counts[v], -values.index(v)))


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if not text or _ENDS_SENTENCE.search(text) else f"{text}."


def join_parts(parts: Sequence[MeetingExtraction]) -> MeetingExtraction:
    """The whole meeting from its parts with no further request.

    The title is the opening part's (where a meeting states its purpose); the date the first one
    stated; the type and account the ones most parts agree on; participants everyone named, in order
    of appearance; the summary the parts' summaries in order, as one paragraph (each part was asked
    for its share of the sentences, written to follow on from the part before)."""
    if not parts:
        raise ValueError("no parts to join")
    titled = [p for p in parts if p.title.strip()] or list(parts)
    accounts = [p.account for p in parts if p.account]
    account = _most_common(accounts) if accounts else None
    categories = [p.account_category for p in parts if account and p.account == account and p.account_category]
    category = _most_common(categories) if categories else None
    participants: dict[str, str] = {}
    for part in parts:
        for name in part.participants:
            if name.strip():
                participants.setdefault(name.casefold().strip(), name)
    head = parts[0].model_copy(
        update={
            "title": titled[0].title,
            "meeting_date": next((p.meeting_date for p in parts if p.meeting_date), None),
            "note_type": _most_common([p.note_type for p in parts]),
            "account": account,
            "account_category": category,
            "participants": list(participants.values()),
            "summary": " ".join(s for s in (_sentence(p.summary) for p in parts) if s),
        }
    )
    return merge_lists(head, parts)
