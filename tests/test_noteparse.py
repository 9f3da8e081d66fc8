"""noteparse is the renderer's inverse: parse(render(note)) == note.

The property holds over notes the renderer can represent exactly, which is what
the strategies below generate (the restriction, spelled out):

- free text is already what the renderer would write: `inline(x) == x` for the
  summary, decisions and key information, `task_text(x) == x` for task text and
  owners, `link_target(x) == x` for the account and related names, `one_line(x)
  == x` without `[[`/`]]` for the title and participants;
- evidence is None and a grounding verdict is None or False (the note shows only
  "not found in the transcript", as `#unverified`; True reads back as None);
- `account_linked` is True when there is no account (nothing shows it then);
- `note.tags` are unique and never start with `type/` or `account/` (those are
  derived from the account and its category, and would be read back as such);
- extra frontmatter keys do not collide with the renderer's own keys and hold
  YAML scalars or lists of strings;
- a summary is never the literal `_None._` placeholder.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from summarizer.errors import NoteParseError
from summarizer.markdown import inline, link_target, one_line, task_text
from summarizer.models import AccountCategory, DecisionItem, MeetingNote, NoteType, Priority, Task
from summarizer.noteparse import parse_note, source_link, split_note, standard_keys
from summarizer.reader import repair_mojibake
from summarizer.render import EMPTY_SECTION, render_note

SEED = Path(__file__).parent / "data" / "seed"

# Letters, digits, spaces and the punctuation meeting notes actually carry, plus some
# characters with meaning in markdown, so escaping is exercised too.
ALPHABET = st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP0123456789 .,;:'’()-#[]@é€😀*_"))
raw = st.text(ALPHABET, min_size=1, max_size=40)


def _fixed(fn: Any) -> st.SearchStrategy[str]:
    """Strings that `fn` leaves alone: exactly what the renderer writes for them."""
    return raw.map(fn).filter(lambda s: bool(s) and fn(s) == s)


inline_text = _fixed(inline).filter(lambda s: s != EMPTY_SECTION)
task_words = _fixed(task_text)
names = _fixed(link_target)
titles = _fixed(lambda s: one_line(s).replace("[[", "[").replace("]]", "]"))
dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31))
tasks = st.builds(
    Task,
    status=st.sampled_from([" ", "x", "?", "-", "/", ">"]),
    text=task_words,
    owner=st.none() | task_words,
    due=st.none() | dates,
    priority=st.sampled_from(get_args(Priority)),
    supported=st.sampled_from([None, False]),
)
decisions = st.builds(DecisionItem, text=inline_text, supported=st.sampled_from([None, False]))
tag_words = st.text(st.sampled_from(list("abcxyz-/_0123")), min_size=1, max_size=12).filter(
    lambda t: not t.startswith(("type/", "account/"))
)
extra_values = st.one_of(st.integers(-5, 5), st.booleans(), st.text(ALPHABET, max_size=20), st.lists(raw, max_size=3))


@st.composite
def notes(draw: st.DrawFn) -> MeetingNote:
    note_type = draw(st.sampled_from(get_args(NoteType)))
    account = draw(st.none() | names)
    reserved = standard_keys(note_type)
    extra = draw(
        st.dictionaries(st.sampled_from(["status", "aliases", "rating", "cssclass"]), extra_values, max_size=2)
    )
    return MeetingNote(
        title=draw(titles),
        date=draw(st.none() | dates),
        note_type=note_type,
        account=account,
        account_linked=draw(st.booleans()) if account else True,
        account_category=draw(st.none() | st.sampled_from(get_args(AccountCategory))),
        participants=draw(st.lists(titles, max_size=4)),
        summary=draw(st.just("") | inline_text),
        action_items=draw(st.lists(tasks, max_size=4)),
        decisions=draw(st.lists(decisions, max_size=3)),
        key_information=draw(st.lists(inline_text, max_size=3)),
        related=draw(st.lists(names, max_size=3)),
        source_ref=draw(st.sampled_from(["Inbox/a.md", "Inbox/_archive/2025-01-01/x y.md", "t.vtt"])),
        tags=draw(st.lists(tag_words, unique=True, max_size=3)),
        extra_frontmatter={k: v for k, v in extra.items() if k not in reserved},
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(notes())
def test_parse_inverts_render(note: MeetingNote) -> None:
    assert parse_note(render_note(note)) == note


@settings(max_examples=50, deadline=None)
@given(notes(), st.sampled_from(["", "#task", "#todo #meeting"]))
def test_parse_inverts_render_with_other_task_tags(note: MeetingNote, task_tags: str) -> None:
    assert parse_note(render_note(note, task_tags=task_tags), task_tags=task_tags) == note


def test_repaired_seed_note_parses_into_the_consistent_note() -> None:
    repaired = repair_mojibake((SEED / "original-note.md").read_text(encoding="utf-8"))
    note = parse_note(repaired)
    assert note.account == "Jai Menon" and note.account_category == "customer"
    assert [t.priority for t in note.action_items] == ["highest"] * 3 + ["high"]
    assert note.action_items[0].owner == "Myself"
    assert render_note(note) == (SEED / "consistent-note.md").read_text(encoding="utf-8")


def test_source_link_reads_target_and_name() -> None:
    body = split_note((SEED / "note.md").read_text(encoding="utf-8")).body
    found = source_link(body)
    assert found is not None
    assert found[0].startswith("Inbox/_archive/2025-10-06/")
    assert found[1] is not None and found[1].startswith("2025-10-06 - Jason")


def test_edited_lines_do_not_break_parsing() -> None:
    text = (SEED / "consistent-note.md").read_text(encoding="utf-8")
    text = text.replace("- [?] Meet VAST", "- [x] Meet VAST").replace("## Decisions", "My own line\n\n## Decisions")
    note = parse_note(text)
    assert note.action_items[0].status == "x"
    assert len(note.decisions) == 2


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("# no frontmatter\n", "no frontmatter"),
        ("---\ntitle: x\n", "never closes"),
        ("---\n: : [\n---\nbody", "not valid YAML"),
        ("---\n- a\n---\nbody", "not a mapping"),
    ],
)
def test_unreadable_notes_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(NoteParseError, match=reason):
        parse_note(text, where="x.md")
