"""Checking user input before it reaches the models."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from rag.errors import RagError

MAX_QUESTION_CHARS = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")


def clean_question(question: str | None) -> str:
    """The question with control characters removed and whitespace collapsed.

    Raises RagError for an empty question or one too long to be a question.
    """
    text = unicodedata.normalize("NFC", question or "")
    text = " ".join(_CONTROL.sub(" ", text).split())
    if not text:
        raise RagError('the question is empty: type a question, e.g. "Who sold S-400 missiles to Turkey?"')
    if len(text) > MAX_QUESTION_CHARS:
        raise RagError(
            f"the question is {len(text):,} characters long: ask in at most {MAX_QUESTION_CHARS:,} "
            "(use `rag check` to verify a long text)"
        )
    return text


# YYYY-MM-DD, YYYY/MM/DD (the newsqa articles' form) or YYYYMMDD (the gold questions' week).
_DATE = re.compile(r"(\d{4})([-/]?)(\d{2})\2(\d{2})")
DATE_FORMS = "YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD"


def as_date(value: str) -> date | None:
    """The calendar date ``value`` names, or None when it names none.

    Accepts ``DATE_FORMS``, and an ISO date-time by its date ("2023-01-05T10:00:00Z").
    Example: as_date("2023/01/05") == as_date("20230105") == date(2023, 1, 5)
    """
    text = value.strip()
    if len(text) > 10 and text[10:11] in ("T", " ") and text[4:5] == "-":
        text = text[:10]
    match = _DATE.fullmatch(text)
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[3]), int(match[4]))
    except ValueError:  # 2023-02-30
        return None


def parse_date(value: str, what: str = "the date") -> date:
    """A date the user gave (``--as-of``, a gold row's ``as_of`` or ``week``).

    Raises RagError naming ``what`` and the value when it is not a calendar date.
    """
    parsed = as_date(value) if isinstance(value, str) else None
    if parsed is None:
        raise RagError(f"{what} {value!r} is not a date: write it as {DATE_FORMS}")
    return parsed
