"""Property tests: no model text, however hostile, makes a tag, field, link, block id or HTML in a note.

The checks read the output the way the Obsidian Tasks plugin does (`parse_task` follows its
DefaultTaskSerializer, `extract_hashtags` its tag rule with JavaScript whitespace), so a line that
passes here is read by the plugin as exactly the task we wrote.
"""

from __future__ import annotations

import datetime as dt
import html
import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from summarizer.markdown import TASK_EMOJI, inline, one_line, plain, task_text
from summarizer.models import Task
from summarizer.tasks import extract_hashtags, format_task, parse_task

# Characters that mean something to Obsidian, the Tasks plugin, Dataview or HTML, mixed with any Unicode.
SYNTAX = [
    *"#@ \ufeff\u200b\u2060\u00a0\n\t[]^<>/&;{}%`:!()-*+=.x1a\\\ufe0f",
    *TASK_EMOJI,
    *["&#35;", "&lt;", "&amp;", "<img src=x>", "<b", "{{", "[[", " 2020-01-01", " ^id", "::"],
]
hostile = st.lists(st.sampled_from(SYNTAX) | st.characters(blacklist_categories=("Cs",)), max_size=30).map("".join)
ATTACKS = [
    "Review \ufeff#urgent items",
    "ping @#general now",
    "a \\##b",
    "x\u200b #\u200burgent",
    "[\u200b[Evil]] and ![x](https://evil.example/p.png)",
    "<img src='https://evil.example/p.png'> &#xA; {{{x}}}",
    "&lt;img src=x&gt; &amp;#35;tag",
    "do it 📅 2020-01-01 🔁 every day ^blockid",
    "- [x] done 📅 2020-01-01",
    "note `$= dv.el('img','')` [due:: 2020-01-01]",
]
BLOCK_ID = re.compile(r"(?<!\S)\^[A-Za-z0-9-]")
HTML_TAG = re.compile(r"<[A-Za-z/!?%]")


def _assert_inert(text: str) -> None:
    """Nothing Obsidian or the Tasks plugin would read as markup, whatever line it ends up in."""
    assert "\n" not in text and "\ufeff" not in text
    assert extract_hashtags(text) == [] and extract_hashtags(" " + text) == []
    assert "[[" not in text and "]]" not in text and "%%" not in text and "::" not in text
    assert not BLOCK_ID.search(text)
    assert not HTML_TAG.search(text)
    assert html.unescape(text) == text  # no entity left for Obsidian to decode
    assert "{{" not in text and "{%" not in text and "`" not in text and "![" not in text


@settings(max_examples=400)
@given(hostile)
def test_sanitisers_are_idempotent(text: str) -> None:
    for sanitise in (one_line, plain, inline, task_text):
        once = sanitise(text)
        assert sanitise(once) == once, sanitise.__name__


@settings(max_examples=400)
@given(hostile)
@example(ATTACKS[0])
@example(ATTACKS[1])
@example(ATTACKS[2])
@example(ATTACKS[3])
@example(ATTACKS[4])
@example(ATTACKS[5])
@example(ATTACKS[6])
@example(ATTACKS[9])
def test_inline_text_is_inert(text: str) -> None:
    out = inline(text)
    _assert_inert(out)
    assert parse_task(f"- {out}") is None, "a bullet must never become a task"
    assert not out.startswith(("#", ">", "---", "```", "- ", "* ", "+ "))


@settings(max_examples=400)
@given(
    text=hostile,
    owner=st.none() | hostile,
    due=st.none() | st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31)),
    priority=st.sampled_from(["highest", "high", "medium", "low", "lowest", "none"]),
)
@example(text=ATTACKS[1], owner="@#general", due=None, priority="none")
@example(text=ATTACKS[7], owner="Bob \ufeff#x", due=None, priority="none")
@example(text=ATTACKS[8], owner=None, due=None, priority="none")
def test_task_lines_carry_only_our_fields_and_tags(
    text: str, owner: str | None, due: dt.date | None, priority: str
) -> None:
    line = format_task(Task(text=text, owner=owner, due=due, priority=priority))  # type: ignore[arg-type]
    parsed = parse_task(line)
    assert parsed is not None
    assert parsed.all_tags == ["#task", "#proposed"]  # tags anywhere in the description count
    assert parsed.fields == {
        **({"due": due.isoformat()} if due else {}),
        **({"priority": format_task(Task(text="x", priority=priority)).split()[-3]} if priority != "none" else {}),
    }
    _assert_inert(parsed.description)
    assert not set(parsed.description) & set(TASK_EMOJI)
    assert task_text(text) in parsed.description


def test_known_attacks_lose_their_markup() -> None:
    assert inline(ATTACKS[0]) == "Review \\#urgent items"
    assert task_text(ATTACKS[1]) == "ping general now"
    assert inline(ATTACKS[5]) == "{x}"
    assert inline("<b>Ship</b> &amp; <i>test</i>") == "Ship & test"
    assert inline("Price <5% and >3%") == "Price <5% and >3%"  # comparisons are not HTML
    assert task_text(ATTACKS[7]) == "do it 2020-01-01 every day blockid"
