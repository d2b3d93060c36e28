"""Latency of checking a 5-sentence answer against 5 passages, models loaded.

The answer's sentences are taken from (or paraphrase) retrieved seed passages; each
cites one of the 5 passages. Two regimes are timed:

  * warm: the passages were checked before (their analyses and sentence vectors are
    cached by text), as when an answer is re-checked or several answers share passages;
  * cold: every cache is cleared before each run (spaCy and the embedder run on every
    window of every passage).

Attribution search is off (it runs a retrieval per unsupported sentence).

Usage: .venv/bin/python bench/bench_check_speed.py [--runs 30]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.check.checker import CitationChecker
from rag.records import CitedSentence, Evidence

QUESTIONS = [
    "How much of its arms did Cairo buy from the US?",
    "Which countries already have the S-400?",
    "What does CAATSA allow?",
    "Why was Turkey removed from the F-35 program?",
    "What did Erdogan and Putin discuss in Sochi?",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    import torch

    from rag.search.embedding import default_embedder
    from rag.search.index import open_index
    from rag.search.retrieval import Retriever
    from rag.settings import Settings

    embedder = default_embedder()
    index = open_index(Settings(), embedder)
    retriever = Retriever(index, embedder)
    passages = []
    for question in QUESTIONS:
        passages.append(next(p for p in retriever.search(question, k=5) if p not in passages))
    checker = CitationChecker(index, embedder)
    # Each sentence is the first sentence of its passage: a realistic extractive answer.
    items = []
    for rank, p in enumerate(passages, start=1):
        first = checker.windows(Evidence(p.doc_id, p.start, p.end, p.text))[0].text
        items.append(CitedSentence(first, (Evidence(p.doc_id, p.start, p.end, p.text),), (rank,)))
    words = sum(len(p.text.split()) for p in passages)

    def timed(clear: bool) -> list[float]:
        times = []
        for _ in range(args.runs):
            if clear:
                checker.judge.clear_cache()
                checker._sentences.clear()
            started = time.perf_counter()
            checker.check_answer(items, propose=False)
            times.append((time.perf_counter() - started) * 1000)
        return times

    timed(clear=False)  # loads spaCy and fills caches once
    warm = timed(clear=False)
    cold = timed(clear=True)
    report = checker.check_answer(items, propose=False)
    print(f"5-sentence answer, 5 passages ({words} words), {args.runs} runs, torch threads {torch.get_num_threads()}")
    print(f"  verdicts: {[v.verdict for v in report.verdicts]}")
    for name, times in (("warm (passages seen before)", warm), ("cold (no caches)", cold)):
        print(f"  {name:<28} p50 {np.percentile(times, 50):7.1f} ms   p95 {np.percentile(times, 95):7.1f} ms")
    print("  target: <= 50 ms p50")
    return 0


if __name__ == "__main__":
    sys.exit(main())
