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


# ---------------------------------------------------------------------------
# Search structures


def ivf_lists(n: int) -> int:
    """Number of IVF lists for n vectors: ~4 sqrt(n), never fewer than training can support."""
    return max(1, min(int(IVF_LISTS_PER_SQRT * n**0.5), n // IVF_TRAIN_PER_LIST))


def build_faiss(vectors: np.ndarray, approximate: bool) -> Any:
    """An inner-product FAISS index over unit vectors: exact (flat) or approximate (IVF)."""
    import faiss

    dimension = vectors.shape[1]
    # Inner product equals cosine similarity on unit vectors.
    if approximate and len(vectors):
        lists = ivf_lists(len(vectors))
        index: Any = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, lists, faiss.METRIC_INNER_PRODUCT)
        # A fixed seed keeps rebuilds of the same vectors identical.
        rng = np.random.default_rng(0)
        sample = rng.choice(len(vectors), min(len(vectors), lists * IVF_TRAIN_PER_LIST), replace=False)
        index.train(vectors[np.sort(sample)])
        index.nprobe = IVF_NPROBE
    else:
        index = faiss.IndexFlatIP(dimension)
    if len(vectors):
        index.add(vectors)
    return index


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
