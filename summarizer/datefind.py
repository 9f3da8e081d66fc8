"""Is a given date stated in a text? Used to keep a model from inventing the meeting date.

Rather than parse every date-like string (locale guessing, "next Friday"), this asks the
narrower question the rules need: does the transcript write THIS date, in any usual English
form? Accepted forms, case-insensitive, with any separators the forms allow:

* year first: `2025-03-02`, `2025/3/2`, `2025.03.02`, `20250302`;
* month names: `March 2nd, 2025`, `Mar. 2 2025`, `2 March 2025`, `the 2nd of March, 2025`,
  `Sunday, 2 March`; a form without a year counts only when the text names that year somewhere;
* numeric day and month: `15/03/2025`, `3/15/25`. `02/03/2025` reads as 2 March in most of the
  world and as 3 February in the US, so a numeric date whose day and month could swap (both 12 or
  below, and different) never counts: conservative, the note says `unknown` instead.
"""

from __future__ import annotations

import datetime as dt
import re

MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)


def _month_pattern(month: int) -> str:
    name = MONTHS[month - 1]
    forms = {name, name[:3]} | ({"sept"} if month == 9 else set())
    return r"(?:" + "|".join(sorted(forms, key=len, reverse=True)) + r")\.?"


def _day_pattern(day: int) -> str:
    return rf"0?{day}(?:st|nd|rd|th)?" if day < 10 else rf"{day}(?:st|nd|rd|th)?"


def _year_pattern(year: int, short: bool) -> str:
    return rf"(?:{year}|'?{year % 100:02d})" if short else str(year)


def date_patterns(date: dt.date) -> tuple[list[re.Pattern[str]], list[re.Pattern[str]]]:
    """(forms with the year, forms without it) that write `date`."""
    d, m, y = date.day, date.month, date.year
    day, month = _day_pattern(d), _month_pattern(m)
    year, year_short = _year_pattern(y, False), _year_pattern(y, True)
    sep = r"[-/.]"
    md = rf"0?{m}" if m < 10 else str(m)
    dd = rf"0?{d}" if d < 10 else str(d)
    full = [
        rf"{year}{sep}{md}{sep}{dd}",  # ISO and its relatives
        rf"{y}{m:02d}{d:02d}",
        rf"{month},?\s+{day},?\s+{year_short}",  # March 2nd, 2025
        rf"{day}\s+(?:of\s+)?{month},?\s+{year_short}",  # 2 March 2025, 2nd of March, 2025
    ]
    if d > 12 or d == m:  # the numeric forms cannot be read the other way round
        full += [rf"{dd}{sep}{md}{sep}{year_short}", rf"{md}{sep}{dd}{sep}{year_short}"]
    partial = [rf"{month}\s+{day}", rf"{day}\s+(?:of\s+)?{month}"]
    bound = r"(?<![\w/.-]){}(?![\w/-]|\.\d)"
    return (
        [re.compile(bound.format(p), re.IGNORECASE) for p in full],
        [re.compile(bound.format(p), re.IGNORECASE) for p in partial],
    )


def states_date(text: str, date: dt.date) -> bool:
    """True when `text` writes `date` (see the module docstring for the forms)."""
    full, partial = date_patterns(date)
    if any(p.search(text) for p in full):
        return True
    if not re.search(rf"(?<!\d){date.year}(?!\d)", text):
        return False
    return any(p.search(text) for p in partial)
