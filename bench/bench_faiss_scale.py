"""Large local indexes: the FAISS index the app builds by size (IVF, IVF-PQ), at 1M, 3M and 10M chunks.

    .venv/bin/python bench/bench_faiss_scale.py --sizes 1M,3M
    .venv/bin/python bench/bench_faiss_scale.py --sizes 10M --kinds ivfpq    # ~21 min and 18 GB here
    .venv/bin/python bench/bench_faiss_scale.py --sizes 100k --kinds ivf,ivfpq    # a quick look

Vectors: the real chunk vectors of an index of the dev-2023 articles (``--index``, its vectors.npy read
directly), expanded to N by mixtures of two real vectors (weight U(0.5, 1)) plus noise of norm ~0.3,
re-normalised (the recipe of bench_scale.py). Queries: the real dev-2023 questions embedded by the app's
query encoder (cached in bench/out/). Each set is generated in batches of 500k from fixed seeds.

Per kind: build seconds (``rag.search.structures.build_faiss``, the app's own builder, all threads),
bytes per chunk (the serialised FAISS index / chunks), p50 / p95 of one query on one thread as the app
searches (``LocalBackend.dense``: IVF-PQ re-scores 8 x k candidates exactly), and recall@10 against exact
search (brute force in batches). ``ivfpq-raw`` is the PQ ranking without the exact re-scoring.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from common import NEWSQA, OUT, latency, machine, parse_size, table, unit

from rag.search.backend import search_one
from rag.search.structures import PQ_RERANK, build_faiss, ivf_lists, rerank

BATCH = 500_000
NOISE = 0.3
HEADERS = ["chunks", "index", "lists", "build s", "bytes/chunk", "p50 ms", "p95 ms", "recall@10"]
QUESTIONS = NEWSQA / "dev-2023" / "questions.jsonl"


def expand(real: np.ndarray, n: int) -> np.ndarray:
    """n vectors: the real ones first, then noisy mixtures of two real vectors, batch by batch."""
    dim = real.shape[1]
    data = np.empty((n, dim), np.float32)
    keep = min(n, len(real))
    data[:keep] = real[:keep]
    for start in range(keep, n, BATCH):
        rng = np.random.default_rng(start)  # a fixed seed per batch: the same set every run
        m = min(n, start + BATCH) - start
        weight = rng.uniform(0.5, 1.0, (m, 1)).astype(np.float32)
        mix = weight * real[rng.integers(0, len(real), m)] + (1 - weight) * real[rng.integers(0, len(real), m)]
        noise = rng.normal(0, NOISE / np.sqrt(dim), (m, dim)).astype(np.float32)
        data[start : start + m] = unit(mix + noise)
    return data


def question_vectors(limit: int) -> np.ndarray:
    """The first ``limit`` dev-2023 questions through the app's query encoder (cached)."""
    cache = OUT / f"dev2023_questions_{limit}.npy"
    if cache.is_file():
        return np.load(cache)
    from rag.search.embedding import default_embedder

    embedder = default_embedder()
    questions = [json.loads(line)["question"] for line in QUESTIONS.open()][:limit]
    vectors = np.stack([embedder.encode_query(q) for q in questions]).astype(np.float32)
    OUT.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors


def exact_top10(data: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The exact top-10 rows per query, by brute force over batches of the set."""
    best_scores = np.full((len(queries), 10), -np.inf, np.float32)
    best_ids = np.zeros((len(queries), 10), np.int64)
    for start in range(0, len(data), BATCH):
        scores = queries @ data[start : start + BATCH].T
        top = np.argpartition(-scores, 10, axis=1)[:, :10]
        merged_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, 1)], axis=1)
        merged_ids = np.concatenate([best_ids, top + start], axis=1)
        order = np.argsort(-merged_scores, axis=1)[:, :10]
        best_scores, best_ids = np.take_along_axis(merged_scores, order, 1), np.take_along_axis(merged_ids, order, 1)
    return best_ids


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t.tolist())) / 10 for f, t in zip(found, truth)]))


def measure(n: int, kind: str, data: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> list[list[object]]:
    import faiss

    started = time.perf_counter()
    index = build_faiss(data, kind)
    build = time.perf_counter() - started
    size = int(faiss.serialize_index(index).size) / n
    single = [q.reshape(1, -1) for q in queries]
    rows = []
    if kind == "ivfpq":
        raw = [search_one(index, q, 10)[1][0].tolist() for q in single]
        lat = latency(lambda q: search_one(index, q, 10), single)
        rows.append(
            [
                f"{n:,}",
                "ivfpq-raw",
                ivf_lists(n),
                f"{build:.0f}",
                f"{size:.0f}",
                f"{lat.p50:.2f}",
                f"{lat.p95:.2f}",
                f"{recall(raw, truth):.3f}",
            ]
        )

        def app_search(q: np.ndarray) -> list[tuple[int, float]]:
            return rerank(data, q, search_one(index, q, 10 * PQ_RERANK)[1][0], 10)

        found = [[i for i, _ in app_search(q)] for q in single]
        lat = latency(app_search, single)
        rows.append(
            [
                f"{n:,}",
                "ivfpq + exact re-score (app)",
                ivf_lists(n),
                f"{build:.0f}",
                f"{size:.0f}",
                f"{lat.p50:.2f}",
                f"{lat.p95:.2f}",
                f"{recall(found, truth):.3f}",
            ]
        )
    else:
        found = [search_one(index, q, 10)[1][0].tolist() for q in single]
        lat = latency(lambda q: search_one(index, q, 10), single)
        lists = ivf_lists(n) if kind != "flat" else "-"
        rows.append(
            [
                f"{n:,}",
                kind,
                lists,
                f"{build:.0f}",
                f"{size:.0f}",
                f"{lat.p50:.2f}",
                f"{lat.p95:.2f}",
                f"{recall(found, truth):.3f}",
            ]
        )
    for row in rows:
        print(table(HEADERS, [row]).splitlines()[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1M,3M")
    parser.add_argument("--kinds", default="ivfpq", help="flat, ivf, ivfpq (comma-separated)")
    parser.add_argument("--index", required=True, help="an index of the dev-2023 articles")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    print(machine(), flush=True)
    generation = Path(args.index) / (Path(args.index) / "CURRENT").read_text().strip()
    real = np.load(generation / "vectors.npy").astype(np.float32)
    queries = question_vectors(args.queries)
    print(f"real chunk vectors: {real.shape}, queries: {queries.shape}", flush=True)
    rows: list[list[object]] = []
    for n in map(parse_size, args.sizes.split(",")):
        data = expand(real, n)
        truth = exact_top10(data, queries)
        for kind in args.kinds.split(","):
            rows += measure(n, kind, data, queries, truth)
        del data
    print()
    print(table(HEADERS, rows))
    print(machine(), flush=True)


if __name__ == "__main__":
    main()
