"""Retriever ablation: dense vs BM25 vs hybrid on a gold set, as one Markdown table.

Usage: .venv/bin/python eval/ablation.py [--gold eval/seeds_gold.jsonl] [--out runs/ablation] [-k 5]
Each retriever's full run (results, metrics, report) is written to OUT/<retriever>/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rag.settings import Settings

COLUMNS = [
    ("recall@1", ("retrieval", "recall@1")),
    ("recall@5", ("retrieval", "recall@5")),
    ("recall@10", ("retrieval", "recall@10")),
    ("MRR", ("retrieval", "mrr")),
    ("EM", ("answers", "exact_match")),
    ("F1", ("answers", "token_f1")),
    ("abstain F1", ("abstention", "f1")),
    ("accuracy", ("accuracy",)),
    ("support", ("citations", "support_rate")),
    ("p50 ms", ("latency", "p50_ms")),
]


def _get(metrics: dict, path: tuple[str, ...]) -> float:
    for key in path:
        metrics = metrics[key]
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", default="eval/seeds_gold.jsonl")
    parser.add_argument("--out", default="runs/ablation")
    parser.add_argument("--split", default="all", choices=["dev", "test", "all"])
    parser.add_argument("-k", type=int, default=5)
    args = parser.parse_args(argv)

    from rag.answer.registry import answerer_for
    from rag.check.checker import CitationChecker
    from rag.evaluate.gold import load_gold
    from rag.evaluate.run import run_evaluation, run_manifest, write_run
    from rag.search.embedding import default_embedder
    from rag.search.index import open_index
    from rag.search.retrieval import Retriever

    questions = load_gold(args.gold, args.split)
    settings = Settings()
    embedder = default_embedder()
    index = open_index(settings, embedder)
    checker = CitationChecker(index, embedder)
    rows = []
    for mode in ("dense", "bm25", "hybrid"):
        retriever = Retriever(index, embedder, mode=mode, rrf_k=settings.rrf_k)
        answerer = answerer_for("extractive", retriever)
        results, metrics = run_evaluation(questions, retriever, answerer, checker, k=args.k, progress=False)
        write_run(
            Path(args.out) / mode,
            results,
            metrics,
            run_manifest(Path(args.gold), retriever, answerer.name, args.k, args.split),
        )
        rows.append((mode, metrics))
        print(f"{mode}: done", file=sys.stderr)

    print(f"| retriever | {' | '.join(name for name, _ in COLUMNS)} |")
    print(f"|---|{'---|' * len(COLUMNS)}")
    for mode, metrics in rows:
        cells = []
        for name, path in COLUMNS:
            value = _get(metrics, path)
            cells.append(f"{value:.0f}" if name.endswith("ms") else f"{value:.3f}")
        print(f"| {mode} | {' | '.join(cells)} |")
    print(f"\n{len(questions)} questions ({args.gold}, split {args.split}), k = {args.k}, answerer extractive.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
