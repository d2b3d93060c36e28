"""The records of citation checking: CitedSentence → SentenceVerdict → CheckReport."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rag.records.corpus import Evidence


@dataclass(frozen=True)
class CitedSentence:
    """A sentence to check: its text, the evidence it cites, their labels ([n]) and citation problems."""

    text: str
    cited: tuple[Evidence, ...] = ()
    labels: tuple[int, ...] = ()
    problems: tuple[str, ...] = ()  # e.g. "citation [7] is out of range: there are 5 sources"


@dataclass(frozen=True)
class SentenceVerdict:
    """The verdict on one sentence, the evidence that supports it best and why."""

    sentence: str
    verdict: str  # "supported" | "partially_supported" | "unsupported" | "uncited"
    score: float
    evidence: Evidence | None
    reasons: tuple[str, ...]
    cited: tuple[int, ...]
    proposed: Evidence | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sentence": self.sentence,
            "verdict": self.verdict,
            "score": round(self.score, 4),
            "evidence": self.evidence.to_dict() if self.evidence else None,
            "reasons": list(self.reasons),
            "cited": list(self.cited),
            "proposed": self.proposed.to_dict() if self.proposed else None,
        }


@dataclass(frozen=True)
class CheckReport:
    """Verdicts for every sentence plus ALCE-style citation recall and precision."""

    verdicts: tuple[SentenceVerdict, ...]
    citation_recall: float
    citation_precision: float

    @property
    def ok(self) -> bool:
        """True when every sentence is supported."""
        return bool(self.verdicts) and all(v.verdict == "supported" for v in self.verdicts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "citation_recall": round(self.citation_recall, 4),
            "citation_precision": round(self.citation_precision, 4),
            "sentences": [v.to_dict() for v in self.verdicts],
        }
