"""The fitting steps of eval/train_reader.py: ranker, out-of-fold picks, calibration, risk–coverage."""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np

from rag.answer.reader.features import CATEGORICAL
from rag.answer.reader.model import CONFIDENCE_INPUTS, calibrated_probability, confidence_inputs
from rag.evaluate.metrics import CORRECT_F1, abstention_scores, token_f1

RANKER = {
    "objective": "lambdarank",
    "num_leaves": 15,
    "min_data_in_leaf": 200,
    "learning_rate": 0.03,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "num_threads": 2,
    "deterministic": True,
    "force_row_wise": True,
}
ROUNDS = 300
FOLDS = 5


def _matrix(rows: list[dict], columns: list[str]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    features, labels, groups = [], [], []
    for row in rows:
        for text, _norm, _label, f in row["candidates"]:
            features.append([f.get(c, 0.0) for c in columns])
            f1 = token_f1(text, row["answers"]) if row["answers"] else 0.0
            labels.append(3 if f1 >= 0.999 else 1 if f1 >= CORRECT_F1 else 0)
        groups.append(len(row["candidates"]))
    return np.array(features, dtype=np.float64), np.array(labels), groups


def fit_ranker(rows: list[dict], columns: list[str], seed: int):
    """LightGBM lambdarank over every candidate of every question (a question is a query group)."""
    import lightgbm

    features, labels, groups = _matrix(rows, columns)
    categorical = [c for c in CATEGORICAL if c in columns]
    data = lightgbm.Dataset(features, labels, group=groups, feature_name=columns, categorical_feature=categorical)
    return lightgbm.train({**RANKER, "seed": seed}, data, num_boost_round=ROUNDS)


def pick(model, columns: list[str], rows: list[dict]) -> list[dict | None]:
    """Per question, what the reader would answer: the best group's text, the groups' scores, its features."""
    features, _, groups = _matrix(rows, columns)
    scores = model.predict(features) if len(features) else np.zeros(0)
    picks: list[dict | None] = []
    position = 0
    for row, size in zip(rows, groups):
        mine = scores[position : position + size]
        position += size
        if not size:
            picks.append(None)
            continue
        by_norm: dict[str, list[int]] = defaultdict(list)
        for i, (_text, norm, _label, _f) in enumerate(row["candidates"]):
            by_norm[norm].append(i)
        best_of = {norm: max(members, key=lambda i: mine[i]) for norm, members in by_norm.items()}
        ranked = sorted(best_of.values(), key=lambda i: mine[i], reverse=True)
        top = ranked[0]
        picks.append(
            {
                "text": row["candidates"][top][0],
                "scores": [float(mine[i]) for i in ranked],
                "features": row["candidates"][top][3],
                "index": top,
            }
        )
    return picks


def out_of_fold(rows: list[dict], columns: list[str], seed: int) -> list[dict | None]:
    """Picks for every question from a ranker fitted without its fold (honest scores to calibrate on)."""
    order = np.random.default_rng(seed).permutation(len(rows))
    picks: list[dict | None] = [None] * len(rows)
    for fold in range(FOLDS):
        held = set(order[fold::FOLDS].tolist())
        model = fit_ranker([r for i, r in enumerate(rows) if i not in held], columns, seed)
        held_rows = sorted(held)
        for i, p in zip(held_rows, pick(model, columns, [rows[i] for i in held_rows])):
            picks[i] = p
    return picks


def confidence_table(rows: list[dict], picks: list[dict | None], calibration: dict | None = None) -> list[dict]:
    """Per question: the calibration inputs, whether the pick is right, and (given a calibration) its probability."""
    table = []
    for row, p in zip(rows, picks):
        right = bool(p and row["answerable"] and token_f1(p["text"], row["answers"]) >= CORRECT_F1)
        inputs = (
            confidence_inputs(
                p["scores"],
                p["features"],
                row["best_passage_score"],
                _sentence_cosine(row, p),
                [f for *_, f in row["candidates"]],
            )
            if p
            else None
        )
        entry = {"id": row["id"], "answerable": row["answerable"], "correct": right, "inputs": inputs}
        if calibration is not None:
            entry["probability"] = calibrated_probability(calibration, inputs) if inputs else 0.0
        table.append(entry)
    return table


def _sentence_cosine(row: dict, p: dict) -> float:
    """The transformer's cosine of the pick's sentence with the question: the "model" listing of the same
    candidates (same order) carries it as ``sent_sim``."""
    return float(row["model"][p["index"]][3]["sent_sim"])


def fit_calibration(table: list[dict]) -> dict:
    """Logistic regression from the calibration inputs to 'the pick is right', on standardised inputs."""
    from sklearn.linear_model import LogisticRegression

    usable = [row for row in table if row["inputs"] is not None]
    x = np.array([row["inputs"] for row in usable])
    y = np.array([row["correct"] for row in usable], dtype=int)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    fitted = LogisticRegression(C=1.0, max_iter=1000).fit((x - mean) / scale, y)
    return {
        "inputs": list(CONFIDENCE_INPUTS),
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "coef": fitted.coef_[0].tolist(),
        "intercept": float(fitted.intercept_[0]),
    }


def risk_coverage(table: list[dict], max_false_abstention: float) -> tuple[float, list[dict]]:
    """Every threshold's abstention figures; the chosen one has the best abstention F1 among those that
    abstain on at most ``max_false_abstention`` of the answerable questions."""
    probabilities = sorted({row["probability"] for row in table})
    cuts = [0.0] + [(a + b) / 2 for a, b in itertools.pairwise(probabilities)]
    curve = []
    answerable = [row["answerable"] for row in table]
    for cut in cuts:
        abstained = [row["probability"] < cut for row in table]
        answered = [row for row, a in zip(table, abstained) if not a]
        scores = abstention_scores(abstained, answerable)
        false = sum(a and ok for a, ok in zip(abstained, answerable)) / max(1, sum(answerable))
        curve.append(
            {
                "threshold": round(cut, 6),
                "coverage": round(len(answered) / len(table), 4),
                "risk": round(1 - sum(r["correct"] for r in answered) / len(answered), 4) if answered else 0.0,
                "abstention_precision": round(scores["precision"], 4),
                "abstention_recall": round(scores["recall"], 4),
                "abstention_f1": round(scores["f1"], 4),
                "false_abstention": round(false, 4),
            }
        )
    allowed = [row for row in curve if row["false_abstention"] <= max_false_abstention]
    best = max(allowed, key=lambda row: (row["abstention_f1"], -row["false_abstention"]))
    return best["threshold"], curve
