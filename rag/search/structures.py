"""The search structures of an index: a FAISS index over the chunk vectors and a bm25s index over their terms.

Both are built from what the store holds (vectors, chunk texts) and saved with it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from rag.text import snowball_stemmer

# Approximate search is an inverted file (IVF) over exact vectors: on two cores it builds
# in minutes where HNSW takes far longer for 1M chunks, and it meets the latency and recall
# targets (bench/README.md). nlist = IVF_LISTS_PER_SQRT * sqrt(chunks), the usual 4-16 sqrt(N).
IVF_LISTS_PER_SQRT = 4
IVF_NPROBE = 64  # lists visited per query
IVF_TRAIN_PER_LIST = 40  # k-means needs >= 39 points a list; more only slows the build
# Older indexes may hold HNSW graphs; they still load and search with this setting.
HNSW_EF_SEARCH = 128
# Above ``Settings.compress_above`` chunks the lists hold product-quantised codes (IVF-PQ) instead of
# the float32 vectors: 48 sub-quantisers of 8 dimensions (384-d), 8 bits each, so 48 bytes a chunk
# instead of 1,536. PQ alone loses recall (bench/bench_faiss_scale.py); the candidates are re-scored
# exactly against the stored vectors (``rerank``), which restores it for a few hundred µs a query.
PQ_SUBQUANTISERS = 48
PQ_BITS = 8
# PQ candidates fetched per result wanted, then re-scored exactly: at 3M chunks re-scoring 8 per result
# kept recall@10 at 0.898, 32 at 0.975 for 0.25 ms more; visiting more lists barely helped
# (docs/scale.md).
PQ_RERANK = 32
PQ_MIN_ROWS = 39 * 2**PQ_BITS  # fewer vectors cannot train the 256 centroids of each sub-quantiser
FAISS_KINDS = ("flat", "ivf", "ivfpq")


# ---------------------------------------------------------------------------
# Search structures


def ivf_lists(n: int) -> int:
    """Number of IVF lists for n vectors: ~4 sqrt(n), never fewer than training can support."""
    return max(1, min(int(IVF_LISTS_PER_SQRT * n**0.5), n // IVF_TRAIN_PER_LIST))


def faiss_kind(n: int, approximate_above: int, compress_above: int) -> str:
    """The FAISS index for n chunks: exact up to ``approximate_above``, IVF above, IVF-PQ above
    ``compress_above`` (the thresholds are ``Settings``' and are measured in docs/scale.md)."""
    if n > max(compress_above, PQ_MIN_ROWS):
        return "ivfpq"
    return "ivf" if n > approximate_above else "flat"


def pq_subquantisers(dimension: int) -> int:
    """PQ_SUBQUANTISERS when it divides the dimension (as it must), else the largest divisor below it."""
    return next(m for m in range(min(PQ_SUBQUANTISERS, dimension), 0, -1) if dimension % m == 0)


def build_faiss(vectors: np.ndarray, kind: str, batch: int = 1_000_000) -> Any:
    """An inner-product FAISS index over unit vectors: exact (``flat``) or approximate (``ivf``, ``ivfpq``);
    vectors are added ``batch`` rows at a time, so a memory-mapped matrix is never copied whole."""
    import faiss

    if kind not in FAISS_KINDS:
        raise ValueError(f"unknown FAISS index {kind!r}: one of {', '.join(FAISS_KINDS)}")
    dimension = vectors.shape[1]
    # Inner product equals cosine similarity on unit vectors.
    if kind != "flat" and len(vectors):
        lists = ivf_lists(len(vectors))
        quantiser = faiss.IndexFlatIP(dimension)
        if kind == "ivf":
            index: Any = faiss.IndexIVFFlat(quantiser, dimension, lists, faiss.METRIC_INNER_PRODUCT)
        else:
            m = pq_subquantisers(dimension)
            index = faiss.IndexIVFPQ(quantiser, dimension, lists, m, PQ_BITS, faiss.METRIC_INNER_PRODUCT)
        # PQ needs 2^bits points per centroid to train each sub-quantiser.
        wanted = max(lists * IVF_TRAIN_PER_LIST, 64 * 2**PQ_BITS if kind == "ivfpq" else 0)
        # A fixed seed keeps rebuilds of the same vectors identical.
        rng = np.random.default_rng(0)
        sample = rng.choice(len(vectors), min(len(vectors), wanted), replace=False)
        index.train(np.ascontiguousarray(vectors[np.sort(sample)], dtype=np.float32))
        index.nprobe = IVF_NPROBE
    else:
        index = faiss.IndexFlatIP(dimension)
    for start in range(0, len(vectors), batch):
        index.add(np.ascontiguousarray(vectors[start : start + batch], dtype=np.float32))
    return index


def rerank(vectors: np.ndarray, query: np.ndarray, ids: np.ndarray, n: int) -> list[tuple[int, float]]:
    """(row, exact inner product) of the n best of candidate rows ``ids`` (-1 = none), best first."""
    rows = np.unique(ids[ids >= 0])  # sorted: a memory-mapped matrix is read front to back
    if not len(rows):
        return []
    scores = vectors[rows] @ query.reshape(-1).astype(np.float32)
    order = np.lexsort((rows, -scores))[:n]
    return [(int(rows[i]), float(scores[i])) for i in order]


def bm25_tokens(texts: list[str], stemmer=None) -> list[list[str]]:
    """Lower-cased, stop-word-free, stemmed terms of each text, as BM25 sees them."""
    import bm25s

    return bm25s.tokenize(
        texts, stopwords="en", stemmer=stemmer or snowball_stemmer(), return_ids=False, show_progress=False
    )


def build_bm25(texts: list[str]):
    """A bm25s retriever over the chunk texts (row i is chunk i)."""
    import bm25s

    # bm25s sets its own logger to DEBUG, which would print build chatter through any root handler.
    logging.getLogger("bm25s").setLevel(logging.WARNING)

    retriever = bm25s.BM25()
    if texts:
        retriever.index(
            bm25s.tokenize(texts, stopwords="en", stemmer=snowball_stemmer(), show_progress=False), show_progress=False
        )
    return retriever
