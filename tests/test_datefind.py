"""`states_date`: the model's meeting date counts only when the transcript writes that date."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from summarizer.datefind import states_date

MARCH_2 = dt.date(2025, 3, 2)


@pytest.mark.parametrize(
    "text",
    [
        "on 2025-03-02 we met",
        "2025/3/2",
        "20250302",
        "March 2nd, 2025",
        "mar. 2 2025",
        "Sunday, 2 March 2025",
        "the 2nd of March, 2025",
        "March 2, '25",
        "Sunday, 2 March. We plan the 2025 roadmap.",  # no year next to it, but the year is named
    ],
)
def test_usual_written_forms_count(text: str) -> None:
    assert states_date(text, MARCH_2)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2 March",  # no year anywhere: the model's year would be a guess
        "02/03/2025",  # 2 March or 3 February
        "3/2/2025",
        "March 22, 2025",
        "March 2, 2026",
        "12025-03-02",
        "2025-03-021",
        "we may 2x the budget in 2025",
    ],
)
def test_other_dates_and_ambiguous_forms_do_not(text: str) -> None:
    assert not states_date(text, MARCH_2)


def test_numeric_forms_count_when_they_cannot_be_swapped() -> None:
    assert states_date("Notes 15/03/2025", dt.date(2025, 3, 15))
    assert states_date("Notes 3/15/25", dt.date(2025, 3, 15))
    assert states_date("Notes 05.05.2025", dt.date(2025, 5, 5))


@given(st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2090, 12, 31)))
def test_iso_and_long_forms_always_found(date: dt.date) -> None:
    assert states_date(f"Minutes of {date.isoformat()}.", date)
    assert states_date(f"It is {date.strftime('%B')} {date.day}, {date.year} today", date)
    assert not states_date(f"Minutes of {(date + dt.timedelta(days=1)).isoformat()}.", date)
