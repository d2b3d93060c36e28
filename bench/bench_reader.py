"""Latency of `ask` with the learned reader on a real news corpus, beside the rule-based answerer.

    .venv/bin/python bench/bench_reader.py --index DIR --gold QUESTIONS.jsonl [--limit 100]

For example on dev-2023 (2,202 articles; its index built with `rag ingest
../shared/benchmarks/newsqa/dev-2023/articles.jsonl --index DIR`). With the models loaded and one
warm-up pass over other questions, each distinct question is asked once (p50/p95 ms): retrieval of
the passages the answerer reads (10 for the reader, k=5 for the rules), reading, abstention. When the
index stores the sentence analysis (`analysis` artefact) no paragraph is parsed at question time;
otherwise parsing is part of the figure (the first sight of a paragraph), which the table says.
Torch and the ranker use one thread each, as a server slot would. ``--dated`` adds the reader asked as
of each question's gold week (as ``rag eval`` and ``rag ask --as-of`` search), the same questions
interleaved with the undated reader, as a p50 ratio.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import latency, machine, percentile, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", required=True)
    parser.add_argument("--gold", required=True, help="questions.jsonl (only the question text is read)")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--answerers", default="reader,extractive")
    parser.add_argument(
        "--span-reads",
        default="0",
        help="passages the span head reads, to time beside the shipped depth (comma-separated; default 0: off)",
    )
    parser.add_argument("--dated", action="store_true", help="also time the reader asked as of each question's week")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from pathlib import Path

    from rag.answer.pipeline import ask
    from rag.answer.registry import answerer_for
    from rag.evaluate.gold import WEEK_SLACK_DAYS, dated, load_gold
    from rag.search.embedding import default_embedder
    from rag.search.index import open_index
    from rag.search.retrieval import Retriever
    from rag.settings import Settings

    gold = dated(load_gold(args.gold), None, use_gold=True, week_slack=WEEK_SLACK_DAYS)
    as_of: dict = {}
    for q in gold:
        as_of.setdefault(q.question, q.as_of)  # a question asked in two weeks: its first
    questions = list(dict.fromkeys(q.question for q in gold))
    warmup, timed = questions[-10:], questions[: args.limit]
    embedder = default_embedder()
    index = open_index(Settings(index_dir=Path(args.index)), embedder, rebuild=False)
    retriever = Retriever(index, embedder)
    stored = "stored" if "analysis" in index.artefacts else "parsed at question time"
    print(machine())
    print(f"{len(index.documents)} articles, {len(index)} chunks; sentence analysis: {stored}")
    rows = []
    for name in args.answerers.split(","):
        answerer = answerer_for(name, retriever)
        for question in warmup:
            ask(question, retriever, answerer)
        figures = latency(lambda q, a=answerer: ask(str(q), retriever, a), timed, warmup=0)
        rows.append([name, figures.n, figures.p50, figures.p95, figures.mean])
    print(table(["answerer", "questions", "p50 ms", "p95 ms", "mean ms"], rows))
    if "reader" in args.answerers.split(","):
        span_head_cost(retriever, timed, [int(n) for n in args.span_reads.split(",")])
        if args.dated:
            dated_cost(retriever, timed, as_of)


def dated_cost(retriever, questions: list[str], as_of: dict) -> None:
    """The reader asked undated and as of each question's week, alternating which goes first: what
    searching the corpus as of a date costs, as a ratio measured in the same run."""
    from rag.answer.pipeline import ask
    from rag.answer.registry import answerer_for

    answerer = answerer_for("reader", retriever)
    times: dict[str, list[float]] = {"undated": [], "as of its week": []}
    for number, question in enumerate(questions):
        variants = [("undated", retriever), ("as of its week", retriever.dated(as_of[question]))]
        for name, searcher in variants[number % 2 :] + variants[: number % 2]:
            started = time.perf_counter()
            ask(question, searcher, answerer)
            times[name].append((time.perf_counter() - started) * 1000)
    undated_p50 = percentile(times["undated"], 50)
    rows = [
        [name, len(t), percentile(t, 50), percentile(t, 95), sum(t) / len(t), percentile(t, 50) / undated_p50]
        for name, t in times.items()
    ]
    print("\nsearching as of the question's week, the same questions interleaved:")
    print(table(["reader", "questions", "p50 ms", "p95 ms", "mean ms", "p50 / undated"], rows))


def span_head_cost(retriever, questions: list[str], depths: list[int]) -> None:
    """The reader as shipped against the same reader with its span head reading other numbers of passages
    (0: off), each question asked of every variant in turn (rotating which goes first, so none gets the
    others' warm caches): the head's cost as a ratio measured in the same run."""
    from dataclasses import replace

    from rag.answer.pipeline import ask
    from rag.answer.registry import answerer_for

    shipped = answerer_for("reader", retriever)
    reads = shipped.span_head_reads()
    variants = {f"span head reading {reads} (shipped)": shipped}
    variants |= {f"span head reading {n}" if n else "span head off": replace(shipped, span_reads=n) for n in depths}
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants.items())
    for number, question in enumerate(questions):
        for name, answerer in order[number % len(order) :] + order[: number % len(order)]:
            started = time.perf_counter()
            ask(question, retriever, answerer)
            times[name].append((time.perf_counter() - started) * 1000)
    shipped_p50 = percentile(next(iter(times.values())), 50)
    rows = [
        [name, len(t), percentile(t, 50), percentile(t, 95), sum(t) / len(t), percentile(t, 50) / shipped_p50]
        for name, t in times.items()
    ]
    print("\nthe span head's cost, the same questions interleaved:")
    print(table(["reader", "questions", "p50 ms", "p95 ms", "mean ms", "p50 / shipped"], rows))


if __name__ == "__main__":
    main()
