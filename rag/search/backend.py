"""Where a retriever's two rankings come from: the index's own FAISS and bm25s structures (``LocalBackend``)
or a Milvus collection (``rag.search.milvus_store``). The retriever fuses and dates them the same way.

A backend ranks chunk positions (rows of ``Index.chunks``). Given ``as_of``, both rankings leave out
documents published after that day inside the search itself (FAISS with an ID selector, bm25s with a
weight mask, Milvus with a filter), so a dated question costs what an undated one does.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rag.redaction import redact
from rag.search.dates import DocumentDates
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
    """Ranks an index's chunks for a query vector (dense) and for a question's terms (lexical), among the
    chunks published by ``as_of`` when it is given."""

    def dense(self, query: np.ndarray, n: int, as_of: date | None = None) -> list[tuple[int, float]]: ...

    def lexical(self, question: str, n: int, as_of: date | None = None) -> list[tuple[int, float]]: ...


class LocalBackend:
    """FAISS (exact, IVF, or IVF-PQ re-scored exactly) and bm25s over the index in memory."""

    def __init__(self, index: Index, dates: DocumentDates | None = None):
        self.index = index
        self.dates = dates or DocumentDates(index)

    def dense(self, query: np.ndarray, n: int, as_of: date | None = None) -> list[tuple[int, float]]:
        """(chunk position, cosine) of the n nearest chunks (published by ``as_of`` when given)."""
        n = min(n, len(self.index))
        if n == 0:
            return []
        query = query.reshape(1, -1).astype(np.float32)
        allowed = self.dates.allowed(as_of) if as_of is not None else None
        if self.index.manifest["faiss"].get("type") == "ivfpq":
            _, ids = search_one(self.index.faiss, query, min(n * PQ_RERANK, len(self.index)), allowed)
            return rerank(self.index.vectors, query, ids[0], n)
        scores, ids = search_one(self.index.faiss, query, n, allowed)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def lexical(self, question: str, n: int, as_of: date | None = None) -> list[tuple[int, float]]:
        """(chunk position, BM25 score) of the n best chunks that share a term with the question (and are
        published by ``as_of`` when given: the others score 0, and a 0 is no match)."""
        bm25 = self.index.bm25
        terms = [t for t in bm25_tokens([question], self.index.stemmer)[0] if t in bm25.vocab_dict]
        n = min(n, len(self.index))
        if n == 0 or not terms:
            return []
        mask = self.dates.allowed(as_of).astype(np.float32) if as_of is not None else None
        ids, scores = bm25.retrieve([terms], k=n, show_progress=False, n_threads=1, weight_mask=mask)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if s > 0]


def backend_for(index: Index, dates: DocumentDates | None = None) -> SearchBackend:
    """The Milvus store an index was loaded with (the ``milvus`` artefact), else its own structures."""
    store = index.artefacts.get("milvus")
    return store if store is not None else LocalBackend(index, dates)


def search_one(
    faiss_index, query: np.ndarray, n: int, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """FAISS search for one query on a single thread, among the rows ``allowed`` marks when given.

    Why: one query gains little from a second thread, and on a shared two-core
    machine OpenMP's waiting threads make it many times slower (bench/README.md:
    10k exact 2 ms on one thread against 16 ms on two). Builds keep all threads.
    """
    import faiss

    params = None
    if allowed is not None:
        bits = np.packbits(allowed, bitorder="little")  # the selector reads it: alive until the search ends
        nprobe = getattr(faiss_index, "nprobe", None)
        params = faiss.SearchParameters()
        if nprobe is not None:
            params = faiss.SearchParametersIVF()
            params.nprobe = nprobe  # the index's own, not the parameters' default of 1
        params.sel = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(SEARCH_THREADS)
    try:
        return faiss_index.search(query, n, params=params)
    finally:
        faiss.omp_set_num_threads(threads)
