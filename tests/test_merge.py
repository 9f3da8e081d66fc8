"""Three-way merge rules: the person's edits win, untouched generated text follows the new run."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from summarizer.merge import (
    KeptEdit,
    describe_kept,
    merge_line,
    merge_list,
    merge_mapping,
    merge_note,
    ordered_union,
)

SEED = Path(__file__).parent / "data" / "seed"
BASE = (SEED / "consistent-note.md").read_text(encoding="utf-8")
TASK_MEET = (
    "- [?] Meet VAST CEO Renan to quantify offer risks and discuss adjustments to commission and equity terms."
    " @Myself 📅 2025-10-26 🔺 #task #proposed"
)
TASK_UPDATE = (
    "- [?] Update Jai with final decision and timing (including resignation plan if leaving Microsoft)."
    " @Myself 📅 2025-10-26 ⏫ #task #proposed"
)


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def test_no_edits_means_the_new_render() -> None:
    ours = edit(BASE, "Jason discussed", "Jason weighed")
    assert merge_note(BASE, BASE, ours) == ours


def test_nothing_new_means_their_note() -> None:
    theirs = edit(BASE, "- [?] Meet VAST", "- [x] Meet VAST")
    assert merge_note(BASE, theirs, BASE) == theirs


def test_ticked_task_keeps_state_and_date_on_the_reworded_task() -> None:
    theirs = edit(BASE, TASK_MEET, TASK_MEET.replace("[?]", "[x]") + " ✅ 2025-10-20")
    ours = edit(
        BASE, "Meet VAST CEO Renan to quantify offer risks", "Meet Renan, VAST's CEO, to quantify the offer risks"
    )
    merged = merge_note(BASE, theirs, ours)
    assert (
        "- [x] Meet Renan, VAST's CEO, to quantify the offer risks and discuss adjustments to commission and "
        "equity terms. @Myself 📅 2025-10-26 🔺 #task #proposed ✅ 2025-10-20"
    ) in merged
    assert "Meet VAST CEO Renan" not in merged


def test_task_fields_merge_one_by_one() -> None:
    base = "- [?] Send the quote to Acme @Myself 📅 2025-01-10 🔼 #task #proposed"
    theirs = "- [?] Send the quote to Acme @Dana 📅 2025-01-12 🔼 #task #proposed"  # owner and date edited
    ours = "- [?] Send the revised quote to Acme @Myself 📅 2025-01-10 ⏫ #task #proposed"  # text and priority
    assert (
        merge_line(base, theirs, ours) == "- [?] Send the revised quote to Acme @Dana 📅 2025-01-12 ⏫ #task #proposed"
    )


def test_task_line_rewritten_by_the_tasks_plugin_is_kept_verbatim_when_nothing_else_changed() -> None:
    base = "- [?] Send the quote @Myself 📅 2025-01-10 🔼 #task #proposed"
    theirs = "- [x] Send the quote @Myself #task #proposed 🔼 📅 2025-01-10 ✅ 2025-01-09"
    assert merge_line(base, theirs, base) == theirs


def test_a_task_they_touched_stays_when_the_new_run_drops_it_and_untouched_ones_go() -> None:
    theirs = edit(BASE, TASK_UPDATE, TASK_UPDATE.replace("[?]", "[-]") + " ❌ 2025-10-21")
    ours = edit(BASE, TASK_UPDATE + "\n", "")
    ours = edit(ours, "- [?] Decide between VAST and Crusoe", "- [?] Choose between VAST and Crusoe")
    ours = edit(ours, TASK_MEET + "\n", "")
    merged = merge_note(BASE, theirs, ours)
    assert "- [-] Update Jai with final decision" in merged and "❌ 2025-10-21" in merged
    assert "Meet VAST CEO" not in merged  # untouched, no longer generated
    assert "- [?] Choose between VAST and Crusoe" in merged


def test_a_generated_line_they_deleted_stays_deleted() -> None:
    theirs = edit(BASE, "- Do not pursue Microsoft compensation changes for Jason.\n", "")
    ours = edit(BASE, "Jason discussed", "Jason weighed")
    merged = merge_note(BASE, theirs, ours)
    assert "Do not pursue Microsoft" not in merged and "Jason weighed" in merged


def test_added_paragraph_line_and_section_stay_in_place() -> None:
    theirs = edit(BASE, "then update Jai.\n", "then update Jai.\n\nMy paragraph.\n")
    theirs = edit(theirs, "\n## Related\n", "\n## Follow-up\n\nCall Jai on Friday.\n\n## Related\n")
    theirs = edit(theirs, "- Crusoe offer has", "- My own fact.\n- Crusoe offer has")
    ours = edit(BASE, "Jason discussed two external offers", "Jason compared two outside offers")
    ours = edit(ours, "- Crusoe offer has a deadline", "- The Crusoe offer has a deadline")
    merged = merge_note(BASE, theirs, ours)
    assert "Jason compared two outside offers" in merged
    assert "then update Jai.\n\nMy paragraph.\n## Action Items" in merged
    assert "- My own fact.\n- The Crusoe offer has a deadline" in merged
    assert "\n## Follow-up\n\nCall Jai on Friday.\n\n## Related\n" in merged


def test_rewritten_summary_still_comes_before_their_paragraph() -> None:
    theirs = edit(BASE, "then update Jai.\n", "then update Jai.\n\nMy paragraph.\n")
    ours = BASE.split("## Summary\n\n")[0] + "## Summary\n\nA completely different summary.\n## Action Items"
    ours += BASE.split("\n## Action Items", 1)[1]
    merged = merge_note(BASE, theirs, ours)
    assert "## Summary\n\nA completely different summary.\n\nMy paragraph.\n## Action Items" in merged


def test_placeholder_gives_way_to_a_kept_task() -> None:
    theirs = edit(BASE, TASK_MEET, TASK_MEET.replace("[?]", "[x]"))
    start, rest = BASE.split("## Action Items\n", 1)
    ours = start + "## Action Items\n_None._\n\n## Decisions" + rest.split("\n\n## Decisions", 1)[1]
    merged = merge_note(BASE, theirs, ours)
    section = merged.split("## Action Items\n", 1)[1].split("\n\n## Decisions", 1)[0]
    assert section == TASK_MEET.replace("[?]", "[x]")


def test_frontmatter_keys_added_changed_deleted() -> None:
    base = {"type": "people", "title": "Old", "tags": ["a", "generated"], "source": "transcript", "x": 1}
    theirs = {"type": "people", "title": "Mine", "tags": ["a", "generated", "mine"], "status": "done", "x": 1}
    ours = {"type": "people", "title": "New", "date": "2025-01-01", "tags": ["b", "generated"], "source": "t", "x": 2}
    merged = merge_mapping(base, theirs, ours)
    assert merged == {
        "type": "people",
        "title": "Mine",  # they changed it
        "date": "2025-01-01",  # new from the run
        "tags": ["b", "generated", "mine"],  # their addition on the new list
        "status": "done",  # they added it
        "x": 2,  # untouched: the run's value
    }  # "source": they deleted it
    assert list(merged) == ["type", "title", "date", "tags", "status", "x"]


def test_frontmatter_key_added_by_them_survives_a_full_merge() -> None:
    theirs = edit(BASE, "source: transcript\n", "source: transcript\nreviewed: true\n")
    ours = edit(BASE, "title: Jason offer decision discussion", "title: Jason weighs offers")
    merged = merge_note(BASE, theirs, ours)
    assert "title: Jason weighs offers\n" in merged and "source: transcript\nreviewed: true\n" in merged


def test_list_and_order_helpers() -> None:
    assert merge_list(["a", "b"], ["a", "c"], ["a", "b", "d"]) == ["a", "d", "c"]
    assert ordered_union(["a", "c", "z"], ["a", "b", "c", "d"]) == ["a", "b", "c", "d", "z"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 60), st.sampled_from(["My note.", "- my bullet", "", "### Mine"])), max_size=4)
)
def test_their_added_lines_all_survive_a_run_that_changed_nothing(additions: list[tuple[int, str]]) -> None:
    lines = BASE.split("\n")
    for at, text in sorted(additions, reverse=True):
        lines.insert(16 + at % (len(lines) - 16), text)  # below the frontmatter
    theirs = "\n".join(lines)
    assert merge_note(BASE, theirs, BASE) == theirs
    ours = edit(BASE, "Jason discussed", "Jason weighed")
    merged = merge_note(BASE, theirs, ours)
    assert merged == theirs.replace("Jason discussed", "Jason weighed")


def test_their_rewritten_summary_wins_over_a_new_one_and_is_reported() -> None:
    mine = "My own summary: Jason picks between VAST and Crusoe this week."
    new = "Completely new wording from another model run."
    theirs = edit(BASE, BASE.split("## Summary\n\n")[1].split("\n")[0], mine)
    ours = edit(BASE, BASE.split("## Summary\n\n")[1].split("\n")[0], new)
    kept: list[KeptEdit] = []
    merged = merge_note(BASE, theirs, ours, kept)
    assert "## Summary\n\n" + mine + "\n## Action Items" in merged and new not in merged
    assert kept == [KeptEdit("Summary", mine, new)]
    assert describe_kept(kept, "n.md") == f"n.md: kept your edit in ## Summary; the new run wrote:\n    {new}\n"


def test_a_list_item_is_never_paired_by_position() -> None:
    theirs = edit(BASE, "- Crusoe offer has a deadline around Wednesday; VAST did not set a deadline.", "- Mine.")
    ours = edit(BASE, "- Crusoe offer has a deadline around Wednesday; VAST did not set a deadline.", "- New fact.")
    merged = merge_note(BASE, theirs, ours)
    assert "- Mine." in merged and "- New fact." in merged
