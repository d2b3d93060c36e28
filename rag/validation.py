"""Checking user input before it reaches the models."""

from __future__ import annotations

import re
import unicodedata

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
