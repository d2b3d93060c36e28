"""Retrieval quality on real text: WiCE claims as queries, their cited articles as the gold documents.

    .venv/bin/python bench/bench_wice_retrieval.py            # all 349 dev claims
    .venv/bin/python bench/bench_wice_retrieval.py --docs 60  # a quick subset

Every distinct cited article (its sentences as paragraphs) becomes one document
of a .jsonl corpus under bench/out/, indexed by the real ``build_index`` (the
index is kept in bench/out/wice-index and reused while the corpus is unchanged).
Each claim is a query whose only relevant document is the article it cites. A
retrieved chunk counts for its document; documents are deduplicated in rank
order, so recall@k is "the cited article is among the first k distinct
documents" and MRR is 1/rank of it (0 when it is not among the retrieved).

The claim vectors and the index's chunk vectors are left in bench/out/ for
bench_scale.py's realistic synthetic set.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from common import OUT, Claim, machine, table, wice_corpus

CHUNK_DEPTH = 60  # chunks asked of ranked() per query: enough to see >= 10 distinct documents


def document_ranking(retriever, claim: Claim, mode: str) -> list[str]:
    """Distinct document ids in the order their best chunk was ranked."""
    chunks = retriever.index.chunks
    ranking = retriever.ranked(claim.text, CHUNK_DEPTH, mode)
    return list(dict.fromkeys(chunks[position].doc_id for position, _ in ranking))


def scores(rankings: list[list[str]], claims: list[Claim]) -> dict[str, float]:
    """recall@1/5/10 and MRR of the gold documents in the rankings."""
    ranks = [ranking.index(c.doc_id) + 1 if c.doc_id in ranking else None for ranking, c in zip(rankings, claims)]
    result = {f"R@{k}": sum(1 for r in ranks if r is not None and r <= k) / len(ranks) for k in (1, 5, 10)}
    result["MRR"] = sum(1 / r for r in ranks if r is not None) / len(ranks)
    return result


class GivenVectors:
    """An embedder stand-in whose question vectors were computed beforehand (to compare query paths)."""

    def __init__(self, vectors: dict[str, np.ndarray]):
        self.vectors = vectors

    def encode_query(self, text: str) -> np.ndarray:
        return self.vectors[text]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=None, help="only the first N cited articles and their claims")
    parser.add_argument("--rrf-sweep", action="store_true", help="also try other RRF k and pool sizes (exploratory)")
    args = parser.parse_args()

    from rag.search.embedding import default_embedder
    from rag.search.index import open_index
    from rag.search.retrieval import Retriever
    from rag.settings import Settings

    print(machine())
    path, claims = wice_corpus(args.docs)
    suffix = "" if args.docs is None else f"-{args.docs}"
    settings = replace(Settings(), corpus=(path,), index_dir=OUT / f"wice-index{suffix}")
    embedder = default_embedder()
    started = time.perf_counter()
    index = open_index(settings, embedder)
    print(
        f"index: {len(index.documents)} articles, {len(index)} chunks, {index.manifest['faiss']['type']} FAISS, "
        f"ready in {time.perf_counter() - started:.0f} s"
    )

    texts = [c.text for c in claims]
    torch_vectors = embedder.encode_with_model(texts, progress=False)  # the plain sentence-transformers path
    fast_vectors = np.vstack([embedder.encode_query(t) for t in texts])
    agreement = np.sum(torch_vectors * fast_vectors, axis=1)
    np.save(OUT / f"wice_claims{suffix}.npy", torch_vectors)
    np.save(OUT / f"wice_chunks{suffix}.npy", index.vectors)

    retriever = Retriever(index, embedder, rrf_k=settings.rrf_k)
    torch_retriever = Retriever(index, GivenVectors(dict(zip(texts, torch_vectors))), rrf_k=settings.rrf_k)
    rows = []
    for name, r, mode in [
        ("dense", retriever, "dense"),
        ("BM25", retriever, "bm25"),
        (f"hybrid (RRF k={settings.rrf_k})", retriever, "hybrid"),
        ("dense, torch query path", torch_retriever, "dense"),
        ("hybrid, torch query path", torch_retriever, "hybrid"),
    ]:
        result = scores([document_ranking(r, c, mode) for c in claims], claims)
        rows.append([name, *result.values()])
    print(
        f"\n(d) WiCE dev: {len(claims)} claims, {len(index.documents)} articles, document-level, "
        f"ranking from the first {CHUNK_DEPTH} chunks"
    )
    print(table(["retriever", "R@1", "R@5", "R@10", "MRR"], rows))
    print(
        f"claim vectors, onnxruntime vs sentence-transformers: cosine min {agreement.min():.7f}, "
        f"mean {agreement.mean():.7f}"
    )

    if args.rrf_sweep:
        # Exploratory: chosen values would be tuned on these very claims, so this is not a held-out result.
        sweep = []
        for k in (10, 30, 60, 100):
            sweep_retriever = Retriever(index, embedder, rrf_k=k)
            result = scores([document_ranking(sweep_retriever, c, "hybrid") for c in claims], claims)
            sweep.append([f"hybrid, RRF k={k}", *result.values()])
        print("\nRRF k sweep (exploratory, same claims: not held-out)")
        print(table(["retriever", "R@1", "R@5", "R@10", "MRR"], sweep))
    print(f"\nend: {machine()}")


if __name__ == "__main__":
    main()
