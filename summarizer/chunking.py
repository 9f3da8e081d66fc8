"""Splitting a meeting too long for one request into parts of near-equal size.

Greedy packing (fill a part to the brim, start the next) needs the fewest parts but leaves the last
one with whatever is left: a 3-hour meeting at a 32k window went out as 24,184 + 2,677 tokens. Here
the number of parts is the greedy one, and the boundaries are then moved so that each part holds
about the same share of what remains; a boundary is placed only where the rest still fits in the
parts left. Parts end on utterance boundaries and repeat the last `overlap` utterances of the part
before (context across the cut); a single utterance too long for half a part is cut between words.

Pure: sizes come from the caller's count function, nothing here loads a tokenizer or does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import accumulate

from summarizer.models import Utterance

Bounds = list[tuple[int, int]]  # [start, end) index ranges into the list of pieces


def fit_utterance(utterance: Utterance, count: Callable[[Utterance], int], limit: int) -> list[Utterance]:
    """One utterance, or its words in consecutive slices that each count at most `limit` (where a
    single word is longer than that, it goes alone)."""
    total = count(utterance)
    if total <= limit:
        return [utterance]
    words = utterance.text.split()
    size = max(1, len(words) * limit // total)
    pieces: list[Utterance] = []
    index = 0
    while index < len(words):
        step = size
        while step > 1 and count(_with_text(utterance, words[index : index + step])) > limit:
            step //= 2
        pieces.append(_with_text(utterance, words[index : index + step]))
        index += step
    return pieces


def _with_text(utterance: Utterance, words: Sequence[str]) -> Utterance:
    return Utterance(speaker=utterance.speaker, start=utterance.start, text=" ".join(words))


def _next_start(start: int, end: int, overlap: int) -> int:
    return max(end - overlap, start + 1)


def _fill(prefix: Sequence[int], start: int, capacity: int) -> int:
    """The largest end with sizes[start:end] within capacity; at least start + 1."""
    end = start + 1
    while end < len(prefix) - 1 and prefix[end + 1] - prefix[start] <= capacity:
        end += 1
    return end


def greedy_bounds(sizes: Sequence[int], capacity: int, overlap: int, start: int = 0) -> Bounds:
    """Fill each part to capacity (the fewest parts; the last one takes what is left)."""
    prefix = [0, *accumulate(sizes)]
    bounds: Bounds = []
    n = len(sizes)
    while start < n:
        end = _fill(prefix, start, capacity)
        bounds.append((start, end))
        if end >= n:
            break
        start = _next_start(start, end, overlap)
    return bounds


def _greedy_from_every_start(prefix: Sequence[int], capacity: int, overlap: int) -> tuple[list[int], list[int]]:
    """For each start s: where greedy's part from s ends, and how many parts greedy needs from s.

    One pass each way: the fill end never moves back as s grows (two pointers), and the count from s
    is one more than the count from the next part's start, which lies after s.
    """
    n = len(prefix) - 1
    ends = [0] * n
    end = 1
    for start in range(n):
        end = max(end, start + 1)
        while end < n and prefix[end + 1] - prefix[start] <= capacity:
            end += 1
        ends[start] = end
    counts = [0] * n
    for start in range(n - 1, -1, -1):
        end = ends[start]
        counts[start] = 1 if end >= n else 1 + counts[_next_start(start, end, overlap)]
    return ends, counts


def balanced_bounds(sizes: Sequence[int], capacity: int, overlap: int) -> Bounds:
    """As many parts as greedy packing needs (or fewer), each about the same size, none over capacity
    unless a single piece is; consecutive parts share `overlap` pieces."""
    n = len(sizes)
    if n == 0:
        return []
    prefix = [0, *accumulate(sizes)]
    ends, counts = _greedy_from_every_start(prefix, capacity, overlap)
    parts = counts[0]
    mean = prefix[n] / n
    bounds: Bounds = []
    start = 0
    for index in range(parts):
        left = parts - index
        last = ends[start]
        if left == 1 or last >= n:
            bounds.append((start, last))
            break
        # Each remaining part repeats about `overlap` pieces of the one before it.
        target = (prefix[n] - prefix[start] + (left - 1) * overlap * mean) / left
        # Ends that still let the rest fit in the parts left; the closest to the target wins.
        feasible = [e for e in range(start + 1, last + 1) if counts[_next_start(start, e, overlap)] <= left - 1]
        end = min(feasible, key=lambda e: abs(prefix[e] - prefix[start] - target))
        bounds.append((start, end))
        start = _next_start(start, end, overlap)
    return bounds


def split_utterances(
    utterances: Sequence[Utterance], count: Callable[[Utterance], int], capacity: int, overlap: int
) -> list[list[Utterance]]:
    """Parts of near-equal size, each within `capacity` as measured by `count` (one utterance's
    tokens as it appears in a part, separator included)."""
    pieces = [p for u in utterances for p in fit_utterance(u, count, capacity // 2)]
    sizes = [count(p) for p in pieces]
    return [pieces[start:end] for start, end in balanced_bounds(sizes, capacity, max(overlap, 0))]
