"""Retrieval quality on the news set: MRR@10 of the answer and evidence-article hit@10.

For each answerable question of ``questions.jsonl`` the shipped retriever (``Retriever.search``, hybrid,
k=10) ranks passages of an existing index. Answer MRR@10: 1 / rank of the first passage holding a gold
answer as whole words (ignoring case), 0 when none of the ten does. Evidence hit@10: whether any of the
ten passages comes from an article a gold evidence quote is taken from.

    .venv/bin/python bench/bench_retrieval_news.py --index /work/scratch/idx-dev
    .venv/bin/python bench/bench_retrieval_news.py --index /work/scratch/idx-dev --passages int8

``--passages fp32|int8`` re-embeds the index's own chunks with the onnxruntime bulk encoder (vectors
cached in bench/out/) and searches those instead, so precisions are compared on identical chunks.
The index is only read.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
from common import OUT, ROOT, machine, table

from rag.search.embedding import default_embedder
from rag.search.retrieval import Retriever
from rag.search.store import Index

DEV = ROOT.parent / "shared" / "benchmarks" / "newsqa" / "dev-2023" / "questions.jsonl"
K = 10


def answer_pattern(answers: list[str]) -> re.Pattern[str]:
    """Any gold answer as whole words, case and runs of whitespace ignored."""
    parts = [r"\s+".join(map(re.escape, a.split())) for a in answers if a.strip()]
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


def swap_vectors(index: Index, precision: str) -> None:
    """Re-embeds the index's chunks with the bulk encoder of ``precision`` (cached by generation)."""
    from rag.search import bulk_encoder
    from rag.search.structures import build_faiss

    assert index.path is not None
    cache = OUT / f"vectors-{index.path.name}-{precision}.npy"
    if cache.is_file():
        vectors = np.load(cache)
    else:
        encoder = bulk_encoder.load(default_embedder(), precision)
        started, vectors, step = time.perf_counter(), [], 2048
        for first in range(0, len(index.chunks), step):
            vectors.append(encoder.encode([c.text for c in index.chunks[first : first + step]]))
            print(f"  embedded {first + step:,} of {len(index.chunks):,} ({time.perf_counter() - started:.0f} s)")
        vectors = np.vstack(vectors)
        OUT.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors)
    cosine = np.sum(vectors * index.vectors, axis=1)
    print(f"{precision} vs stored vectors: cosine min {cosine.min():.5f}, mean {cosine.mean():.5f}")
    index.vectors = vectors
    index._faiss = build_faiss(vectors, index.manifest["faiss"]["type"])


def evaluate(index: Index, questions: list[dict]) -> dict[str, float]:
    retriever = Retriever(index, default_embedder(), mode="hybrid")
    reciprocal, hits = [], []
    for question in questions:
        passages = retriever.search(question["question"], k=K)
        pattern = answer_pattern(question["answers"])
        rank = next((p.rank for p in passages if pattern.search(p.text)), None)
        reciprocal.append(1.0 / rank if rank else 0.0)
        evidence = {e["doc_id"] for e in question["evidence"]}
        hits.append(any(p.doc_id in evidence for p in passages))
    return {"mrr": float(np.mean(reciprocal)), "hit": float(np.mean(hits)), "questions": len(questions)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", required=True, type=Path)
    parser.add_argument("--questions", type=Path, default=DEV)
    parser.add_argument("--passages", choices=["stored", "fp32", "int8"], default="stored")
    args = parser.parse_args()
    print(machine())
    questions = [q for q in map(json.loads, args.questions.read_text().splitlines()) if q.get("answerable")]
    index = Index.load(args.index)
    if args.passages != "stored":
        swap_vectors(index, args.passages)
    started = time.perf_counter()
    scores = evaluate(index, questions)
    chunking = index.manifest.get("chunking", {})
    mean_chars = np.mean([c.end - c.start for c in index.chunks])
    print(
        table(
            [
                "index",
                "chunking",
                "passage vectors",
                "chunks",
                "mean chunk chars",
                "questions",
                "answer MRR@10",
                "evidence hit@10",
            ],
            [
                [
                    str(args.index),
                    f"{chunking.get('max_tokens')}/{chunking.get('overlap_tokens')}",
                    args.passages if args.passages != "stored" else index.manifest["embedder"].get("passages", "torch"),
                    f"{len(index.chunks):,}",
                    f"{mean_chars:.0f}",
                    scores["questions"],
                    f"{scores['mrr']:.4f}",
                    f"{scores['hit']:.4f}",
                ]
            ],
        )
    )
    print(f"searched in {time.perf_counter() - started:.0f} s")
    print(machine())


if __name__ == "__main__":
    main()
