"""What a hostile or weak model writes, through `summarizer summarise`, and what reaches the note.

The model is the loopback fake server; every test reads the written note back, the task lines
through `parse_task` (the Obsidian Tasks plugin's own reading), and checks what could go wrong.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from summarizer.tasks import extract_hashtags, parse_task
from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli, make_vault

TRANSCRIPT = """\
Alice Moreau: Thanks for joining. We need the Q3 budget locked this week.
Bob Chen: I know the plan. I'll send the revised forecast by Friday.
Alice Moreau: Great. Then we agreed to cut the travel budget by ten percent.
"""
DATED = "2026-03-02 - Budget review.txt"
UNDATED = "Budget review.txt"

GOOD: dict[str, Any] = {
    "title": "Q3 budget review",
    "meeting_date": None,
    "note_type": "internal",
    "account": None,
    "account_category": None,
    "participants": ["Alice Moreau", "Bob Chen"],
    "summary": "Alice and Bob reviewed the Q3 budget.",
    "action_items": [
        {
            "text": "Send the revised forecast",
            "owner": "Bob Chen",
            "due": None,
            "priority": "high",
            "evidence": "I'll send the revised forecast by Friday.",
        }
    ],
    "decisions": [{"text": "Cut travel by 10%.", "evidence": "we agreed to cut the travel budget by ten percent"}],
    "key_information": ["The Q3 budget must be locked this week."],
    "related": [],
}


def _vault(tmp_path: Path, name: str = DATED, transcript: str = TRANSCRIPT, config: str = "") -> Path:
    return make_vault(tmp_path / "vault", 'owner = "Alice Moreau"\n' + config, {f"Inbox/{name}": transcript})


def _summarise(vault: Path, name: str = DATED, *extra: str) -> tuple[Any, str]:
    result = cli("summarise", vault / "Inbox" / name, "--vault", vault, *extra)
    assert result.exit_code == 0, result.stderr
    return result, Path(result.stdout.strip()).read_text(encoding="utf-8")


def _body(note: str) -> str:
    return note.split("\n---\n", 1)[1]


def _task_lines(note: str) -> list[str]:
    return [line for line in note.splitlines() if parse_task(line) is not None]


def test_hostile_text_makes_no_tag_field_link_block_id_or_html(tmp_path: Path, model_env: FakeOpenAI) -> None:
    hostile = copy.deepcopy(GOOD)
    hostile["summary"] = "Review <img src='https://evil.example/p.png'> &#xA; {{{secret}}} \ufeff#urgent `$= dv.x()`"
    hostile["action_items"][0]["text"] = (
        "Send the forecast \ufeff#urgent ping @#general [\u200b[Evil]] ^blk 🔁 every day"
    )
    hostile["decisions"][0]["text"] = "[ ] fake task 📅 2020-01-01 &lt;iframe src=x&gt; ![x](https://evil.example/p.png)"
    hostile["key_information"] = ["- [x] done 📅 2020-01-01", "Uses \u200b#hidden and [due:: 2020-01-01]"]
    vault = _vault(tmp_path)
    model_env.enqueue(fo.reply(hostile))
    _, note = _summarise(vault)

    body = _body(note)
    tasks = _task_lines(note)
    assert len(tasks) == 1, "bullets from decisions and key information never become tasks"
    parsed = parse_task(tasks[0])
    assert parsed is not None
    assert parsed.all_tags == ["#task", "#proposed"]
    assert parsed.fields == {"priority": "⏫"}
    assert "Send the forecast" in parsed.description and "urgent" in parsed.description
    plain_lines = [line for line in body.splitlines() if line not in tasks]
    assert not [t for line in plain_lines for t in extract_hashtags(line)], "no tag outside the generated ones"
    for bad in ("<img", "<iframe", "&#", "&lt;", "{{", "[[Evil", "^blk", "`", "![", "::", "\ufeff", "\u200b"):
        assert bad not in body, bad
    assert "https://evil.example/p.png" not in body.replace("(https://evil.example/p.png)", "")


def test_evidence_must_be_a_real_quote_of_a_few_words(tmp_path: Path, model_env: FakeOpenAI) -> None:
    weak = copy.deepcopy(GOOD)
    item = GOOD["action_items"][0]
    weak["action_items"] = [
        {**item, "text": "Send the revised forecast"},  # a real quote: stays verified
        {**item, "text": "Invented task one", "evidence": ""},  # no evidence at all
        {**item, "text": "Invented task two", "evidence": "no"},  # inside "I know", not a word of its own
        {**item, "text": "Invented task three", "evidence": "the plan"},  # real words, too few to prove anything
    ]
    weak["decisions"] = [{"text": "Invented decision", "evidence": ""}]
    vault = _vault(tmp_path)
    model_env.enqueue(fo.reply(weak))
    result, note = _summarise(vault)
    lines = {parse_task(line).description.split(" @")[0]: line for line in _task_lines(note)}  # type: ignore[union-attr]
    assert "#unverified" not in lines["Send the revised forecast"]
    for text in ("Invented task one", "Invented task two", "Invented task three"):
        assert lines[text].endswith("#unverified"), text
    assert "- Invented decision #unverified" in note
    assert "4 of 5 items" in result.stderr


def test_dropped_when_configured(tmp_path: Path, model_env: FakeOpenAI) -> None:
    weak = copy.deepcopy(GOOD)
    weak["action_items"].append({**GOOD["action_items"][0], "text": "Invented task", "evidence": ""})
    vault = _vault(tmp_path, config='unsupported_evidence = "drop"\n')
    model_env.enqueue(fo.reply(weak))
    _, note = _summarise(vault)
    assert "Invented task" not in note and "Send the revised forecast" in note


def test_offline_engine_keeps_its_own_quotes_verified(tmp_path: Path) -> None:
    vault = _vault(tmp_path)
    result, note = _summarise(vault, DATED, "--engine", "offline")
    tasks = _task_lines(note)
    assert tasks and all("#unverified" not in t for t in tasks)
    assert "evidence" not in result.stderr


def test_wrong_shapes_get_a_repair_request_naming_each_field(tmp_path: Path, model_env: FakeOpenAI) -> None:
    weak = copy.deepcopy(GOOD)
    weak["account"] = "Northwind Studio, a design agency based in Lisbon that Alice has worked with for years now"
    weak["account_category"] = "vendor"
    weak["action_items"][0]["owner"] = "Marcus Oyelaran, Northwind Studio"
    weak["title"] = "Q3 pricing review with Acme"  # the prompt's own example
    vault = _vault(tmp_path)
    model_env.enqueue(fo.reply(weak), fo.reply(GOOD))
    _, note = _summarise(vault)
    repair = model_env.chat_requests()[1]["messages"][-1]["content"]
    assert re.search(r"account: \d+ characters, at most 60", repair)
    assert "action_items.0.owner: 'Marcus Oyelaran, Northwind Studio' is not a name" in repair
    assert "title: 'Q3 pricing review with Acme' is the prompt's example title" in repair
    assert "# Q3 budget review" in note


def test_wrong_shapes_twice_keep_the_note_without_the_off_shape_field(tmp_path: Path, model_env: FakeOpenAI) -> None:
    weak = copy.deepcopy(GOOD)
    weak["participants"] = ["Alice Moreau", "Bob Chen (Finance)"]
    vault = _vault(tmp_path)
    model_env.enqueue(fo.reply(weak), fo.reply(weak))
    result, note = _summarise(vault)
    assert len(model_env.chat_requests()) == 2  # one repair was asked for, naming the field
    assert "participants: 'Bob Chen (Finance)' is not a name" in model_env.chat_requests()[1]["messages"][-1]["content"]
    # The second answer is kept: the note is written, the off-shape name dropped, the rest intact.
    assert result.exit_code == 0
    assert "Bob Chen (Finance)" not in note
    assert "Alice Moreau" in note and "Send the revised forecast" in note


def test_a_broken_answer_twice_still_writes_no_note(tmp_path: Path, model_env: FakeOpenAI) -> None:
    weak = copy.deepcopy(GOOD)
    weak["participants"] = ["Alice Moreau", "Bob Chen (Finance)"]
    del weak["summary"]  # not a shape problem: the contract itself is broken
    vault = _vault(tmp_path)
    model_env.enqueue(fo.reply(weak), fo.reply(weak))
    result = cli("summarise", vault / "Inbox" / DATED, "--vault", vault)
    assert result.exit_code == 1
    assert "unusable twice" in result.stderr
    assert not (vault / "Meetings").exists()


def test_a_model_date_the_transcript_never_states_is_not_used(tmp_path: Path, model_env: FakeOpenAI) -> None:
    guessed = {**GOOD, "meeting_date": "2026-03-02"}
    vault = _vault(tmp_path, UNDATED)
    model_env.enqueue(fo.reply(guessed))
    result, note = _summarise(vault, UNDATED)
    assert "**Date**: unknown" in note
    assert "\ndate:" not in note.split("\n---\n", 1)[0]
    assert "2026-03-02" not in Path(result.stdout.strip()).name


@pytest.mark.parametrize(
    ("stated", "model_date", "used"),
    [
        ("Today is March 2nd, 2026.", "2026-03-02", True),
        ("Notes for 2 March 2026.", "2026-03-02", True),
        ("Meeting of 2026-03-02.", "2026-03-02", True),
        ("Meeting of 15/03/2026.", "2026-03-15", True),
        ("Meeting of 02/03/2026.", "2026-03-02", False),  # 2 March or 3 February: not taken
        ("Today is March 2nd, 2026.", "2026-03-03", False),
    ],
)
def test_a_model_date_the_transcript_states_is_used(
    tmp_path: Path, model_env: FakeOpenAI, stated: str, model_date: str, used: bool
) -> None:
    vault = _vault(tmp_path, UNDATED, f"Alice Moreau: {stated}\n" + TRANSCRIPT)
    model_env.enqueue(fo.reply({**GOOD, "meeting_date": model_date}))
    result, note = _summarise(vault, UNDATED)
    assert (f"**Date**: {model_date}" in note) is used
    assert ("**Date**: unknown" in note) is not used
    assert Path(result.stdout.strip()).name.startswith(model_date) is used
