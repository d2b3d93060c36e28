"""The extractive answerer's judgement of whether a generated sentence answers (``rag.answer.relevance``
asks it beside the reader's).

The corpus sentence the generated sentence restates (in the passages it cites: the one whose answer span it
repeats, else the one it is most like) is scored against the question as the extractive answerer scores its
candidates (question similarity, content words covered, the answer slot: an entity of the asked type beside
the question's names). The answer slot counts only when the generated sentence itself gives that entity;
question words and names the generated sentence states count as covered too (articles say "the plan" where
the answer restates "the plan on the harbour"). A two-part question is scored part by part, best part kept.

``rules_threshold`` was chosen on dev questions by ``eval/calibrate_relevance.py`` (``rag/data/relevance.json``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from rag.answer.analysis import sentences_in
from rag.answer.extractive import Candidate, ExtractiveAnswerer, confidence
from rag.answer.question import QuestionInfo, analyse_question
from rag.errors import RagError
from rag.records import Citation, Passage
from rag.settings import DATA_DIR
from rag.text import fold_quotes

if TYPE_CHECKING:
    from rag.search.embedding import Embedder
    from rag.search.store import Index

RELEVANCE_FILE = DATA_DIR / "relevance.json"


@lru_cache(maxsize=1)
def rules_threshold(path: Path = RELEVANCE_FILE) -> float:
    """The relevance below which a supported sentence is listed apart instead of shown as the answer."""
    try:
        return float(json.loads(path.read_text())["threshold"])
    except (OSError, ValueError, KeyError) as exc:
        raise RagError(
            f"cannot read the relevance threshold {path} ({exc}): run `python eval/calibrate_relevance.py`"
        ) from None


@dataclass(frozen=True)
class Restated:
    """The corpus sentence a generated sentence restates, scored against (a part of) the question."""

    candidate: Candidate
    score: float  # the extractive confidence, with the answer slot only if the generated sentence fills it
    span: str | None  # the answer span as the generated sentence words it


def _words(text: str) -> str:
    return " ".join(fold_quotes(text).lower().split())


def span_in(sentence: str, span: str) -> str | None:
    """``span`` as it stands in ``sentence`` (case, quotes and spaces aside), or None."""
    words = [re.escape(w) for w in _words(span).split()]
    if not words:
        return None
    match = re.search(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", fold_quotes(sentence), re.I)
    return sentence[match.start() : match.end()] if match else None


def _restated(
    question: str,
    sentence: str,
    evidence: Sequence[Citation],
    passages: list[Passage],
    index: Index,
    embedder: Embedder,
) -> list[Restated]:
    """For the question and each of its parts: the corpus sentence inside the evidence that ``sentence``
    restates, with its score."""
    extractive = ExtractiveAnswerer(embedder)
    asked = analyse_question(question)
    found = []
    for part in (question, *asked.clauses):
        inside = [c for c in extractive.candidates(part, passages, index) if _cited(c, evidence)]
        if not inside:
            continue
        vectors = embedder.encode_cached([sentence, *(c.sentence.text for c in inside)])
        similar = vectors[1:] @ vectors[0]
        spans = [span_in(sentence, c.short.text) if c.short is not None else None for c in inside]
        # The corpus sentence whose answer the generated one repeats, else the one it is most like.
        best = max(range(len(inside)), key=lambda i: (spans[i] is not None, float(similar[i])))
        about, span = inside[best], spans[best]
        q = analyse_question(part)
        if q.expected and span is None:
            slot, coverage = 0.0, about.coverage  # the generated sentence does not give the answer
        else:
            slot, coverage = _with_stated_terms(q, about, sentence)
        similarity = max(about.similarity, float(embedder.encode_query(part) @ vectors[0]))
        found.append(Restated(about, confidence(similarity, coverage, slot), span))
    return found


def _cited(candidate: Candidate, evidence: Sequence[Citation]) -> bool:
    """Whether a corpus sentence lies in a passage the generated sentence cites (or overlaps its evidence):
    the checker may find support across a passage's sentences, its citation span being only the best one."""
    s = candidate.sentence
    return any(
        e.passage_rank == candidate.passage.rank or (e.doc_id == s.doc_id and e.start < s.end and s.start < e.end)
        for e in evidence
    )


def _with_stated_terms(q: QuestionInfo, about: Candidate, sentence: str) -> tuple[float, float]:
    """(answer slot, content coverage) of the corpus sentence, where the question's names and words the
    generated sentence states count as found too."""
    stated = sentences_in("", sentence, 0, len(sentence))
    matched = set(about.matched) | {
        w
        for w in q.content | set(q.slot_names) | set(q.other_names)
        if any(w in s.lemmas or s.has_name(w) for s in stated)
    }
    content = q.content - {q.type_noun} if about.short is not None and q.type_noun else q.content
    coverage = max(about.coverage, len(content & matched) / len(content) if content else 0.0)
    if any(r not in matched for r in q.roles):
        return about.slot, coverage
    named = sum(1 for n in q.slot_names if n in matched) / len(q.slot_names) if q.slot_names else 1.0
    return max(about.slot, named), coverage


def rules_relevance(
    question: str,
    sentence: str,
    evidence: Sequence[Citation],
    passages: list[Passage],
    index: Index,
    embedder: Embedder,
) -> tuple[float, str | None]:
    """How well ``sentence`` (supported by ``evidence``) answers ``question`` by the extractive answerer's
    scoring, in [0, 1], and the answer span as the sentence words it (None when it gives none)."""
    found = _restated(question, sentence, evidence, passages, index, embedder)
    if not found:
        return 0.0, None
    # The best part's score; the span of the best part that answers with one (a two-part question's other
    # part may answer without giving a span).
    with_span = [r for r in found if r.span is not None and r.score >= rules_threshold()]
    best = max(with_span or found, key=lambda r: r.score)
    return max(r.score for r in found), best.span
