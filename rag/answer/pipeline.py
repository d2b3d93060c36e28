"""The ask pipeline, whichever answerer runs: clean the question, retrieve, answer, abstain.

``ask`` returns one Answer; ``stream_ask`` gives the same as events, so an answerer that can stream
(``StreamingAnswerer``) shows each sentence once it is verified. The answer's ``score`` is compared
with the abstention threshold that ``eval/calibrate.py`` stored for the answerer in
``rag/data/abstention.json``; below it the answer abstains and shows the closest passages instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rag.answer.question import analyse_question
from rag.answer.registry import default_answerer
from rag.answer.thresholds import load_threshold
from rag.budget import check_time_budget
from rag.errors import RagError
from rag.records import Abstention, Answer, Passage, RejectedAnswer
from rag.validation import clean_question

if TYPE_CHECKING:
    from rag.search.retrieval import Retriever
    from rag.search.store import Index

BELOW_THRESHOLD = "below the abstention threshold"


class Answerer(Protocol):
    """Anything that turns a question and its retrieved passages into an Answer.

    It must return citations whose spans lie inside the given passages and a ``score`` in [0, 1];
    ``ask`` applies the abstention threshold stored for its ``name``. An answerer abstains itself by
    returning an Answer with an ``abstention`` (its ``reason`` is kept).
    """

    name: str

    def answer(self, question: str, passages: list[Passage], index: Index) -> Answer: ...


@runtime_checkable
class StreamingAnswerer(Protocol):
    """An answerer that can also give its answer as events while it is written (the LLM answerer).

    ``stream`` yields ``{"type": "sentence", ...}`` events and ends with ``{"type": "answer", "answer":
    Answer}``; ``close`` releases its connections.
    """

    name: str

    def answer(self, question: str, passages: list[Passage], index: Index) -> Answer: ...

    def stream(self, question: str, passages: list[Passage], index: Index) -> Iterator[dict[str, Any]]: ...

    def close(self) -> None: ...


def abstain(answer: Answer, threshold: float | None = None, reason: str = BELOW_THRESHOLD) -> Answer:
    """The answer turned into an abstention: no sentences, the closest passages kept, the rejected answer
    recorded (the answerer's own record of it when it abstained itself)."""
    if answer.sentences:
        rejected: RejectedAnswer | None = RejectedAnswer(answer.text, answer.short_answer)
    else:
        rejected = answer.abstention.rejected if answer.abstention is not None else None
    return replace(
        answer,
        sentences=(),
        short_answer=None,
        abstention=Abstention(reason, rejected=rejected),
        threshold=threshold if threshold is not None else answer.threshold,
    )


def apply_abstention(answer: Answer, threshold: float) -> Answer:
    """Abstains when the answer's score is below the threshold; records the threshold either way."""
    if answer.abstention is not None:
        return abstain(answer, threshold, answer.abstention.reason)
    if answer.score < threshold:
        return abstain(answer, threshold)
    return replace(answer, threshold=threshold)


def retrieve(question: str, retriever: Retriever, k: int) -> list[Passage]:
    """The k passages for a question; a question that asks two things gets passages for each part.

    "Which law lets the US penalise buyers of Russian arms, and was Turkey sanctioned under it?" needs
    one article for the law and another for Turkey: the passages of the whole question and of each
    clause are interleaved (overlapping spans dropped) and renumbered 1..k.
    """
    clauses = analyse_question(question).clauses
    if not clauses:
        return retriever.search(question, k=k)
    lists = [retriever.search(text, k=k) for text in (question, *clauses)]
    merged: list[Passage] = []
    for position in range(k):
        for ranked in lists:
            if position >= len(ranked) or len(merged) == k:
                continue
            p = ranked[position]
            if any(m.doc_id == p.doc_id and m.start < p.end and p.start < m.end for m in merged):
                continue
            merged.append(replace(p, rank=len(merged) + 1))
    return merged


def reading_depth(answerer: Answerer, k: int) -> int:
    """Passages to retrieve: k, or more when the answerer was fitted to read more (``min_passages``).

    The learned reader weighs how many passages agree on a candidate, so it reads as many as it was
    fitted on; every passage it reads is shown, since any of them may be cited.
    """
    if k < 1:
        raise RagError(f"k must be at least 1, not {k}: ask for one passage or more")
    return max(k, getattr(answerer, "min_passages", 0))


def _no_passage(question: str, answerer: Answerer, threshold: float) -> Answer:
    empty = Answer(question, (), (), answerer=answerer.name)
    return abstain(empty, threshold, "no passage matches the question")


def ask(
    question: str, retriever: Retriever, answerer: Answerer | None = None, k: int = 5, threshold: float | None = None
) -> Answer:
    """Cleans the question, retrieves k passages, answers, and abstains when the answer is not supported.

    ``answerer`` defaults to the extractive one. Raises RagError for an empty or over-long question.
    """
    question = clean_question(question)
    answerer = answerer or default_answerer(retriever)
    passages = retrieve(question, retriever, reading_depth(answerer, k))
    if threshold is None:
        threshold = load_threshold(answerer.name)
    if not passages:
        return _no_passage(question, answerer, threshold)
    answer = answerer.answer(question, passages, retriever.index)
    check_time_budget()  # an answer finished after the budget ran out is not shown either
    return apply_abstention(answer, threshold)


def stream_ask(
    question: str, retriever: Retriever, answerer: Answerer, k: int = 5, threshold: float | None = None
) -> Iterator[dict[str, Any]]:
    """``ask`` as a stream: first ``{"type": "passages", "passages": [...]}``, then a streaming answerer's
    sentence events, then ``{"type": "answer", "answer": Answer}`` with the abstention rule applied."""
    question = clean_question(question)
    if threshold is None:
        threshold = load_threshold(answerer.name)
    passages = retrieve(question, retriever, reading_depth(answerer, k))
    yield {"type": "passages", "passages": passages}
    if not passages:
        yield {"type": "answer", "answer": _no_passage(question, answerer, threshold)}
        return
    if not isinstance(answerer, StreamingAnswerer):
        answer = answerer.answer(question, passages, retriever.index)
        check_time_budget()
        yield {"type": "answer", "answer": apply_abstention(answer, threshold)}
        return
    for event in answerer.stream(question, passages, retriever.index):
        if event["type"] == "answer":
            event = {"type": "answer", "answer": apply_abstention(event["answer"], threshold)}
        yield event
