"""The fitted reader: a LightGBM ranker over candidate occurrences and a logistic calibration of its
best candidate, both reproduced by ``eval/train_reader.py`` and checked against their hashes at load.

``rag/data/reader.txt`` is LightGBM's own text format; ``rag/data/reader.json`` holds the column
names, the calibration and the model file's SHA-256 (the abstention threshold, chosen on dev, is in
``rag/data/abstention.json`` with the other answerers').
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import RagError
from rag.ingest.sentences import import_without
from rag.settings import DATA_DIR

MODEL_FILE = DATA_DIR / "reader.txt"
CARD_FILE = DATA_DIR / "reader.json"
# What the calibration reads about the best candidate against the rest (see ``confidence_inputs``).
CONFIDENCE_INPUTS = (
    "top", "margin", "top_sent_sim", "top_sum_sim", "top_w10", "best_p_score", "candidates", "sentence_cosine",
    "coverage", "focus_coverage", "top_overlap",
)  # fmt: skip


def confidence_inputs(
    scores: list[float],
    top: dict[str, float],
    best_passage_score: float,
    sentence_cosine: float,
    every: list[dict[str, float]],
) -> list[float]:
    """The calibration's inputs: the best group's score, its lead over the next, its support, how
    close its sentence is to the question by the transformer (``sentence_cosine``: the one absolute
    sign of topic, since fused passage scores are ranks), and how much of the question any sentence
    read covers (a question whose words the passages lack asks about something they do not report).

    ``scores`` are the groups' scores, best first; ``top`` the best occurrence's features; ``every``
    the features of every occurrence.
    """
    lead = scores[0] - scores[1] if len(scores) > 1 else 1.0
    return [
        scores[0],
        lead,
        top["sent_sim"],
        top["sum_sim"],
        top["max_w10"],
        best_passage_score,
        math.log1p(len(scores)),
        sentence_cosine,
        max(f["sent_overlap"] for f in every),
        max(f["focus_overlap"] for f in every),
        top["sent_overlap"],
    ]


@dataclass(frozen=True)
class ReaderModel:
    """Scores candidate occurrences and turns the best into a probability of being right."""

    booster: Any
    columns: tuple[str, ...]
    calibration: dict[str, Any]
    card: dict[str, Any]

    def score(self, rows: list[dict[str, float]]) -> np.ndarray:
        """Ranking scores, one per feature row (higher is better; not probabilities)."""
        if not rows:
            return np.zeros(0)
        matrix = np.array([[row.get(c, 0.0) for c in self.columns] for row in rows], dtype=np.float64)
        return np.asarray(self.booster.predict(matrix, num_threads=1))

    def probability(self, inputs: list[float]) -> float:
        """Calibrated probability that the best candidate is a right answer."""
        return calibrated_probability(self.calibration, inputs)


def calibrated_probability(calibration: dict[str, Any], inputs: list[float]) -> float:
    """The logistic calibration (standardised inputs) applied to ``confidence_inputs``."""
    standard = (np.array(inputs) - np.array(calibration["mean"])) / np.array(calibration["scale"])
    z = float(np.dot(standard, calibration["coef"]) + calibration["intercept"])
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checked_card(file: Path, card_file: Path, hash_key: str, names: tuple[str, str], script: str) -> dict[str, Any]:
    """The card of a shipped model file, once the file's SHA-256 matches the one under ``hash_key``;
    RagError naming the fix (``script`` rebuilds it) when either is missing, damaged or not the one
    fitted. ``names``: what the model is, and what the file must match."""
    try:
        card = json.loads(card_file.read_text())
        digest = file_sha256(file)
    except (OSError, ValueError) as exc:
        raise RagError(f"cannot read {names[0]} ({exc}): run `python {script}`") from exc
    if digest != card.get(hash_key):
        raise RagError(
            f"{file} does not match {names[1]} (sha256 {digest[:12]}…): restore it with git or run `python {script}`"
        )
    return card


@lru_cache(maxsize=2)
def load_reader(model_file: Path = MODEL_FILE, card_file: Path = CARD_FILE) -> ReaderModel:
    """The shipped reader; RagError naming the fix when a file is missing, damaged or not the fitted one."""
    # LightGBM offers scikit-learn and pandas interfaces when they are installed; loading them costs
    # a second of every cold start and the booster needs neither.
    lightgbm = import_without("lightgbm", ("sklearn", "pandas", "dask"))
    card = checked_card(
        model_file, card_file, "model_sha256", ("the answer reader", "the fitted reader"), "eval/train_reader.py"
    )
    booster = lightgbm.Booster(model_str=model_file.read_text())
    return ReaderModel(booster, tuple(card["columns"]), card["calibration"], card)
