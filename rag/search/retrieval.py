"""Hybrid retrieval: dense (FAISS or Milvus) and lexical (BM25) rankings fused by reciprocal rank fusion.

Chunks overlap, so a lower-ranked chunk that repeats text of a higher-ranked one
is trimmed to the text not yet shown, or dropped when nothing new remains.

A retriever may be dated (``Retriever.dated``): it then searches the corpus as it stood on that day.
Documents published after it are left out of both rankings, inside each search, before they are fused;
undated documents are kept, and the order of the rest is unchanged.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Literal

import numpy as np

from rag.budget import check_time_budget
from rag.errors import RagError
from rag.records import Passage
from rag.search.backend import SearchBackend, backend_for
from rag.search.dates import DocumentDates

if TYPE_CHECKING:
    from rag.search.embedding import Embedder
    from rag.search.store import Index

Mode = Literal["dense", "bm25", "hybrid"]
MODES: tuple[str, ...] = ("dense", "bm25", "hybrid")
MIN_NEW_TEXT = 0.3  # a trimmed passage must keep at least this share of its chunk


def reciprocal_rank_fusion(rankings: list[list[int]], k: int = 60) -> list[tuple[int, float]]:
    """Fuses ranked id lists: score(id) = Σ 1 / (k + rank), rank 1-based.

    Example: [[7, 3], [3]] with k=60 -> [(3, 1/62 + 1/61), (7, 1/61)]
    """
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


class Retriever:
    """Finds the passages of an index that best match a question."""

    def __init__(
        self, index: Index, embedder: Embedder, mode: Mode = "hybrid", rrf_k: int = 60, as_of: date | None = None
    ):
        if mode not in MODES:
            raise ValueError(f"unknown retriever '{mode}': choose one of {', '.join(MODES)}")
        self.index = index
        self.embedder = embedder
        self.mode = mode
        self.rrf_k = rrf_k
        self.as_of = as_of  # None: the whole corpus; else only documents published by then (or undated)
        self._dates = DocumentDates(index)
        self.backend: SearchBackend = backend_for(index, self._dates)  # the index's FAISS and BM25, or its Milvus store

    def dated(self, as_of: date | None) -> Retriever:
        """The same retriever searching the corpus as of a date (None: the whole corpus); shares its caches."""
        twin = Retriever(self.index, self.embedder, self.mode, self.rrf_k, as_of)
        twin._dates = self._dates
        twin.backend = self.backend
        return twin

    def dense(self, query_vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        """(chunk position, cosine) of the n nearest chunks (published by ``as_of`` when it is set)."""
        return self.backend.dense(query_vector, n, self.as_of)

    def lexical(self, question: str, n: int) -> list[tuple[int, float]]:
        """(chunk position, BM25 score) of the n best chunks that share a term with the question (published
        by ``as_of`` when it is set)."""
        return self.backend.lexical(question, n, self.as_of)

    def ranked(self, question: str, n: int, mode: Mode | None = None) -> list[tuple[int, float]]:
        """(chunk position, score) of the best n chunks under the given mode."""
        mode = mode or self.mode
        if mode == "dense":
            return self.dense(self.embedder.encode_query(question), n)
        if mode == "bm25":
            return self.lexical(question, n)
        pool = max(n * 4, 30)
        dense = self.dense(self.embedder.encode_query(question), pool)
        lexical = self.lexical(question, pool)
        fused = reciprocal_rank_fusion([[i for i, _ in dense], [i for i, _ in lexical]], self.rrf_k)
        return fused[:n]

    def search(self, question: str, k: int = 5, mode: Mode | None = None) -> list[Passage]:
        """The k best passages, ranked 1..k, without repeating text across overlapping chunks."""
        if k < 1:
            raise RagError(f"k must be at least 1, not {k}: ask for one passage or more")
        check_time_budget()
        ranked = self.ranked(question, k * 3, mode)
        passages: list[Passage] = []
        shown: dict[str, list[tuple[int, int]]] = {}
        for position, score in ranked:
            chunk = self.index.chunks[position]
            span = _unshown_part(chunk.start, chunk.end, shown.get(chunk.doc_id, []))
            if span is None:
                continue
            text = self.index.documents[chunk.doc_id].text
            start, end = _strip(text, *span)
            if end - start < MIN_NEW_TEXT * (chunk.end - chunk.start):
                continue
            shown.setdefault(chunk.doc_id, []).append((start, end))
            published = self._dates.of(chunk.doc_id)
            passages.append(
                Passage(
                    chunk.doc_id,
                    chunk.chunk_id,
                    start,
                    end,
                    text[start:end],
                    score,
                    len(passages) + 1,
                    published=published.isoformat() if published else None,
                )
            )
            if len(passages) == k:
                break
        return passages


def _unshown_part(start: int, end: int, shown: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The longest stretch of [start, end) not covered by any shown span."""
    gaps = [(start, end)]
    for s, e in shown:
        next_gaps = []
        for gs, ge in gaps:
            if e <= gs or s >= ge:
                next_gaps.append((gs, ge))
                continue
            if gs < s:
                next_gaps.append((gs, s))
            if e < ge:
                next_gaps.append((e, ge))
        gaps = next_gaps
    return max(gaps, key=lambda g: g[1] - g[0], default=None)


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
