"""Evidence grounding: quotes found verbatim score 1, light paraphrase passes, inventions fail."""

from __future__ import annotations

import pytest

from summarizer.grounding import check_evidence, detokenise, ground_extraction, is_supported, normalise
from summarizer.models import ActionItem, Decision, MeetingExtraction, Transcript, Utterance

TRANSCRIPT = (
    "Project Manager: Okay . Um I 'll type up the minutes and e-mail them to all of you .\n"
    "Marketing: We do n't want five remotes , {vocalsound} one remote for T_V_ is enough .\n"
    "Industrial Designer: The maximum production cost is twelve fifty Euro per unit ."
)


def test_detokenise_undoes_qmsum_tokenisation() -> None:
    assert (
        detokenise("I 'll go , we do n't ca n't wo n't {vocalsound} stop ?")
        == "I'll go, we don't can't won't stop?"
    )


def test_normalise_ignores_case_punctuation_tags_and_hesitations() -> None:
    assert normalise("Um, I’LL  type {disfmarker} up -- the MINUTES!") == "ill type up the minutes"


@pytest.mark.parametrize(
    "quote",
    [
        "I'll type up the minutes and e-mail them to all of you.",  # contraction written normally
        "i 'll TYPE up the minutes",  # QMSum spacing, odd case
        "“We don’t want five remotes”",  # curly quotes
        "Um I'll type up the minutes",  # hesitation kept in the quote
    ],
)
def test_verbatim_quotes_score_one(quote: str) -> None:
    assert check_evidence(quote, TRANSCRIPT) == 1.0


def test_light_paraphrase_is_supported_but_not_exact() -> None:
    score = check_evidence("The maximum production cost is twelve fifty euros per unit", TRANSCRIPT)
    assert 0.85 <= score < 1.0
    assert is_supported("The maximum production cost is twelve fifty euros per unit", TRANSCRIPT)


def test_invented_quote_is_not_supported() -> None:
    quote = "Marketing will send the revised budget to Acme by Friday."
    assert check_evidence(quote, TRANSCRIPT) < 0.85
    assert not is_supported(quote, TRANSCRIPT)


def test_threshold_is_respected() -> None:
    quote = "The maximum production cost is twelve fifty euros per unit"
    assert not is_supported(quote, TRANSCRIPT, threshold=1.0)


def test_empty_quote_scores_zero() -> None:
    assert check_evidence("  ...  ", TRANSCRIPT) == 0.0


def test_long_transcript_is_fast() -> None:
    """100k+ characters and a dozen quotes: partial_ratio must not go quadratic in Python."""
    lines = [
        f"Speaker {i % 5}: item {i} is about widget number {i * 7} and the blue team ." for i in range(2000)
    ]
    text = "\n".join(lines)
    assert len(text) > 100_000
    scores = [check_evidence(f"item {i} is about widget number {i * 7}", text) for i in range(0, 2000, 200)]
    scores.append(check_evidence("the red team shipped the gadget to Paris on Tuesday morning", text))
    assert scores[:-1] == [1.0] * 10
    assert scores[-1] < 0.85


def _extraction(actions: list[ActionItem], decisions: list[Decision]) -> MeetingExtraction:
    return MeetingExtraction(
        title="t",
        meeting_date=None,
        note_type="internal",
        account=None,
        account_category=None,
        participants=[],
        summary="s",
        action_items=actions,
        decisions=decisions,
        key_information=[],
        related=[],
    )


def test_ground_extraction_gives_verdicts_and_counts() -> None:
    transcript = Transcript(
        utterances=[
            Utterance(speaker="Project Manager", text="I 'll type up the minutes ."),
            Utterance(speaker="Marketing", text="So we agreed on one remote for the T_V_ ."),
        ]
    )
    extraction = _extraction(
        [
            ActionItem(
                text="Type up minutes",
                owner="PM",
                due=None,
                priority="none",
                evidence="I'll type up the minutes",
            ),
            ActionItem(
                text="Buy a boat",
                owner=None,
                due=None,
                priority="none",
                evidence="I will buy a large boat today",
            ),
        ],
        [Decision(text="One remote", evidence="we agreed on one remote for the TV")],
    )
    report = ground_extraction(extraction, transcript)
    assert (report.checked, report.supported, report.unsupported) == (3, 2, 1)
    assert report.rate == pytest.approx(2 / 3)
    assert [(v.kind, v.index, v.supported) for v in report.items] == [
        ("action_item", 0, True),
        ("action_item", 1, False),
        ("decision", 0, True),
    ]
    assert report.items[1].score < report.threshold


def test_ground_extraction_with_nothing_to_check() -> None:
    report = ground_extraction(
        _extraction([], []), Transcript(utterances=[Utterance(speaker="A", text="Hi.")])
    )
    assert (report.checked, report.supported, report.unsupported) == (0, 0, 0)
    assert report.rate is None


@pytest.mark.parametrize(
    "quote",
    [
        "no",  # found inside "know", and a single word proves nothing
        "the minutes",  # real words, but too few to show anything
        "ype up the minute",  # a window cut mid-word is not a quote
        "maximum production co",
    ],
)
def test_quotes_are_whole_words_and_at_least_a_few(quote: str) -> None:
    assert not is_supported(quote, TRANSCRIPT + "\nMarketing: I know the plan .")


def test_a_three_word_quote_on_word_boundaries_is_enough() -> None:
    assert check_evidence("I know the", "Marketing: I know the plan.") == 1.0
    assert check_evidence("know the plan", "Marketing: I know the planet.") < 1.0


def test_ground_extraction_counts_empty_evidence_as_unsupported() -> None:
    extraction = MeetingExtraction(
        title="t",
        meeting_date=None,
        note_type="internal",
        account=None,
        account_category=None,
        participants=[],
        summary="",
        action_items=[ActionItem(text="x", owner=None, due=None, priority="none", evidence="")],
        decisions=[],
        key_information=[],
        related=[],
    )
    report = ground_extraction(extraction, Transcript(utterances=[Utterance(speaker="A", text="hello there")]))
    assert report.checked == 1 and report.unsupported == 1
