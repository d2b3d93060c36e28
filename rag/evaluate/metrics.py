"""Batch evaluation against gold questions: reading gold sets, per-question scores, aggregate metrics.

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
import json
import math
import re
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import RagError

SPLITS = ("dev", "test")
CORRECT_F1 = 0.5  # a non-abstained answer counts as correct at this token F1 or with the gold answer cited


# ---------------------------------------------------------------------------
# Gold sets


@dataclass(frozen=True)
class GoldEvidence:
    doc_id: str
    quote: str


@dataclass(frozen=True)
class GoldQuestion:
    id: str
    question: str
    answers: tuple[str, ...]
    evidence: tuple[GoldEvidence, ...]
    answerable: bool
    split: str | None = None


def _gold_error(path: Path, number: int, problem: str) -> RagError:
    return RagError(f"{path} line {number}: {problem}; each line must be "
                    '{"id", "question", "answers": [...], "evidence": [{"doc_id", "quote"}], "answerable"}')


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
    return GoldQuestion(record["id"], record["question"], tuple(record["answers"]), tuple(evidence), record["answerable"], split)


def load_gold(path: str | Path, split: str | None = None) -> list[GoldQuestion]:
    """Reads and validates a gold file; raises RagError naming the first bad line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RagError(f"cannot read the gold file {path}: {exc}") from None
    questions, seen = [], set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        question = _parse_gold_line(path, number, line)
        if question.id in seen:
            raise _gold_error(path, number, f"duplicate id '{question.id}'")
        seen.add(question.id)
        questions.append(question)
    if not questions:
        raise RagError(f"the gold file {path} holds no questions")
    if split and split != "all":
        questions = [q for q in questions if q.split == split]
        if not questions:
            raise RagError(f"the gold file {path} has no questions with split '{split}'")
    return questions


# ---------------------------------------------------------------------------
# Answer metrics (SQuAD normalisation)

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation) | set("“”‘’–—…")


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD v1.1), with % and $ spelled out."""
    text = text.lower().replace("%", " percent").replace("$", " dollars ")
    text = "".join(" " if ch in _PUNCTUATION else ch for ch in text)
    return " ".join(_ARTICLES.sub(" ", text).split())


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


# ---------------------------------------------------------------------------
# Retrieval metrics


def locate_gold_quote(document_text: str, quote: str) -> tuple[int, int] | None:
    """The span of a gold quote in the normalised document text, matched ignoring whitespace."""
    from rag.check.formats import locate_quote

    return locate_quote(document_text, quote)


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
    """95% percentile-bootstrap interval of a statistic over per-question values."""
    data = np.asarray(values, dtype=float)
    if len(data) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    samples = [statistic(data[rng.integers(0, len(data), len(data))]) for _ in range(rounds)]
    return float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5))


def status_of(scores: dict[str, Any], answerable: bool, abstained: bool) -> str:
    """One word per question for reports and run comparison."""
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
        answerable = lambda r: r["answerable"]  # noqa: E731
        with_evidence = lambda r: r["answerable"] and r.get("recall@1") is not None  # noqa: E731
        answered = lambda r: not r["abstained"]  # noqa: E731
        mean = lambda xs: float(np.mean(xs)) if xs else float("nan")  # noqa: E731
        retrieval = {f"recall@{k}": mean(self._values(f"recall@{k}", with_evidence)) for k in (1, 3, 5, 10)}
        retrieval["mrr"] = mean(self._values("rr", with_evidence))
        answers = {
            "exact_match": mean(self._values("exact_match", answerable)),
            "token_f1": mean(self._values("token_f1", answerable)),
            "answer_in_citation": mean(self._values("answer_in_citation", answerable)),
        }
        abstention = abstention_scores([r["abstained"] for r in self.rows], [r["answerable"] for r in self.rows])
        answered_rows = [r for r in self.rows if answered(r)]
        abstention["answered_accuracy"] = (
            mean([float(r["answerable"] and bool(r.get("correct"))) for r in answered_rows]) if answered_rows else float("nan")
        )
        abstention["abstained"] = sum(1 for r in self.rows if r["abstained"])
        citations = {
            "validity": mean(self._values("citation_validity", answered)),
            "support_rate": mean(self._values("support_rate", answered)),
            "alce_recall": mean(self._values("alce_recall", answered)),
            "alce_precision": mean(self._values("alce_precision", answered)),
        }
        latencies = self._values("latency_ms")
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
