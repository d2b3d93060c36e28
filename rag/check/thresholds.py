"""From a support score to a verdict: the judge's weights and the cut-offs between verdicts.

Both were tuned on WiCE dev and are stored in ``rag/data/citation_thresholds.json`` (written by
``bench/bench_wice_check.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rag.settings import DATA_DIR

THRESHOLDS_PATH = DATA_DIR / "citation_thresholds.json"
VERDICTS = ("supported", "partially_supported", "unsupported", "uncited")


@dataclass(frozen=True)
class Thresholds:
    """Weights of the support score and the cut-offs between verdicts (tuned on WiCE dev)."""

    weights: dict[str, float]
    bias: float
    supported: float
    partial: float
    hard_cap: float  # scale (and ceiling) of the score when a number, date or name is missing or a negation disagrees

    @classmethod
    def load(cls, path: Path | None = None) -> Thresholds:
        data = json.loads((path or THRESHOLDS_PATH).read_text())
        return cls(
            {k: float(v) for k, v in data["weights"].items()},
            float(data["bias"]),
            float(data["supported"]),
            float(data["partial"]),
            float(data["hard_cap"]),
        )

    def verdict(self, score: float) -> str:
        if score >= self.supported:
            return "supported"
        return "partially_supported" if score >= self.partial else "unsupported"
