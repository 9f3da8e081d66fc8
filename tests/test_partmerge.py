"""Joining a long meeting's parts into one extraction in code (the default: one round of requests)."""

from __future__ import annotations

from typing import Any

import pytest

from summarizer.models import MeetingExtraction, Transcript, Utterance
from summarizer.partmerge import join_parts, sentences_per_part


def part(**values: Any) -> MeetingExtraction:
    base: dict[str, Any] = {
        "title": "Recorder project status",
        "meeting_date": None,
        "note_type": "internal",
        "account": None,
        "account_category": None,
        "participants": [],
        "summary": "",
        "action_items": [],
        "decisions": [],
        "key_information": [],
        "related": [],
    }
    return MeetingExtraction.model_validate({**base, **values})


def test_the_opening_title_the_majority_type_and_account_everyone_named_and_the_summaries_in_order() -> None:
    parts = [
        part(summary="The group opened with the budget", participants=["Ana Ruiz", "Bo Chen"], meeting_date=None),
        part(
            title="Vendor shortlist",
            note_type="customer",
            account="Northwind Studio",
            account_category="customer",
            participants=["bo chen", "Cy Diaz"],
            meeting_date="2026-03-02",
            summary="They compared two vendors.",
        ),
        part(
            title="Next steps",
            note_type="customer",
            account="Northwind Studio",
            account_category="customer",
            summary="  Owners were   named!  ",
            meeting_date="2026-03-09",
        ),
    ]
    joined = join_parts(parts)
    assert joined.title == "Recorder project status"
    assert joined.note_type == "customer" and joined.account == "Northwind Studio"
    assert joined.account_category == "customer"
    assert joined.participants == ["Ana Ruiz", "Bo Chen", "Cy Diaz"]
    assert joined.meeting_date == "2026-03-02", "the first date a part stated"
    assert joined.summary == "The group opened with the budget. They compared two vendors. Owners were named!"


def test_items_repeated_across_the_overlap_are_kept_once() -> None:
    item = {"text": "Send the revised quote to Northwind", "owner": None, "due": None, "priority": "none"}
    item["evidence"] = "x"
    parts = [
        part(action_items=[item], key_information=["The budget is 40,000 euros."]),
        part(
            action_items=[{**item, "text": "Send the revised quote to Northwind.", "owner": "Ana Ruiz"}],
            key_information=["The budget is 40,000 euros", "The budget is 45,000 euros."],
        ),
    ]
    joined = join_parts(parts)
    assert [(a.text, a.owner) for a in joined.action_items] == [("Send the revised quote to Northwind", "Ana Ruiz")]
    assert joined.key_information == ["The budget is 40,000 euros.", "The budget is 45,000 euros."]


@pytest.mark.parametrize(("parts", "each"), [(2, 3), (3, 2), (4, 1), (7, 1), (12, 1)])
def test_each_part_gets_its_share_of_a_summary_of_about_six_sentences(parts: int, each: int) -> None:
    assert sentences_per_part(parts) == each


def test_a_transcripts_text_follows_its_utterances_even_when_copied_with_others() -> None:
    first = Transcript(utterances=[Utterance(speaker="Ana", text="Hello.")])
    assert first.as_text() == "Ana: Hello."
    other = first.model_copy(update={"utterances": [Utterance(speaker="Bo", text="Bye.")]})
    assert other.as_text() == "Bo: Bye." and first.as_text() == "Ana: Hello."
    assert first.content_hash() != other.content_hash()


def test_the_account_is_voted_on_alone_and_keeps_the_category_given_with_it() -> None:
    acme = {"account": "Acme Corp", "note_type": "customer"}
    parts = [
        part(**acme, account_category="customer"),
        part(**acme),
        part(**acme, participants=["", "Ana Ruiz"], summary="会議は終わった。"),
    ]
    joined = join_parts(parts)
    assert (joined.account, joined.account_category) == ("Acme Corp", "customer")
    assert joined.participants == ["Ana Ruiz"], "an empty name is nobody"
    assert joined.summary.endswith("会議は終わった。"), "a full stop of any script ends the sentence"


def test_a_transcripts_cached_text_changes_neither_equality_nor_what_is_stored() -> None:
    first = Transcript(utterances=[Utterance(speaker="Ana", text="Hello.")])
    second = Transcript(utterances=[Utterance(speaker="Ana", text="Hello.")])
    first.as_text()
    assert first == second and second == first
    assert first.model_dump() == second.model_dump() and "_as_text" not in first.model_dump_json()
