"""Citation check of our own answers, as the product runs it: `ask`, then check the answer it returned.

Prints, per question, the time of `ask` and of the check that follows it (models loaded; the
checker shares sentence vectors with the answerer through the embedder's cache), and the p50.

    .venv/bin/python bench/bench_ask_then_check.py [--gold eval/seeds_gold.jsonl]
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import machine

from rag.answer.pipeline import ask
from rag.check.checker import CitationChecker
from rag.evaluate.gold import load_gold
from rag.search.embedding import default_embedder
from rag.search.index import open_index
from rag.search.retrieval import Retriever
from rag.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gold", default="eval/seeds_gold.jsonl")
    args = parser.parse_args()
    print(machine())
    embedder = default_embedder()
    index = open_index(Settings(), embedder)
    retriever = Retriever(index, embedder)
    checker = CitationChecker(index, embedder)
    asked, checked = [], []
    for gold in load_gold(args.gold):
        started = time.perf_counter()
        answer = ask(gold.question, retriever)
        asked.append((time.perf_counter() - started) * 1000)
        if answer.abstained:
            continue
        started = time.perf_counter()
        checker.check_record(answer.to_dict(), propose=False)
        checked.append((time.perf_counter() - started) * 1000)
    print(f"{len(asked)} questions, {len(checked)} answered and checked")
    print(f"ask                p50 {statistics.median(asked):7.1f} ms   max {max(asked):7.1f} ms")
    print(
        f"check after ask    p50 {statistics.median(checked):7.1f} ms   max {max(checked):7.1f} ms   (first: {checked[0]:.0f} ms)"
    )
    print(machine())


if __name__ == "__main__":
    main()
