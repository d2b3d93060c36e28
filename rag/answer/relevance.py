"""Does a sentence answer the question, and with what span? The two hooks a generative answer is judged by.

The citation checker says whether a generated sentence is *true to the passages*; these say whether it
*answers*: a true sentence about CAATSA is no answer to "Where does Omar Lamrani work?".

* ``stated(question, sentence, evidence, …) -> Stated``: whether it answers, how well, and its answer span;
* ``short_answer(question, sentences, …) -> str | None``: the answer span, as the sentence words it.

Two scorers judge, and a sentence answers when either would answer with it:

* the learned reader (``rag.answer.reader``), reading the same passages: the sentence states a candidate short
  answer that the reader, reading where the sentence cites, gives a calibrated probability at its own
  abstention threshold (the ``reader`` entry of ``rag/data/abstention.json``, chosen on dev-2023 by
  risk–coverage). A yes/no question is answered by a sentence that decides its claim (the support judge of
  ``rag.answer.reader.yes_no``), with "yes" or "no" as short answer; a why/how question has no short answer;
* the extractive answerer's answer-slot scoring (``rag.answer.rules_relevance``), at the threshold chosen for
  it (``rag/data/relevance.json``). The reader misses questions whose wh-word misleads its type ("Where does
  Omar Lamrani work?" asks for an employer, not a place); the rules miss paraphrased answers on news.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING

from rag.answer.reader.answerer import SENTENCE_ANSWERS, Ranking, listed, shared_reader
from rag.answer.reader.features import Occurrence
from rag.answer.rules_relevance import rules_relevance, rules_threshold, span_in
from rag.answer.thresholds import load_threshold
from rag.records import AnswerSentence, Citation, Passage

if TYPE_CHECKING:
    from rag.search.embedding import Embedder
    from rag.search.store import Index


@lru_cache(maxsize=1)
def reader_threshold() -> float:
    """The probability below which the reader itself would abstain: it answers with a candidate from there."""
    return load_threshold("reader")


@dataclass(frozen=True)
class Stated:
    """Whether a sentence answers, the score that says so (the reader's probability, or the rules' score when
    only they say it answers; else the higher of the two), and the short answer as the sentence words it."""

    relevance: float
    span: str | None
    answers: bool = False


_RANKINGS: OrderedDict[tuple, tuple[Index, Ranking]] = OrderedDict()
RANKINGS_KEPT = 8
_RANKINGS_LOCK = threading.Lock()


def _ranking(embedder: Embedder, question: str, passages: list[Passage], index: Index) -> Ranking:
    """The reader's ranking, once per question and passages (every sentence of a reply is judged on it)."""
    key = (id(embedder), question, tuple(passages))
    with _RANKINGS_LOCK:  # the app answers in threads
        kept = _RANKINGS.get(key)
    if kept is not None and kept[0] is index:
        return kept[1]
    ranking = shared_reader(embedder).rank(question, passages, index)
    with _RANKINGS_LOCK:
        _RANKINGS[key] = (index, ranking)
        while len(_RANKINGS) > RANKINGS_KEPT:
            _RANKINGS.popitem(last=False)
    return ranking


def _cited(occurrence: Occurrence, evidence: Sequence[Citation]) -> bool:
    """Whether an occurrence lies in a passage the sentence cites, or inside its evidence span."""
    s = occurrence.sentence
    return any(
        e.passage_rank == s.passage.rank or (e.doc_id == occurrence.doc_id and e.start < s.end and s.start < e.end)
        for e in evidence
    )


def stated(
    question: str,
    sentence: str,
    evidence: Sequence[Citation],
    passages: list[Passage],
    index: Index,
    embedder: Embedder,
) -> Stated:
    """Whether ``sentence`` (supported by ``evidence``, spans inside ``passages``) answers ``question``.

    Example: for "Where does Omar Lamrani work?", "Lamrani is a senior analyst at Stratfor." answers and
    "CAATSA lets the US penalise buyers of Russian arms." does not, though both are true to their passages.
    """
    by_reader = _by_reader(question, sentence, evidence, passages, index, embedder)
    if by_reader.answers:
        return by_reader
    score, span = rules_relevance(question, sentence, evidence, passages, index, embedder)
    if score >= rules_threshold():
        return Stated(score, span, answers=True)
    return Stated(round(max(score, by_reader.relevance), 4), None)


def _by_reader(
    question: str,
    sentence: str,
    evidence: Sequence[Citation],
    passages: list[Passage],
    index: Index,
    embedder: Embedder,
) -> Stated:
    """The reader's probability for the best candidate the sentence states, read in the passages it cites."""
    reader = shared_reader(embedder)
    ranking = _ranking(embedder, question, passages, index)
    if ranking.asked.yes_no:
        decision = reader.decide_yes_no(question, [sentence])
        return Stated(decision.score, decision.answer, answers=True) if decision.answer else Stated(0.0, None)
    groups: dict[str, list[tuple[float, Occurrence]]] = {}
    for score, o in zip(ranking.scores, ranking.occurrences):
        if _cited(o, evidence):
            groups.setdefault(o.norm, []).append((score, o))
    best = Stated(0.0, None)
    for members in groups.values():
        span = span_in(sentence, members[0][1].text)
        if span is None:
            continue
        chosen = max(members, key=lambda pair: pair[0])
        probability = reader.probability(question, ranking, chosen)
        if probability > best.relevance:
            best = Stated(probability, _short(ranking, chosen[1], sentence, span))
    return replace(best, answers=best.relevance >= reader_threshold())


def _short(ranking: Ranking, occurrence: Occurrence, sentence: str, span: str) -> str | None:
    """The short answer the reader would give with this candidate, as the sentence words it: none for a
    why/how question, the items listed with it for a list question ("which countries …") when the sentence
    lists them too."""
    if ranking.asked.kind in SENTENCE_ANSWERS:
        return None
    if ranking.asked.plural:
        return span_in(sentence, listed(occurrence)) or span
    return span


def short_answer(
    question: str, sentences: Sequence[AnswerSentence], passages: list[Passage], index: Index, embedder: Embedder
) -> str | None:
    """The answer span of the sentence that answers best, as that sentence words it; None when the question
    asks for no entity or no sentence answers."""
    found = [stated(question, s.text, s.citations, passages, index, embedder) for s in sentences]
    answering = [f for f in found if f.answers and f.span is not None]
    return max(answering, key=lambda f: f.relevance).span if answering else None
