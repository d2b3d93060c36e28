"""Retrieval on dated gold questions as of week + N days, for several N: how `rag eval`'s week slack was chosen.

For every answerable question: the passages of `Retriever.dated(week + N days)` to depth 10, scored as
`rag eval` scores retrieval (MRR, evidence recall@k, and whether any gold quote is in the top 10).
No answering, so it takes minutes where `rag eval` takes an hour. The figures are in eval/README.md.

    .venv/bin/python eval/as_of_slack.py --index /path/to/dev-2023-index \\
        [--questions ../shared/benchmarks/newsqa/dev-2023/questions.jsonl] [--slacks 0 1 2 3 5 7]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_QUESTIONS = ROOT.parent / "shared" / "benchmarks" / "newsqa" / "dev-2023" / "questions.jsonl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", required=True, help="an index of the questions' articles")
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help="gold jsonl with a week per row")
    parser.add_argument("--slacks", type=int, nargs="+", default=[0, 1, 2, 3, 5, 7], help="days after the week")
    args = parser.parse_args(argv)

    from rag.errors import RagError
    from rag.evaluate.gold import load_gold
    from rag.evaluate.metrics import evidence_ranks, recall_at, reciprocal_rank
    from rag.search.embedding import default_embedder
    from rag.search.index import open_index
    from rag.search.retrieval import Retriever
    from rag.settings import Settings
    from rag.text import locate_quote
    from rag.validation import clean_question

    try:
        questions = [q for q in load_gold(args.questions) if q.answerable and q.week]
        embedder = default_embedder()
        index = open_index(replace(Settings(), index_dir=Path(args.index)), embedder, rebuild=False)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    retriever = Retriever(index, embedder)
    spans = {}
    for q in questions:
        located = [(e.doc_id, locate_quote(index.documents[e.doc_id].text, e.quote)) for e in q.evidence]
        spans[q.id] = [(doc_id, *where) if where else None for doc_id, where in located]
    print(f"{len(questions)} answerable questions with a week; hybrid retrieval to depth 10")
    print("| as-of | MRR | recall@1 | recall@5 | recall@10 | any quote in top 10 |\n|---|---|---|---|---|---|")
    for slack in [None, *args.slacks]:
        rows = []
        for q in questions:
            dated = retriever if slack is None or q.week is None else retriever.dated(q.week + timedelta(days=slack))
            passages = [p.to_dict() for p in dated.search(clean_question(q.question), k=10)]
            ranks = evidence_ranks(spans[q.id], passages)
            found = float(any(r is not None for r in ranks))
            rows.append((reciprocal_rank(ranks), recall_at(ranks, 1), recall_at(ranks, 5), recall_at(ranks, 10), found))
        means = [sum(r[i] for r in rows) / len(rows) for i in range(5)]
        name = "none" if slack is None else f"week + {slack}"
        print(f"| {name} | " + " | ".join(f"{m:.4f}" for m in means) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
