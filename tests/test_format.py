"""The format layer: task lines the Tasks plugin reads back as intended, safe names, slugs, YAML."""

from __future__ import annotations

import datetime as dt

import yaml
from hypothesis import given
from hypothesis import strategies as st

from summarizer.markdown import inline, link_target, safe_filename, slugify
from summarizer.models import MeetingNote, Task
from summarizer.render import dump_frontmatter, frontmatter
from summarizer.tasks import format_task, parse_task

REFERENCE = "- [?] Meet VAST CEO Renan to quantify offer risks. @Myself 📅 2025-10-26 🔺 #task #proposed"


def test_reference_line_parses_as_the_plugin_reads_it() -> None:
    parsed = parse_task(REFERENCE)
    assert parsed is not None
    assert parsed.status == "?"
    assert parsed.due == dt.date(2025, 10, 26)
    assert parsed.priority == "highest"
    assert parsed.tags == ["#task", "#proposed"]
    assert parsed.split_owner() == ("Meet VAST CEO Renan to quantify offer risks.", "Myself")


def test_text_after_a_signifier_stops_the_plugin() -> None:
    parsed = parse_task("- [ ] Call Bob 📅 2025-10-26 (tentative)")
    assert parsed is not None and parsed.due is None


def test_format_writes_the_vault_order() -> None:
    task = Task(text="Send it", owner="Myself", due=dt.date(2025, 10, 26), priority="high")
    assert format_task(task) == "- [?] Send it @Myself 📅 2025-10-26 ⏫ #task #proposed"
    assert format_task(Task(text="Send it")) == "- [?] Send it #task #proposed"


texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60)


@given(
    text=texts,
    owner=st.none() | texts,
    due=st.none() | st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31)),
    priority=st.sampled_from(["highest", "high", "medium", "low", "lowest", "none"]),
)
def test_every_generated_line_reads_back_as_intended(
    text: str, owner: str | None, due: dt.date | None, priority: str
) -> None:
    """Whatever the model writes, the plugin sees exactly the due date, priority and tags we meant."""
    line = format_task(Task(text=text, owner=owner, due=due, priority=priority))  # type: ignore[arg-type]
    assert "\n" not in line
    parsed = parse_task(line)
    assert parsed is not None
    assert parsed.due == due
    assert parsed.priority == priority
    assert parsed.tags[-2:] == ["#task", "#proposed"]
    assert set(parsed.fields) <= {"due", "priority"}


@given(texts)
def test_inline_text_never_starts_a_block_or_breaks_a_line(text: str) -> None:
    out = inline(text)
    assert "\n" not in out and "\r" not in out
    assert not out.startswith(("#", ">", "---", "```", "- ", "* ", "+ "))
    assert "[[" not in out and "]]" not in out and "%%" not in out


@given(texts)
def test_link_targets_have_no_link_syntax(text: str) -> None:
    target = link_target(text)
    assert not set(target) & set("[]|#^\\/:\n")


@given(texts)
def test_frontmatter_is_always_valid_yaml_that_reads_back(text: str) -> None:
    """Model text in every frontmatter field; PyYAML itself mangles U+0085, which one_line removes."""
    note = MeetingNote(
        title=text,
        date=None,
        note_type="people",
        account=text,
        account_category=None,
        participants=[text],
        summary="",
        action_items=[],
        decisions=[],
        key_information=[],
        related=[],
        source_ref="Inbox/x.md",
        tags=["generated"],
    )
    data = frontmatter(note)
    block = dump_frontmatter(data)
    assert yaml.safe_load(block) == data
    assert "\n---" not in "\n" + block


def test_safe_filename_rules() -> None:
    assert safe_filename('Q2: "plan" <draft>?*|#^[x]') == "Q2 plan draftx"
    assert safe_filename("CON") == "_CON"
    assert safe_filename("...hidden") == "hidden"
    assert safe_filename("trailing. ") == "trailing"
    assert safe_filename("") == "Untitled"
    assert len(safe_filename("x" * 300)) == 100


def test_slugify() -> None:
    assert slugify("Jai Menon") == "jai-menon"
    assert slugify("Zoë  Ångström!") == "zoë-ångström"
    assert slugify("1984") == "n1984"
    assert slugify("a -- b") == "a-b"
