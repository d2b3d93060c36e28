"""Indexing throughput against bare ``model.encode``, and search latency on the seeds.

    .venv/bin/python bench/bench_index.py                 # both parts
    .venv/bin/python bench/bench_index.py --part build --docs 40
    .venv/bin/python bench/bench_index.py --part search --rounds 5

(a) build: the real ``build_index`` (chunking + embedding + FAISS + BM25) over the
first ``--docs`` WiCE articles, against bare sentence-transformers
``model.encode`` (batch 64, normalised) on exactly the chunk texts the build
made. Both are timed in this process, bare runs before and after the build, so
the ratio uses their mean (the machine's load drifts).
(b) search: ``Retriever.search(question, k=5)`` per mode on the seeds index,
query embedding included, plus the parts of a hybrid query on their own.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import replace

from common import OUT, ROOT, latency, machine, table, wice_corpus

# Questions a reader of the two seed articles might ask; only their timing is measured.
SEED_QUESTIONS = [
    "Which law allows the US to penalise countries that buy Russian weapons?",
    "When did Turkey receive the S-400 missiles?",
    "How much did India pay for its S-400 contract?",
    "Who is Michael Kofman?",
    "Which countries already operate the S-300 system?",
    "Why was Turkey removed from the F-35 programme?",
    "What did Erdogan say about buying more missile systems?",
    "Is Russia the world's second-largest arms exporter?",
    "What does the US fear the S-400 could reveal about the F-35?",
    "Will the S-400 be integrated into NATO systems?",
    "Which Russian president will Erdogan meet?",
    "What share of its arms exports does Russia sell to India and China?",
]


def bench_build(docs: int) -> None:
    from rag.ingest.chunking import chunk_document
    from rag.ingest.reading import load_corpus
    from rag.ingest.sentences import nlp
    from rag.search.build import build_index
    from rag.search.embedding import default_embedder
    from rag.settings import Settings

    path, _ = wice_corpus(limit=docs)
    documents = load_corpus([path])
    embedder = default_embedder()
    settings = Settings()
    nlp(full=False)
    embedder.encode_with_model(["warm up the model"] * 4, progress=False)

    started = time.perf_counter()
    chunks = [c for d in documents for c in chunk_document(d, settings.chunking, fits=embedder.fits)]
    chunk_s = time.perf_counter() - started
    texts = [c.text for c in chunks]
    pieces = sum(embedder.count_tokens(t) for t in texts)

    def bare() -> float:
        started = time.perf_counter()
        embedder.model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        return time.perf_counter() - started

    bare_before = bare()
    started = time.perf_counter()
    index, _ = build_index(documents, embedder, settings, progress=False)
    build_s = time.perf_counter() - started
    bare_after = bare()
    bare_s = (bare_before + bare_after) / 2
    assert [c.text for c in index.chunks] == texts, "the build cut other chunks than the chunker alone"

    n = len(texts)
    chars = sum(len(d.text) for d in documents)
    print(
        f"\n(a) indexing throughput: {len(documents)} WiCE articles, {chars:,} characters, {n} chunks, "
        f"{pieces:,} model word pieces (mean {pieces / n:.0f} a chunk)"
    )
    print(
        table(
            ["what", "seconds", "chunks/s", "word pieces/s", "vs bare encode"],
            [
                ["bare model.encode (mean of before/after)", bare_s, n / bare_s, pieces / bare_s, 1.0],
                ["  bare, before the build", bare_before, n / bare_before, pieces / bare_before, bare_s / bare_before],
                ["  bare, after the build", bare_after, n / bare_after, pieces / bare_after, bare_s / bare_after],
                [
                    "build_index (chunk + embed + FAISS + BM25)",
                    build_s,
                    n / build_s,
                    pieces / build_s,
                    bare_s / build_s,
                ],
                ["  of which chunking alone (timed apart)", chunk_s, n / chunk_s, pieces / chunk_s, ""],
            ],
        )
    )
    print(f"throughput ratio build / bare encode = {bare_s / build_s:.3f} (target >= 0.9)")


def bench_search(rounds: int) -> None:
    from rag.search.embedding import default_embedder
    from rag.search.index import open_index
    from rag.search.retrieval import Retriever, reciprocal_rank_fusion
    from rag.settings import Settings

    index_dir = OUT / "seeds-index"
    shutil.rmtree(index_dir, ignore_errors=True)
    settings = replace(Settings(), corpus=(ROOT / "seeds",), index_dir=index_dir)
    embedder = default_embedder()
    index = open_index(settings, embedder)
    retriever = Retriever(index, embedder, rrf_k=settings.rrf_k)
    fast = embedder.query_encoder
    questions = SEED_QUESTIONS * rounds

    class TorchQueries:
        """The embedder with the plain sentence-transformers query path (the fallback)."""

        def encode_query(self, text: str):
            return embedder.encode_with_model([text], progress=False)[0]

    torch_retriever = Retriever(index, TorchQueries(), rrf_k=settings.rrf_k)
    rows = []
    hybrid = None
    for mode in ("dense", "bm25", "hybrid"):
        lat = latency(lambda q, m=mode: retriever.search(q, k=5, mode=m), questions)
        hybrid = lat if mode == "hybrid" else hybrid
        rows.append([f"search k=5, {mode}", lat.p50, lat.p95, lat.mean])
    lat = latency(lambda q: torch_retriever.search(q, k=5, mode="hybrid"), questions)
    rows.append(["search k=5, hybrid, torch query path (the fallback)", lat.p50, lat.p95, lat.mean])

    vector = embedder.encode_query(questions[0])
    dense = [i for i, _ in retriever.dense(vector, 30)]
    lexical = [i for i, _ in retriever.lexical(questions[0], 30)]
    parts = [
        ("encode_query, onnxruntime" if fast else "encode_query (onnxruntime unavailable)", embedder.encode_query),
        ("encode_query, sentence-transformers", lambda q: embedder.encode_with_model([q], progress=False)[0]),
        ("FAISS search, pool 30, vector given", lambda q: retriever.dense(vector, 30)),
        ("BM25 tokenise + retrieve, pool 30", lambda q: retriever.lexical(q, 30)),
        ("RRF fusion of the two pools", lambda q: reciprocal_rank_fusion([dense, lexical])),
    ]
    for name, call in parts:
        lat = latency(call, questions)
        rows.append([f"  part: {name}", lat.p50, lat.p95, lat.mean])
    agreement = min(
        float(embedder.encode_query(q) @ embedder.encode_with_model([q], progress=False)[0]) for q in SEED_QUESTIONS
    )
    print(
        f"\n(b) search latency on the seeds: {len(index.documents)} articles, {len(index)} chunks, "
        f"{len(questions)} queries ({len(SEED_QUESTIONS)} questions x {rounds} rounds), ms per query"
    )
    print(table(["what", "p50 ms", "p95 ms", "mean ms"], rows))
    print(f"query vectors, onnxruntime vs sentence-transformers: lowest cosine {agreement:.7f}")
    print(f"hybrid p50 {hybrid.p50:.1f} ms (target <= 20 ms, query embedding included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["build", "search", "all"], default="all")
    parser.add_argument("--docs", type=int, default=40, help="WiCE articles indexed for the throughput run")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the seed questions")
    args = parser.parse_args()
    print(machine())
    if args.part in ("search", "all"):
        bench_search(args.rounds)
    if args.part in ("build", "all"):
        bench_build(args.docs)
    print(f"\nend: {machine()}")


if __name__ == "__main__":
    main()
