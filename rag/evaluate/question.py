"""One gold question through the whole system: its line of results.jsonl and its scores.

A question that runs out of its time budget counts as an abstention (``timed_out``). A question whose
answer fails (the LLM server down, overloaded or too slow; any ``RagError``) is recorded with its
``error`` and the status "failed", and the run goes on: one bad request must not discard every finished
question. Its retrieval is scored as usual; its answer counts as wrong, and it is left out of the
abstention, citation and latency figures, which describe answers given.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rag.answer.pipeline import ask
from rag.budget import TimeBudgetExceeded
from rag.budget import time_budget as budget
from rag.errors import RagError
from rag.evaluate.gold import GoldQuestion, QuestionResult
from rag.evaluate.metrics import (
    answer_in_text,
    clean_floats,
    evidence_ranks,
    exact_match,
    is_correct,
    recall_at,
    reciprocal_rank,
    status_of,
    token_f1,
)
from rag.records import Abstention, Answer
from rag.redaction import redact
from rag.text import locate_quote
from rag.validation import clean_question

if TYPE_CHECKING:
    from rag.answer.pipeline import Answerer
    from rag.check.checker import CitationChecker
    from rag.search.retrieval import Retriever

RETRIEVAL_DEPTH = 10  # passages retrieved for recall@10, whatever k the answerer gets


def _answer(
    gold: GoldQuestion, retriever: Retriever, answerer: Answerer, k: int, time_budget: float | None
) -> tuple[Answer, bool, RagError | None]:
    """(answer, timed out, the error that stopped it)."""
    try:
        with budget(time_budget, f"question {gold.id}"):
            return ask(gold.question, retriever, answerer, k=k), False, None
    except TimeBudgetExceeded as exc:
        abstention = Abstention("time budget", message=str(exc))
        return Answer(gold.question, (), (), answerer=answerer.name, abstention=abstention), True, None
    except RagError as exc:
        return Answer(gold.question, (), (), answerer=answerer.name), False, exc


def _retrieval_scores(gold: GoldQuestion, retriever: Retriever, k: int) -> dict[str, Any]:
    """Where the gold evidence quotes rank among the retrieved passages."""
    index = retriever.index
    passages = [p.to_dict() for p in retriever.search(clean_question(gold.question), k=max(k, RETRIEVAL_DEPTH))]
    spans = []
    for evidence in gold.evidence:
        doc = index.documents.get(evidence.doc_id)
        located = locate_quote(doc.text, evidence.quote) if doc else None
        spans.append((evidence.doc_id, *located) if located else None)
    if not (gold.answerable and spans):
        return {}
    ranks = evidence_ranks(spans, passages)
    scores: dict[str, Any] = {f"recall@{depth}": recall_at(ranks, depth) for depth in (1, 3, 5, 10)}
    scores.update(
        rr=reciprocal_rank(ranks), evidence_ranks=ranks, evidence_not_found=sum(1 for s in spans if s is None)
    )
    return scores


def _citation_scores(answer: Answer, retriever: Retriever, checker: CitationChecker) -> dict[str, Any]:
    """Validity of the citations and the checker's verdicts on the answer sentences."""
    index = retriever.index
    citations = answer.citations
    if not citations:
        return {"citation_validity": 0.0, "support_rate": 0.0}
    valid = [
        index.documents.get(c.doc_id) is not None and index.documents[c.doc_id].text[c.start : c.end] == c.text
        for c in citations
    ]
    report = checker.check_record(answer.to_dict(), propose=False)
    verdicts = [v.verdict for v in report.verdicts]
    return {
        "citation_validity": sum(valid) / len(valid),
        "support_rate": sum(1 for v in verdicts if v == "supported") / len(verdicts) if verdicts else 0.0,
        "alce_recall": report.citation_recall,
        "alce_precision": report.citation_precision,
        "verdicts": verdicts,
    }


def evaluate_question(
    gold: GoldQuestion,
    retriever: Retriever,
    answerer: Answerer,
    checker: CitationChecker,
    k: int,
    time_budget: float | None = None,
) -> QuestionResult:
    """Answers one gold question and scores retrieval, answer, abstention and citations (see the module).

    A question with an ``as_of`` date is searched among the articles published by then.
    """
    if gold.as_of is not None:
        retriever = retriever.dated(gold.as_of)
    started = time.perf_counter()
    answer, timed_out, error = _answer(gold, retriever, answerer, k, time_budget)
    latency_ms = (time.perf_counter() - started) * 1000

    prediction = answer.short_answer or answer.text
    answered = not answer.abstained and error is None
    scores: dict[str, Any] = {
        "answerable": gold.answerable,
        "abstained": answer.abstained,
        "confidence": answer.score,
        "threshold": answer.threshold,
        "timed_out": timed_out,
        "failed": error is not None,
        **_retrieval_scores(gold, retriever, k),
    }
    if gold.answerable:
        cited_text = " ".join(c.text for c in answer.citations)
        scores["exact_match"] = exact_match(prediction, gold.answers) if answered else 0.0
        scores["token_f1"] = token_f1(prediction, gold.answers) if answered else 0.0
        scores["answer_in_citation"] = answer_in_text(gold.answers, cited_text) if answered else 0.0
        scores["correct"] = answered and is_correct(answer, gold.answers)
    if answered:
        scores.update(_citation_scores(answer, retriever, checker))
    scores["status"] = "failed" if error is not None else status_of(scores, gold.answerable, answer.abstained)
    row = {
        "id": gold.id,
        "question": gold.question,
        "answer": "" if error is not None else answer.text if not answer.abstained else answer.message,
        "short_answer": answer.short_answer,
        "abstained": answer.abstained,
        # Why (developer wording: "the model said the passages do not answer the question", …).
        "abstention_reason": answer.abstention.reason if answer.abstention is not None else None,
        "citations": [{"doc_id": c.doc_id, "start": c.start, "end": c.end, "text": c.text} for c in answer.citations],
        "passages": [
            {"doc_id": p.doc_id, "start": p.start, "end": p.end, "score": p.score, "rank": p.rank, "text": p.text}
            for p in answer.passages
        ],
        "latency_ms": round(latency_ms, 2),
        "error": redact(str(error)) if error is not None else None,
        "scores": clean_floats(scores),
    }
    rejected = answer.abstention.rejected if answer.abstention is not None else None
    extra = {"verdicts": scores.get("verdicts", []), "rejected": rejected.answer if rejected else None}
    return QuestionResult(row, gold, extra, error)
