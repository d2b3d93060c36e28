"""Where a retriever's two rankings come from: the index's own FAISS and bm25s structures (``LocalBackend``)
or a Milvus collection (``rag.search.milvus_store``). The retriever fuses and dates them the same way.

A backend ranks chunk positions (rows of ``Index.chunks``). One that can filter by publication date
itself says so (``dense_dates``, ``lexical_dates``) and is given ``as_of``; otherwise the retriever
over-fetches and filters (``Retriever._within_date``).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rag.redaction import redact
from rag.search.structures import PQ_RERANK, bm25_tokens, rerank
from rag.settings import StoreChoice

if TYPE_CHECKING:
    from rag.search.store import Index

LOCAL_STORE: dict[str, Any] = {"kind": "local"}
SEARCH_THREADS = 1  # FAISS threads for one query (see search_one)


def store_record(choice: StoreChoice) -> dict[str, Any]:
    """The store as the manifest records it: no secret (a URI's password or token is cut out)."""
    if choice.kind == "local":
        return LOCAL_STORE
    return {"kind": choice.kind, "uri": redact(choice.uri), "collection": choice.collection, "lexical": choice.lexical}


def store_name(record: dict[str, Any]) -> str:
    """A manifest's store record as the user names it: ``local`` or ``milvus:URI`` (lexical side noted)."""
    if record.get("kind") == "local":
        return "local"
    lexical = ", Milvus BM25" if record.get("lexical") == "milvus" else ""
    return f"{record.get('kind')}:{record.get('uri')} ({record.get('collection')}{lexical})"


class SearchBackend(Protocol):
    """Ranks an index's chunks for a query vector (dense) and for a question's terms (lexical)."""

    dense_dates: bool
    lexical_dates: bool

    def dense(self, query: np.ndarray, n: int, as_of: date | None = None) -> list[tuple[int, float]]: ...

    def lexical(self, question: str, n: int, as_of: date | None = None) -> list[tuple[int, float]]: ...


class LocalBackend:
    """FAISS (exact, IVF, or IVF-PQ re-scored exactly) and bm25s over the index in memory."""

    dense_dates = False
    lexical_dates = False

    def __init__(self, index: Index):
        self.index = index

    def dense(self, query: np.ndarray, n: int, as_of: date | None = None) -> list[tuple[int, float]]:
        """(chunk position, cosine) of the n nearest chunks."""
        n = min(n, len(self.index))
        if n == 0:
            return []
        query = query.reshape(1, -1).astype(np.float32)
        if self.index.manifest["faiss"].get("type") == "ivfpq":
            # Capped: a dated search can ask for most of the index, and FAISS allocates k results per query.
            _, ids = search_one(self.index.faiss, query, min(n * PQ_RERANK, len(self.index)))
            return rerank(self.index.vectors, query, ids[0], n)
        scores, ids = search_one(self.index.faiss, query, n)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def lexical(self, question: str, n: int, as_of: date | None = None) -> list[tuple[int, float]]:
        """(chunk position, BM25 score) of the n best chunks that share a term with the question."""
        bm25 = self.index.bm25
        terms = [t for t in bm25_tokens([question], self.index.stemmer)[0] if t in bm25.vocab_dict]
        n = min(n, len(self.index))
        if n == 0 or not terms:
            return []
        ids, scores = bm25.retrieve([terms], k=n, show_progress=False, n_threads=1)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if s > 0]


def backend_for(index: Index) -> SearchBackend:
    """The Milvus store an index was loaded with (the ``milvus`` artefact), else its own structures."""
    store = index.artefacts.get("milvus")
    return store if store is not None else LocalBackend(index)


def search_one(faiss_index, query: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """FAISS search for one query on a single thread.

    Why: one query gains little from a second thread, and on a shared two-core
    machine OpenMP's waiting threads make it many times slower (bench/README.md:
    10k exact 2 ms on one thread against 16 ms on two). Builds keep all threads.
    """
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(SEARCH_THREADS)
    try:
        return faiss_index.search(query, n)
    finally:
        faiss.omp_set_num_threads(threads)
