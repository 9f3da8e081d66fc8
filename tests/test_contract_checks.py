"""Shape checks on the model's JSON answer: names, accounts, titles; the error names the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from summarizer.models import (
    ExtractionResult,
    MeetingExtraction,
    check_account,
    check_name,
    check_title,
    example_titles,
)

ANSWER: dict[str, Any] = {
    "title": "Q3 budget review",
    "meeting_date": None,
    "note_type": "internal",
    "account": None,
    "account_category": None,
    "participants": ["Alice Moreau", "Bob Chen"],
    "summary": "",
    "action_items": [{"text": "Send it", "owner": "Bob Chen", "due": None, "priority": "none", "evidence": "x"}],
    "decisions": [],
    "key_information": [],
    "related": [{"name": "Budget", "kind": "concept"}],
}


@pytest.mark.parametrize("name", ["Bob Chen", "Zoë Ångström-Lee", "J. R. O'Neil", "SPEAKER_00", "Speaker 2", "Myself"])
def test_names_that_pass(name: str) -> None:
    assert check_name(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "Marcus Oyelaran, Northwind Studio",
        "Ana Souza (CFO)",
        "Maria and Tom",
        "Bob from Finance",
        "Dr Anna Maria Louisa von Habsburg Lothringen",
        "x" * 51,
        "---",
    ],
)
def test_descriptions_are_not_names(name: str) -> None:
    assert check_name(name)


def test_accounts_and_titles() -> None:
    assert check_account("Northwind Studio") is None
    assert check_account("Smith, Jones & Co.") is None
    assert check_account("A" * 110) == "110 characters, at most 60"
    assert check_title("Q3 budget review") is None
    assert check_title("  q3 PRICING review with acme ") is not None  # the prompt's example, however spelled
    assert check_title("#!") is not None
    assert check_title("") is None  # nothing to repair: the note uses the file's title
    assert check_title(" ".join(["word"] * 15)) == "15 words, at most 14"


def test_example_titles_are_read_from_the_shipped_prompts() -> None:
    assert "q3 pricing review with acme" in example_titles()


def test_json_answers_are_checked_with_the_field_named() -> None:
    bad = {**ANSWER, "title": "Q3 pricing review with Acme", "account": "A" * 70}
    bad["action_items"] = [{**ANSWER["action_items"][0], "owner": "Marcus Oyelaran, Northwind Studio"}]
    with pytest.raises(ValidationError) as caught:
        MeetingExtraction.model_validate_json(json.dumps(bad))
    where = {".".join(map(str, e["loc"])): e["msg"] for e in caught.value.errors()}
    assert set(where) == {"title", "account", "action_items.0.owner"}
    assert where["account"] == "70 characters, at most 60"


def test_objects_built_in_code_and_stored_results_are_trusted() -> None:
    odd = {**ANSWER, "account": "A" * 70}
    assert MeetingExtraction.model_validate(odd).account == "A" * 70  # offline engine, parsed notes
    stored = json.dumps({"extraction": odd, "engine": "openai", "model": "m", "prompt_version": "p"})
    assert ExtractionResult.model_validate_json(stored).extraction.account == "A" * 70  # the cache
    with pytest.raises(ValidationError):
        MeetingExtraction.model_validate_json(json.dumps(odd))  # but a fresh answer is checked
