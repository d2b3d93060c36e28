"""Retrieval through Milvus against the local FAISS + BM25 path: top-10 overlap, MRR@10 and hit@10.

    .venv/bin/python bench/bench_milvus_parity.py                       # seeds, then dev-2023
    .venv/bin/python bench/bench_milvus_parity.py --only seeds
    .venv/bin/python bench/bench_milvus_parity.py --index DIR --uri http://127.0.0.1:19530   # a Milvus server

Seeds: the seed articles indexed twice by `open_index`, once per store (Milvus Lite file in bench/out/).
dev-2023: the chunks, vectors and BM25 of an existing index of its 2,202 articles (``--index``, read
directly, nothing re-embedded) copied into a Milvus Lite collection with Milvus' BM25 function; the
answerable questions, searched as `rag eval` searches them (as of their week + 5 days) and undated.

Per side (dense, lexical, hybrid fused by RRF): overlap@10 = |local top-10 ∩ Milvus top-10| / 10, and
per store MRR@10 / hit@10 of the first chunk that holds a gold evidence quote (dev-2023) or lies in an
evidence article (seeds: two articles, so the article is what can be told apart). "Milvus hybrid" is
Milvus dense + local BM25 (the default); "Milvus hybrid, Milvus BM25" uses Milvus' BM25 instead.

``--uri`` puts the collections on a Milvus server instead of Lite files; a server older than Milvus 2.5
has no BM25 function, so its rows with Milvus' BM25 are left out. Each set also prints the median time
of one hybrid ranking per store (the question's vector cached), since a server adds a network round trip.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from common import OUT, ROOT, machine, table

from rag.errors import RagError
from rag.evaluate.gold import WEEK_SLACK_DAYS, dated, load_gold
from rag.records import Chunk, Document
from rag.search.embedding import default_embedder
from rag.search.index import open_index
from rag.search.milvus_artefact import chunk_keys
from rag.search.milvus_store import MilvusStore
from rag.search.retrieval import Retriever
from rag.search.store import Index
from rag.settings import Settings, StoreChoice

DEV = ROOT.parent / "shared" / "benchmarks" / "newsqa" / "dev-2023" / "questions.jsonl"
HEADERS = [
    "set",
    "questions",
    "dated",
    "side",
    "overlap@10",
    "local MRR@10",
    "Milvus MRR@10",
    "local hit@10",
    "Milvus hit@10",
]


class CachedQueries:
    """The embedder with its question vectors cached: each question is encoded once for every ranking."""

    def __init__(self, embedder):
        self.embedder = embedder
        self.encode_query = lru_cache(maxsize=None)(embedder.encode_query)


def first_hit(index: Index, ranked: list[tuple[int, float]], gold, by_quote: bool) -> int | None:
    for rank, (position, _) in enumerate(ranked, start=1):
        chunk = index.chunks[position]
        for ev in gold.evidence:
            if ev.doc_id == chunk.doc_id and (not by_quote or ev.quote in chunk.text):
                return rank
    return None


def compare(name, index, local, remote, questions, by_quote: bool) -> list[list[object]]:
    """One row per side: overlap@10 of the two stores and each one's MRR@10 and hit@10."""
    rows = []
    sides = [
        ("dense", "dense", "local"),
        ("lexical: Milvus BM25 vs bm25s", "bm25", "milvus"),
        ("hybrid (Milvus dense + local BM25)", "hybrid", "local"),
        ("hybrid, Milvus BM25", "hybrid", "milvus"),
    ]
    for side, mode, milvus in [(side, mode, remote[lexical]) for side, mode, lexical in sides if lexical in remote]:
        for use_dates in (False, True):
            overlaps, ranks = [], {"local": [], "milvus": []}
            for q in questions:
                as_of = q.as_of if use_dates else None
                a = local.dated(as_of).ranked(q.question, 10, mode)
                b = milvus.dated(as_of).ranked(q.question, 10, mode)
                overlaps.append(len({i for i, _ in a} & {i for i, _ in b}) / 10)
                ranks["local"].append(first_hit(index, a, q, by_quote))
                ranks["milvus"].append(first_hit(index, b, q, by_quote))
            mrr = {k: np.mean([1 / r if r else 0 for r in v]) for k, v in ranks.items()}
            hit = {k: np.mean([r is not None for r in v]) for k, v in ranks.items()}
            row = [name, len(questions), "yes" if use_dates else "no", side, f"{np.mean(overlaps):.3f}"]
            row += [f"{mrr['local']:.3f}", f"{mrr['milvus']:.3f}", f"{hit['local']:.3f}", f"{hit['milvus']:.3f}"]
            print(table(HEADERS, [row]).splitlines()[-1], flush=True)
            rows.append(row)
    timings = {
        store: median_ms(retriever, questions) for store, retriever in (("local", local), ("Milvus", remote["local"]))
    }
    print(
        f"  {name}: one hybrid ranking, median " + ", ".join(f"{k} {v:.1f} ms" for k, v in timings.items()), flush=True
    )
    return rows


def median_ms(retriever: Retriever, questions) -> float:
    """Median milliseconds of one hybrid top-10 ranking (the question's vector is cached by then)."""
    seconds = []
    for q in questions:
        started = time.perf_counter()
        retriever.ranked(q.question, 10, "hybrid")
        seconds.append(time.perf_counter() - started)
    return 1000 * float(np.median(seconds))


def retrievers(index: Index, embedder, uri: str, collection: str, sync: bool) -> tuple[Retriever, dict[str, Retriever]]:
    """The local retriever and two Milvus ones over the same collection (lexical side local or Milvus)."""
    local = Retriever(index, embedder)
    remote = {}
    keys = chunk_keys(index)
    for lexical in ("milvus", "local"):
        store = MilvusStore(StoreChoice("milvus", uri, lexical, collection), index, keys, 100_000)
        if sync and (lexical == "milvus" or "milvus" not in remote):
            try:
                print(f"  Milvus rows inserted, deleted: {store.sync()}", flush=True)
            except RagError as exc:  # a server before Milvus 2.5: no BM25 function
                print(f"  {exc}", flush=True)
                continue
        remote[lexical] = Retriever(index, embedder)
        remote[lexical].backend = store
    return local, remote


def seeds(embedder, server: str | None) -> list[list[object]]:
    base = OUT / "parity-seeds"
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(ROOT / "seeds", base / "corpus")
    settings = replace(Settings(), corpus=(base / "corpus",), index_dir=base / "index")
    index = open_index(settings, embedder.embedder, progress=False)
    local, remote = retrievers(index, embedder, server or str(base / "milvus.db"), "parity_seeds", sync=True)
    questions = [q for q in load_gold(ROOT / "eval" / "seeds_gold.jsonl") if q.answerable]
    return compare("seeds", index, local, remote, questions, by_quote=False)


def read_index(folder: Path) -> Index:
    """An index of another format version, read from its files (documents, offsets, vectors, BM25)."""
    import bm25s
    import faiss

    generation = folder / (folder / "CURRENT").read_text().strip()
    documents = {}
    for line in (generation / "documents.jsonl").open(encoding="utf-8"):
        doc = Document(**json.loads(line))
        documents[doc.id] = doc
    chunks = []
    for line in (generation / "chunks.jsonl").open():
        doc_id, chunk_id, start, end = json.loads(line)
        chunks.append(Chunk(doc_id, chunk_id, start, end, documents[doc_id].text[start:end]))
    manifest = json.loads((generation / "manifest.json").read_text())
    vectors = np.load(generation / "vectors.npy")
    index = Index(documents, chunks, vectors, manifest, generation, faiss.read_index(str(generation / "faiss.index")))
    index._bm25 = bm25s.BM25.load(str(generation / "bm25"))
    return index


def dev(embedder, folder: Path, server: str | None) -> list[list[object]]:
    index = read_index(folder)
    print(f"  dev-2023 index: {len(index.documents)} articles, {len(index.chunks)} chunks", flush=True)
    path = OUT / "parity-dev.db"
    path.unlink(missing_ok=True)
    local, remote = retrievers(index, embedder, server or str(path), "parity_dev", sync=True)
    questions = [q for q in dated(load_gold(DEV), None, True, WEEK_SLACK_DAYS) if q.answerable]
    return compare("dev-2023", index, local, remote, questions, by_quote=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["seeds", "dev"])
    parser.add_argument("--index", required=True, help="an index of the dev-2023 articles")
    parser.add_argument("--uri", help="a Milvus server (default: Milvus Lite files in bench/out/)")
    args = parser.parse_args()
    print(machine(), flush=True)
    embedder = CachedQueries(default_embedder())
    rows = []
    if args.only != "dev":
        rows += seeds(embedder, args.uri)
    if args.only != "seeds":
        rows += dev(embedder, Path(args.index), args.uri)
    print()
    print(table(HEADERS, rows))
    print(machine(), flush=True)


if __name__ == "__main__":
    main()
