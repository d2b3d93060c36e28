"""Gold question sets: reading and validating them, and the result of running one question.

A gold set is JSONL, one question a line (README: Gold questions): ``{"id", "question", "answers",
"evidence": [{"doc_id", "quote"}], "answerable", "split"?, "as_of"?, "week"?}``. ``as_of`` is the date
the question is asked on; ``week`` (YYYYMMDD) the week it was asked, "this week" being the days before
it. Either makes ``rag eval`` search only the articles published by then (``dated``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.validation import parse_date

logger = logging.getLogger(__name__)

SPLITS = ("dev", "test")
# A row's week (YYYYMMDD) is when its question was asked; the articles that answer it are published before
# it, though search engines date some a few days later (dev-2023: 99% within 2.8 days). Chosen on dev-2023
# figures (eval/README.md: As-of dates).
WEEK_SLACK_DAYS = 5


@dataclass(frozen=True)
class GoldEvidence:
    """A verbatim quote of a document that answers a gold question."""

    doc_id: str
    quote: str


@dataclass(frozen=True)
class GoldQuestion:
    """One line of a gold file (see README: Gold questions)."""

    id: str
    question: str
    answers: tuple[str, ...]
    evidence: tuple[GoldEvidence, ...]
    answerable: bool
    split: str | None = None
    as_of: date | None = None  # the row's as_of; after ``dated``, the date the question is searched as of
    week: date | None = None


def _gold_error(path: Path, number: int, problem: str) -> RagError:
    return RagError(
        f"{path} line {number}: {problem}; each line must be "
        '{"id", "question", "answers": [...], "evidence": [{"doc_id", "quote"}], "answerable"}'
    )


def _parse_gold_line(path: Path, number: int, line: str) -> GoldQuestion:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _gold_error(path, number, f"not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise _gold_error(path, number, "not a JSON object")
    for key, kind in (("id", str), ("question", str), ("answers", list), ("evidence", list), ("answerable", bool)):
        if key not in record:
            raise _gold_error(path, number, f"missing '{key}'")
        if not isinstance(record[key], kind):
            raise _gold_error(path, number, f"'{key}' must be a {kind.__name__}")
    if not record["question"].strip():
        raise _gold_error(path, number, "empty question")
    if not all(isinstance(a, str) and a.strip() for a in record["answers"]):
        raise _gold_error(path, number, "'answers' must hold non-empty strings")
    evidence = []
    for item in record["evidence"]:
        if not (isinstance(item, dict) and isinstance(item.get("doc_id"), str) and isinstance(item.get("quote"), str)):
            raise _gold_error(path, number, "each evidence item needs a 'doc_id' and a 'quote' string")
        evidence.append(GoldEvidence(item["doc_id"], item["quote"]))
    if record["answerable"] and not record["answers"]:
        raise _gold_error(path, number, "an answerable question needs at least one answer")
    if not record["answerable"] and (record["answers"] or evidence):
        raise _gold_error(path, number, "an unanswerable question has empty 'answers' and 'evidence'")
    split = record.get("split")
    if split is not None and split not in SPLITS:
        raise _gold_error(path, number, f"'split' must be one of {', '.join(SPLITS)}")
    dates: dict[str, date | None] = {}
    for key in ("as_of", "week"):
        value = record.get(key)
        try:
            dates[key] = parse_date(value, f"'{key}'") if value is not None else None
        except RagError as exc:
            raise RagError(f"{path} line {number}: {exc}") from None
    return GoldQuestion(
        record["id"],
        record["question"],
        tuple(record["answers"]),
        tuple(evidence),
        record["answerable"],
        split,
        as_of=dates["as_of"],
        week=dates["week"],
    )


def dated(questions: list[GoldQuestion], as_of: date | None, use_gold: bool, week_slack: int) -> list[GoldQuestion]:
    """The questions with the date each is searched as of, in ``as_of``.

    Args:
        as_of: one date for every question (``rag eval --as-of``), which overrides the rows' own.
        use_gold: whether a row's ``as_of``, else its ``week`` plus ``week_slack`` days, is used
            (``rag eval --no-as-of`` turns it off); a row with neither is searched undated.
    """
    result = []
    for q in questions:
        when = as_of
        if when is None and use_gold:
            when = q.as_of or (q.week + timedelta(days=week_slack) if q.week else None)
        result.append(replace(q, as_of=when))
    return result


def load_gold(path: str | Path, split: str | None = None) -> list[GoldQuestion]:
    """Reads and validates a gold file; raises RagError naming the first bad line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RagError(f"cannot read the gold file {path}: {exc}") from None
    questions: list[GoldQuestion] = []
    seen: dict[str, GoldQuestion] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        question = _parse_gold_line(path, number, line)
        if question.id in seen:
            if seen[question.id] != question:
                raise _gold_error(path, number, f"duplicate id '{question.id}'")
            # The very same question twice (dev-2023 has one): asked once, not counted twice.
            logger.warning("%s line %d repeats question '%s' exactly: skipped", path, number, question.id)
            continue
        seen[question.id] = question
        questions.append(question)
    if not questions:
        raise RagError(f"the gold file {path} holds no questions")
    if split and split != "all":
        questions = [q for q in questions if q.split == split]
        if not questions:
            raise RagError(f"the gold file {path} has no questions with split '{split}'")
    return questions


@dataclass
class QuestionResult:
    """One question's line of results.jsonl, plus the gold it was scored against (for the report) and the
    error that made it fail, if one did."""

    row: dict[str, Any]
    gold: GoldQuestion
    extra: dict[str, Any]
    error: RagError | None = None
