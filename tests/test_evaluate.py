"""Evaluation: reference formats, case discovery, matching, metrics and the report."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from summarizer.errors import ConfigError, ModelError, SummarizerError
from summarizer.evaluate import (
    EvalReport,
    evaluate,
    find_cases,
    format_table,
    lead_words,
    load_reference,
    match_items,
    noise,
    parse_reference,
)
from summarizer.models import (
    ActionItem,
    Decision,
    ExtractionResult,
    MeetingExtraction,
    Transcript,
    Usage,
    Utterance,
)
from summarizer.offline import offline_result

DATA = Path(__file__).parent / "data" / "eval"


# --------------------------------------------------------------------------- references


def test_qmsum_and_ami_reference() -> None:
    ref = parse_reference(
        {
            "qmsum": {
                "general_query_list": [{"query": "Summarize the whole meeting.", "answer": "They met."}],
                "specific_query_list": [{"query": "Summarize the budget.", "answer": "No."}],
            },
            "ami_abstractive": {
                "abstract": ["An abstract."],
                "actions": ["The PM will write minutes.", "NA."],
                "decisions": ["The remote costs 25 Euro."],
            },
        }
    )
    assert (ref.summary, ref.summary_source) == ("They met.", "qmsum_general")
    assert ref.action_items == ["The PM will write minutes."]  # "NA." is not an item
    assert ref.decisions == ["The remote costs 25 Euro."]


def test_icsi_reference_has_no_action_section_and_variant_query() -> None:
    ref = parse_reference(
        {
            "qmsum": {"general_query_list": [{"query": "Summarize the meeting", "answer": "Research talk."}]},
            "icsi_abstractive": {"abstract": ["x"], "decisions": ["Use four architectures."]},
        }
    )
    assert ref.summary == "Research talk."
    assert ref.action_items is None  # not evaluated, unlike [] (= none expected)
    assert ref.decisions == ["Use four architectures."]


def test_abstract_is_used_when_qmsum_is_absent() -> None:
    ref = parse_reference({"ami_abstractive": {"abstract": ["One.", "Two."], "actions": []}})
    assert (ref.summary, ref.summary_source) == ("One. Two.", "ami_abstract")
    assert ref.action_items == []


def test_acdbot_reference() -> None:
    ref = load_reference(DATA / "zoom_ethereum_rpcstandards_2026-08-10_032.reference.json")
    assert ref.summary_source == "acdbot_highlights"
    assert ref.summary and "HiveChain" in ref.summary
    assert ref.action_items and len(ref.action_items) == 2
    assert ref.decisions and ref.decisions[0].startswith("Merge execution-apis")


def test_golden_reference() -> None:
    ref = load_reference(DATA / "golden_standup" / "reference.json")
    assert ref.summary_source == "golden"
    assert ref.action_items == [
        "Bob will send the cutover plan to Acme Corp",
        "Carol will update the cutover runbook",
        "Carol will draft the rollback checklist",
    ]


# --------------------------------------------------------------------------- discovery


def test_find_cases_in_test_data() -> None:
    cases = find_cases(DATA)
    assert [c.case_id for c in cases] == [  # top folder first, then golden-case subfolders
        "ami_ES2008a",
        "zoom_ethereum_rpcstandards_2026-08-10_032",
        "golden_standup",
    ]
    golden = next(c for c in cases if c.case_id == "golden_standup")
    assert golden.date == dt.date(2024, 3, 6)
    assert golden.transcript_path.name == "standup.txt"
    zoom = next(c for c in cases if c.case_id.startswith("zoom"))
    assert zoom.date == dt.date(2026, 8, 10)


def test_find_cases_shares_one_reference_and_avoids_prefix_collisions(tmp_path: Path) -> None:
    shutil.copy(DATA / "ami_ES2008a.reference.json", tmp_path / "m1.reference.json")
    for name in (
        "m1.teams-style.vtt",
        "m1.whisper-style.srt",
        "m10.txt",
        "m1.reference.json.bak",
        "notes.md",
    ):
        (tmp_path / name).write_text("A: hello there\n", encoding="utf-8")
    ids = [c.case_id for c in find_cases(tmp_path)]
    assert ids == ["m1.teams-style", "m1.whisper-style"]


def test_find_cases_rejects_a_file() -> None:
    with pytest.raises(SummarizerError, match="not a directory"):
        find_cases(DATA / "ami_ES2008a.txt")


# --------------------------------------------------------------------------- matching


def test_match_items_is_one_to_one_and_greedy() -> None:
    m = match_items(
        ["Send the cutover plan to Acme", "Send the cutover plan to Acme Corp today", "Book a boat"],
        ["Bob will send the cutover plan to Acme Corp", "Carol will update the runbook"],
    )
    assert (m.predicted, m.reference, m.matched) == (3, 2, 1)
    assert m.precision == pytest.approx(1 / 3)
    assert m.recall == pytest.approx(1 / 2)
    assert [(i, j) for i, j, _ in m.pairs] == [(0, 0)]  # the exact subset beats the one with an extra word


def test_match_items_needs_shared_content_words() -> None:
    """token_set_ratio alone would give 100 for 'Merge it' against any 'merge' reference."""
    m = match_items(["Merge it"], ["Review and merge hive PRs today to unblock the chain"])
    assert m.matched == 0


def test_match_items_undefined_parts_are_none() -> None:
    nothing = match_items([], [])
    assert (nothing.precision, nothing.recall, nothing.f1) == (None, None, None)
    spurious = match_items(["Do a thing now"], [])
    assert (spurious.precision, spurious.recall) == (0.0, None)


def test_lead_words() -> None:
    t = Transcript(
        utterances=[Utterance(speaker="A", text="I 'll start ."), Utterance(speaker="B", text="Fine by me.")]
    )
    assert lead_words(t, 4) == "I'll start. Fine by"


# --------------------------------------------------------------------------- evaluate


def _fixed_result(transcript: Transcript) -> ExtractionResult:
    reference = json.loads((DATA / "golden_standup" / "reference.json").read_text(encoding="utf-8"))
    extraction = MeetingExtraction(
        title="Atlas",
        meeting_date=None,
        note_type="internal",
        account=None,
        account_category=None,
        participants=[],
        summary=reference["summary"],
        action_items=[
            ActionItem(
                text="Send the cutover plan to Acme Corp",
                owner="Bob Marsh",
                due=None,
                priority="none",
                evidence="I'll send the cutover plan to Acme Corp by Friday.",
            ),
            ActionItem(
                text="Order pizza",
                owner=None,
                due=None,
                priority="none",
                evidence="Let us all order pizza tonight.",
            ),
        ],
        decisions=[
            Decision(text="Use a blue-green deployment", evidence="Let's go with the blue-green deployment"),
        ],
        key_information=[],
        related=[],
    )
    usage = Usage(calls=2, prompt_tokens=1000, completion_tokens=200, cost=0.01)
    return ExtractionResult(extraction=extraction, engine="fake", model="m", prompt_version="p", usage=usage)


def test_evaluate_scores_a_known_answer() -> None:
    cases = [c for c in find_cases(DATA) if c.case_id == "golden_standup"]
    report = evaluate(cases, _fixed_result)
    (case,) = report.cases
    assert case.error is None
    assert case.rouge is not None and case.rouge.rouge1 == pytest.approx(1.0)
    assert case.lead is not None and case.lead.rouge1 < 0.6
    assert case.action_items is not None
    assert (case.action_items.matched, case.action_items.predicted, case.action_items.reference) == (1, 2, 3)
    assert case.decisions is not None and case.decisions.matched == 1
    assert (case.grounding_checked, case.grounding_supported) == (3, 2)
    assert report.overall.usage.prompt_tokens == 1000 and report.overall.usage.cost == pytest.approx(0.01)
    assert report.overall.grounding_rate == pytest.approx(2 / 3)


def test_failures_are_recorded_not_raised() -> None:
    def broken(transcript: Transcript) -> ExtractionResult:
        raise ModelError("the model returned nonsense")

    cases = [c for c in find_cases(DATA) if c.case_id == "golden_standup"]
    report = evaluate([*cases, *cases], broken)
    assert report.overall.failed == 2
    assert report.overall.rouge is None
    assert "nonsense" in (report.cases[0].error or "")
    assert "ERROR" in format_table(report)


def test_offline_engine_over_test_data_beats_nothing_and_reports() -> None:
    report = evaluate(find_cases(DATA), offline_result)
    assert report.overall.cases == 3 and report.overall.failed == 0
    assert report.overall.rouge is not None and report.overall.rouge.rouge1 > 0.15
    assert report.overall.grounding_rate == 1.0  # offline evidence is always verbatim
    golden = next(c for c in report.cases if c.case_id == "golden_standup")
    assert golden.action_items is not None and golden.action_items.recall == 1.0
    assert golden.decisions is not None and golden.decisions.recall == 1.0
    table = format_table(report)
    assert "golden_standup" in table and "ALL (3/3 ok)" in table
    again = EvalReport.model_validate_json(report.model_dump_json())
    assert again.overall == report.overall


def test_evaluate_accepts_a_directory() -> None:
    report = evaluate(DATA / "golden_standup", offline_result)
    assert [c.case_id for c in report.cases] == ["golden_standup"]


# --------------------------------------------------------------------------- references the corpus has


MINUTES = """Date: 2020-05-12
Attendees: [PERSON1], [PERSON2], [PERSON3]
Purpose of meeting: project status

Summary
- [PERSON1] reported the annotation tool is ready
- The test set was reduced to 200 sentences

Decisions
- Use the smaller test set for the June evaluation

Action items
- [PERSON2] will send the evaluation script to everyone
- [PERSON3] to book the GPU cluster for next week
"""


def test_elitr_minutes_are_a_reference() -> None:
    ref = parse_reference({"minutes_text": MINUTES})
    assert ref.summary_source == "elitr_minutes"
    assert ref.summary and "annotation tool is ready" in ref.summary and "Attendees" not in ref.summary
    assert ref.action_items == [
        "[PERSON2] will send the evaluation script to everyone",
        "[PERSON3] to book the GPU cluster for next week",
    ]
    assert ref.decisions == ["Use the smaller test set for the June evaluation"]


def test_minutes_without_action_heading_score_no_actions() -> None:
    ref = parse_reference({"minutes_text": "- They talked about the budget\n- Nothing else"})
    assert ref.summary == "They talked about the budget Nothing else"
    assert ref.action_items is None and ref.decisions is None  # not scored, rather than "none expected"


def test_ami_problems_are_read() -> None:
    ref = parse_reference({"ami_abstractive": {"abstract": ["A."], "problems": ["Whether to use one remote.", "NA"]}})
    assert ref.problems == ["Whether to use one remote."]


def test_a_minutes_file_beside_a_transcript_is_not_a_transcript(tmp_path: Path) -> None:
    (tmp_path / "m1.reference.json").write_text(json.dumps({"minutes_text": MINUTES}), encoding="utf-8")
    (tmp_path / "m1.txt").write_text("(PERSON1) Hello everyone.\n", encoding="utf-8")
    (tmp_path / "m1.minutes.txt").write_text(MINUTES, encoding="utf-8")
    (tmp_path / "golden").mkdir()
    (tmp_path / "golden" / "reference.json").write_text(json.dumps({"summary": "s"}), encoding="utf-8")
    (tmp_path / "golden" / "call.txt").write_text("A: hi\n", encoding="utf-8")
    (tmp_path / "golden" / "minutes.txt").write_text("Minutes", encoding="utf-8")
    (tmp_path / "golden" / "15-minutes standup.txt").write_text("A: hi\n", encoding="utf-8")
    assert [c.case_id for c in find_cases(tmp_path)] == ["m1", "golden/15-minutes standup", "golden/call"]


def test_evaluate_an_empty_folder_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("A: hi\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no evaluation cases"):
        evaluate(tmp_path, offline_result)


# --------------------------------------------------------------------------- tolerant, not loose


def test_paraphrases_match_through_stems_and_synonyms() -> None:
    m = match_items(
        ["Decided to go with Marius's PR", "Take a look at the two PRs and merge them"],
        ["Adopt Marius's SSZ engine API PR", "Review and merge hive#1587 and hive#1588 today"],
    )
    assert [(i, j) for i, j, _ in m.pairs] == [(0, 0), (1, 1)]


def test_speaker_names_do_not_make_a_match() -> None:
    """Who does a task is not what the task is: a shared role name alone must not pair two items."""
    m = match_items(
        ["E-mail the slides to User Interface"],
        ["The user interface designer will work on technical functions."],
        participants=["User Interface", "Project Manager"],
    )
    assert m.matched == 0


def test_unrelated_items_sharing_one_word_stay_apart() -> None:
    m = match_items(["Send the budget to finance"], ["Check the budget of the marketing campaign"])
    assert m.matched == 0


# --------------------------------------------------------------------------- noise


def _extraction(**fields: object) -> MeetingExtraction:
    base: dict[str, object] = {
        "title": "t",
        "meeting_date": None,
        "note_type": "internal",
        "account": None,
        "account_category": None,
        "participants": [],
        "summary": "Ann and Ben met. The launch moved to June.",
        "action_items": [],
        "decisions": [],
        "key_information": [],
        "related": [],
    }
    return MeetingExtraction.model_validate(base | fields)


def _task(text: str) -> ActionItem:
    return ActionItem(text=text, owner="Ann", due=None, priority="none", evidence=text)


def test_noise_figures_flag_what_a_reader_would_fix() -> None:
    x = _extraction(
        action_items=[
            _task("Send you the brand assets"),  # "you": unresolved
            _task("Add it later"),  # "it" before anything it could refer to; also short
            _task("Type up the minutes and email them to the team"),  # "them" has an antecedent
            _task("Share now the"),
        ],
        decisions=[Decision(text="Should we keep the domain?", evidence="x")],
        key_information=["It is fixed because of the catalogue.", "The launch moved to June."],
    )
    n = noise(x)
    assert n.items == 7
    assert n.flagged["pronoun"] == [
        "Send you the brand assets",
        "Add it later",
        "Should we keep the domain?",
        "It is fixed because of the catalogue.",
    ]
    assert n.flagged["short"] == ["Add it later", "Share now the"]
    assert n.flagged["question"] == ["Should we keep the domain?"]
    assert n.flagged["duplicate"] == ["The launch moved to June."]  # repeats a summary sentence


def test_offline_report_says_grounding_is_not_measured() -> None:
    report = evaluate(find_cases(DATA), offline_result)
    noise_table = format_table(report).split("\n\n")[1]
    assert "n/a" in noise_table and "grounded" in noise_table
