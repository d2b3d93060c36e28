"""Scores of an evaluation: per-question metrics and their aggregate (metrics.json).

Metric definitions (documented in eval/README.md):

- evidence recall@k: share of a question's gold quotes that lie inside a retrieved
  passage of their document within the top k; MRR: 1 / rank of the first such passage;
- exact match and token F1 with SQuAD normalisation, max over the gold answers,
  on the short answer when there is one, else on the answer text;
- answer-in-citation: whether a gold answer lies inside the cited text;
- abstention: precision, recall and F1 with "unanswerable" as the positive class;
  accuracy on the questions the system answered;
- citations: validity (cited text equals the document text at its span), support
  rate by the citation checker, ALCE citation recall and precision.
"""

from __future__ import annotations

import collections
import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.text import normalize_answer

if TYPE_CHECKING:
    from rag.records import Answer

CORRECT_F1 = 0.5  # a non-abstained answer counts as correct at this token F1 or with the gold answer cited


# ---------------------------------------------------------------------------
# Answer metrics (SQuAD normalisation)


def exact_match(prediction: str | None, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer."""
    if not prediction or not golds:
        return 0.0
    return float(any(normalize_answer(prediction) == normalize_answer(g) for g in golds))


def token_f1(prediction: str | None, golds: Sequence[str]) -> float:
    """Best token-overlap F1 between the prediction and any gold answer."""
    if not prediction or not golds:
        return 0.0
    predicted = normalize_answer(prediction).split()
    best = 0.0
    for gold in golds:
        expected = normalize_answer(gold).split()
        common = collections.Counter(predicted) & collections.Counter(expected)
        overlap = sum(common.values())
        if overlap:
            precision, recall = overlap / len(predicted), overlap / len(expected)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def answer_in_text(golds: Sequence[str], text: str) -> float:
    """1.0 when a normalised gold answer occurs in the normalised text (word-aligned)."""
    haystack = f" {normalize_answer(text)} "
    return float(any(f" {normalize_answer(g)} " in haystack for g in golds if normalize_answer(g)))


def is_correct(answer: Answer, golds: Sequence[str]) -> bool:
    """Whether an answer counts as correct (``rag eval``'s ``correct``; ``eval/calibrate.py`` uses it too).

    Not abstained, and token F1 ≥ CORRECT_F1 on the short answer (else the answer text), or, when there
    is no short answer, a gold answer inside the cited text.
    """
    if answer.abstained or not golds:
        return False
    if token_f1(answer.short_answer or answer.text, golds) >= CORRECT_F1:
        return True
    cited = " ".join(c.text for c in answer.citations)
    return not answer.short_answer and answer_in_text(golds, cited) == 1.0


# ---------------------------------------------------------------------------
# Retrieval metrics


def evidence_ranks(
    evidence_spans: Sequence[tuple[str, int, int] | None], passages: Sequence[dict[str, Any]]
) -> list[int | None]:
    """For each gold span (doc_id, start, end), the rank of the first passage that contains it."""
    ranks: list[int | None] = []
    for span in evidence_spans:
        rank = None
        if span is not None:
            doc_id, start, end = span
            for p in passages:
                if p["doc_id"] == doc_id and p["start"] <= start and end <= p["end"]:
                    rank = p["rank"]
                    break
        ranks.append(rank)
    return ranks


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    """Share of gold evidence found within the top k."""
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 0.0


def reciprocal_rank(ranks: Sequence[int | None]) -> float:
    """1 / rank of the first passage holding any gold evidence (0 when none does)."""
    found = [r for r in ranks if r is not None]
    return 1.0 / min(found) if found else 0.0


# ---------------------------------------------------------------------------
# Abstention and aggregate metrics


def abstention_scores(abstained: Sequence[bool], answerable: Sequence[bool]) -> dict[str, float]:
    """Precision, recall and F1 of abstaining, with unanswerable questions as the positive class."""
    true_positive = sum(1 for a, ok in zip(abstained, answerable) if a and not ok)
    predicted = sum(abstained)
    actual = sum(1 for ok in answerable if not ok)
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def bootstrap_interval(
    values: Sequence[float], statistic: Callable[[np.ndarray], float] = np.mean, rounds: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of a statistic over per-question values (``scipy.stats.bootstrap``)."""
    from scipy.stats import bootstrap

    data = np.asarray(values, dtype=float)
    if len(data) == 0:
        return (float("nan"), float("nan"))
    if len(data) == 1 or np.all(data == data[0]):  # every resample is the same: no spread to estimate
        value = float(statistic(data))
        return value, value
    result = bootstrap(
        (data,),
        statistic,
        n_resamples=rounds,
        confidence_level=0.95,
        method="percentile",
        random_state=np.random.default_rng(seed),
        vectorized=False,
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def status_of(scores: dict[str, Any], answerable: bool, abstained: bool) -> str:
    """One word per question for reports and run comparison ("failed", for a question whose answer failed, is
    set by ``rag.evaluate.question``)."""
    if not answerable:
        return "correct" if abstained else "answered_unanswerable"
    if abstained:
        return "missed"
    return "correct" if scores.get("correct") else "wrong"


@dataclass
class Aggregate:
    """Collects per-question scores into the metrics of metrics.json."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, scores: dict[str, Any]) -> None:
        self.rows.append(scores)

    def _values(self, key: str, where: Callable[[dict[str, Any]], bool] = lambda r: True) -> list[float]:
        return [float(r[key]) for r in self.rows if where(r) and r.get(key) is not None]

    def metrics(self) -> dict[str, Any]:
        """The aggregate; failed questions count in accuracy and answer scores (as wrong) and in retrieval, not
        in the abstention, citation and latency figures, which describe the answers given."""
        answerable = lambda r: r["answerable"]  # noqa: E731
        with_evidence = lambda r: r["answerable"] and r.get("recall@1") is not None  # noqa: E731
        answered = lambda r: not r["abstained"] and not r.get("failed")  # noqa: E731
        given = [r for r in self.rows if not r.get("failed")]
        mean = lambda xs: float(np.mean(xs)) if xs else float("nan")  # noqa: E731
        retrieval = {f"recall@{k}": mean(self._values(f"recall@{k}", with_evidence)) for k in (1, 3, 5, 10)}
        retrieval["mrr"] = mean(self._values("rr", with_evidence))
        answers = {
            "exact_match": mean(self._values("exact_match", answerable)),
            "token_f1": mean(self._values("token_f1", answerable)),
            "answer_in_citation": mean(self._values("answer_in_citation", answerable)),
        }
        abstention = abstention_scores([r["abstained"] for r in given], [r["answerable"] for r in given])
        answered_rows = [r for r in self.rows if answered(r)]
        abstention["answered_accuracy"] = (
            mean([float(r["answerable"] and bool(r.get("correct"))) for r in answered_rows])
            if answered_rows
            else float("nan")
        )
        abstention["abstained"] = sum(1 for r in given if r["abstained"])
        citations = {
            "validity": mean(self._values("citation_validity", answered)),
            "support_rate": mean(self._values("support_rate", answered)),
            "alce_recall": mean(self._values("alce_recall", answered)),
            "alce_precision": mean(self._values("alce_precision", answered)),
        }
        latencies = self._values("latency_ms", lambda r: not r.get("failed"))
        latency = {"p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95), "mean_ms": mean(latencies)}
        correct = [float(r["status"] == "correct") for r in self.rows]
        intervals = {
            "accuracy": bootstrap_interval(correct),
            "recall@5": bootstrap_interval(self._values("recall@5", with_evidence)),
            "mrr": bootstrap_interval(self._values("rr", with_evidence)),
            "token_f1": bootstrap_interval(self._values("token_f1", answerable)),
            "exact_match": bootstrap_interval(self._values("exact_match", answerable)),
            "support_rate": bootstrap_interval(self._values("support_rate", answered)),
        }
        return {
            "questions": len(self.rows),
            "timed_out": sum(1 for r in self.rows if r.get("timed_out")),
            "failed": len(self.rows) - len(given),
            "answerable": sum(1 for r in self.rows if r["answerable"]),
            "accuracy": mean(correct),
            "retrieval": retrieval,
            "answers": answers,
            "abstention": abstention,
            "citations": citations,
            "latency": latency,
            "intervals_95": {k: [round(v[0], 4), round(v[1], 4)] for k, v in intervals.items()},
        }


def clean_floats(value: Any) -> Any:
    """Rounds floats and turns NaN into None, recursively, for JSON output."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    if isinstance(value, dict):
        return {k: clean_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_floats(v) for v in value]
    return value


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """{"retrieval": {"mrr": x}} -> {"retrieval.mrr": x}, numbers only."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def mean_or_none(values: Iterable[float]) -> float | None:
    values = list(values)
    return float(np.mean(values)) if values else None
