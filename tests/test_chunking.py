"""Splitting a long meeting into parts of near-equal size (summarizer.chunking), as properties."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from summarizer.chunking import balanced_bounds, fit_utterance, greedy_bounds, split_utterances
from summarizer.models import Utterance

sizes_strategy = st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=300)


def check_cover(bounds: list[tuple[int, int]], n: int, overlap: int) -> None:
    """Every piece in some part, in order; each part starts where the previous one's overlap does."""
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    for (start, end), (next_start, _) in itertools.pairwise(bounds):
        assert start < end
        assert next_start == max(end - overlap, start + 1)


@settings(deadline=None)
@given(sizes=sizes_strategy, capacity=st.integers(min_value=1, max_value=5000), overlap=st.integers(0, 4))
def test_parts_cover_everything_in_order_within_capacity(sizes: list[int], capacity: int, overlap: int) -> None:
    bounds = balanced_bounds(sizes, capacity, overlap)
    check_cover(bounds, len(sizes), overlap)
    for start, end in bounds:
        assert sum(sizes[start:end]) <= capacity or end - start == 1, "only a single oversize piece may exceed"
    assert len(bounds) <= len(greedy_bounds(sizes, capacity, overlap))


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=100), min_size=2, max_size=400),
    parts_wanted=st.integers(min_value=2, max_value=12),
    overlap=st.integers(0, 3),
)
def test_parts_are_of_near_equal_size(sizes: list[int], parts_wanted: int, overlap: int) -> None:
    # A capacity that takes several parts and is large next to any one utterance (as in a real
    # meeting: utterances of tens of tokens, parts of thousands).
    capacity = max(sum(sizes) // parts_wanted, 10 * max(sizes))
    bounds = balanced_bounds(sizes, capacity, overlap)
    totals = [sum(sizes[start:end]) for start, end in bounds]
    greedy = [sum(sizes[start:end]) for start, end in greedy_bounds(sizes, capacity, overlap)]
    assert len(totals) <= len(greedy)
    if len(totals) > 1:
        assert max(totals) <= 1.5 * min(totals), totals


def test_the_lopsided_greedy_split_becomes_two_halves() -> None:
    sizes = [40] * 670  # 26,800 tokens against a 24,200-token capacity
    assert [sum(sizes[s:e]) for s, e in greedy_bounds(sizes, 24_200, 3)] == [24_200, 2_720]
    halves = [sum(sizes[s:e]) for s, e in balanced_bounds(sizes, 24_200, 3)]
    assert len(halves) == 2 and abs(halves[0] - halves[1]) <= 2 * 40 + 3 * 40


def line_count(utterance: Utterance) -> int:
    """A stand-in tokenizer: one token per word of the rendered line, plus the newline."""
    return len(f"{utterance.speaker}: {utterance.text}".split()) + 1


words = st.text(alphabet="abcdefghij", min_size=1, max_size=8)
utterances = st.lists(
    st.builds(
        Utterance,
        speaker=st.sampled_from(["Ann", "Bo", "Cy"]),
        start=st.none(),
        text=st.lists(words, min_size=1, max_size=120).map(" ".join),
    ),
    min_size=1,
    max_size=80,
)


@settings(deadline=None)
@given(utterances=utterances, capacity=st.integers(min_value=8, max_value=600), overlap=st.integers(0, 3))
def test_split_utterances_keeps_every_word_in_order(utterances: list[Utterance], capacity: int, overlap: int) -> None:
    parts = split_utterances(utterances, line_count, capacity, overlap)
    for part in parts:
        assert sum(line_count(u) for u in part) <= capacity
    # Undo the overlap: each part after the first repeats pieces of the previous one.
    pieces: list[Utterance] = list(parts[0])
    for before, part in itertools.pairwise(parts):
        shared = min(overlap, len(before) - 1)
        assert part[:shared] == before[len(before) - shared :]
        pieces.extend(part[shared:])
    assert [w for u in pieces for w in u.text.split()] == [w for u in utterances for w in u.text.split()]
    assert [u.speaker for u in pieces if u.text] and all(p.speaker in {"Ann", "Bo", "Cy"} for p in pieces)


def test_an_oversize_monologue_is_cut_between_words() -> None:
    speech = Utterance(speaker="Ann", start=12.0, text=" ".join(f"w{i}" for i in range(1000)))
    pieces = fit_utterance(speech, line_count, 100)
    assert len(pieces) >= 10
    assert all(line_count(p) <= 100 and p.speaker == "Ann" and p.start == 12.0 for p in pieces)
    assert " ".join(p.text for p in pieces) == speech.text
    assert fit_utterance(Utterance(speaker="Bo", text="short"), line_count, 100) == [
        Utterance(speaker="Bo", text="short")
    ]
