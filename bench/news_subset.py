"""A fixed subset of dev-2023 for retrieval quality before/after a change, when a full index is too slow.

Questions: every 4th answerable dev-2023 question (129). Articles: every evidence article of those
questions, plus every 9th of the other dev-2023 articles as distractors, in the file's order. The files
are written to ``OUT_DIR`` (outside the repository; the articles are read by path, never committed):

    .venv/bin/python bench/news_subset.py /tmp/news-subset
    .venv/bin/rag ingest /tmp/news-subset/articles.jsonl --index /tmp/news-subset/index
    .venv/bin/python bench/bench_retrieval_news.py --index /tmp/news-subset/index --questions /tmp/news-subset/questions.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEV = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks" / "newsqa" / "dev-2023"
QUESTION_STEP = 4
DISTRACTOR_STEP = 9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--dev", type=Path, default=DEV)
    args = parser.parse_args()
    questions = [json.loads(line) for line in (args.dev / "questions.jsonl").read_text().splitlines()]
    chosen = [q for q in questions if q.get("answerable")][::QUESTION_STEP]
    evidence = {e["doc_id"] for q in chosen for e in q["evidence"]}
    lines = (args.dev / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    others = [line for line in lines if json.loads(line)["id"] not in evidence][::DISTRACTOR_STEP]
    kept = [line for line in lines if json.loads(line)["id"] in evidence or line in set(others)]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "articles.jsonl").write_text("\n".join(kept) + "\n", encoding="utf-8")
    (args.out_dir / "questions.jsonl").write_text("\n".join(json.dumps(q) for q in chosen) + "\n")
    print(f"{len(chosen)} questions, {len(kept)} articles ({len(evidence)} evidence, the rest distractors)")


if __name__ == "__main__":
    main()
