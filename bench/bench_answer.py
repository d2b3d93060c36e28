"""Latency of `rag ask` on the seed articles: per question with the models loaded, and the CLI's cold start.

    .venv/bin/python bench/bench_answer.py            # 20 questions × 3 passes, then 3 cold CLI runs
    .venv/bin/python bench/bench_answer.py --no-cli   # in-process figures only

Three in-process figures, each p50 / p95 over the same questions (the seed
questions of tests/test_answering.py and a few more):
- *cold caches*: models loaded, but no sentence of the corpus analysed or embedded
  yet (spaCy and sentence vectors are cached per paragraph and per sentence);
- *warm*: the same questions again, caches filled;
- *prepared*: after `ExtractiveAnswerer.prepare(index)`, which analyses and
  embeds every sentence up front (what a server does at start-up).
Each `ask` is: clean the question, retrieve k=5 (hybrid), answer, abstain or not.
Cold start: wall time of `rag ask "…"` as a fresh process (imports, model loads,
index load, one question). Torch is limited to 2 threads, as on the target machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from common import ROOT, machine, percentile

QUESTIONS = [
    "When were the doubts about Turkey's plan to buy Russian air-defence missiles settled?",
    "Which security analyst focuses on Russia?",
    "How many countries already have the S-300 deployed?",
    "Which law allows the US government to penalise countries doing business with Russia's defence companies?",
    "When is India due to get its first shipment of S-400s?",
    "Who is the Turkish president?",
    "In which year was Turkey's first batch of missiles officially delivered?",
    "Who heads Turkey's Defense Industry Directorate?",
    "When did the US impose sanctions on the Defense Industry Directorate's chief?",
    "In which city did Erdogan and Putin hold their meeting?",
    "Which US Secretary of State thanked Turkish officials for their logistical support?",
    "Which US president's administration held talks with Erdogan's government?",
    "Which fighter jet programme was Turkey removed from after buying the S-400s?",
    "Which law lets the US penalise buyers of Russian arms, and was Turkey sanctioned under it?",
    "What was the value of Turkey's S-400 contract?",
    "How much did Turkey pay Russia for the S-400 systems?",
    "What percentage of India's weapons come from Russia?",
    "How many S-400 batteries has China deployed?",
    "Who won the 2018 FIFA World Cup?",
    "Why did the US sanction Turkey?",
]


def timed(fn, questions) -> list[float]:
    out = []
    for q in questions:
        t = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t) * 1000)
    return out


def line(name: str, ms: list[float]) -> str:
    return f"{name:<28} p50 {percentile(ms, 50):7.1f} ms   p95 {percentile(ms, 95):7.1f} ms   (n={len(ms)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-cli", action="store_true", help="skip the cold-start runs of the CLI")
    parser.add_argument("--cli-runs", type=int, default=3)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    from rag.answer.extractive import ExtractiveAnswerer
    from rag.answer.pipeline import ask
    from rag.ingest.sentences import nlp
    from rag.search.embedding import default_embedder
    from rag.search.index import open_index
    from rag.search.retrieval import Retriever
    from rag.settings import Settings

    print(machine())
    t = time.perf_counter()
    embedder = default_embedder()
    index = open_index(Settings(), embedder, rebuild=False)
    nlp()
    retriever = Retriever(index, embedder)
    print(
        f"load models + index: {time.perf_counter() - t:.2f} s ({len(index.documents)} documents, {len(index)} chunks)"
    )
    retriever.search("warm up", k=5)
    embedder.encode_query("warm up")

    answerer = ExtractiveAnswerer(embedder)
    cold = timed(lambda q: ask(q, retriever, answerer), QUESTIONS)
    warm = timed(lambda q: ask(q, retriever, answerer), QUESTIONS * 2)
    prepared_answerer = ExtractiveAnswerer(embedder)
    t = time.perf_counter()
    prepared_answerer.prepare(index)
    prepare_s = time.perf_counter() - t
    prepared = timed(lambda q: ask(q, retriever, prepared_answerer), QUESTIONS * 2)
    retrieval = timed(lambda q: retriever.search(q, k=5), QUESTIONS * 2)
    print(line("ask, cold caches", cold))
    print(line("ask, warm", warm))
    print(line("ask, prepared", prepared) + f"   prepare() {prepare_s:.2f} s")
    print(line("  of which retrieval", retrieval))

    if not args.no_cli:
        walls = []
        for _ in range(args.cli_runs):
            t = time.perf_counter()
            subprocess.run(
                [str(ROOT / ".venv" / "bin" / "rag"), "ask", QUESTIONS[7], "--no-rebuild"],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            walls.append(time.perf_counter() - t)
        print(
            f'CLI cold start `rag ask "{QUESTIONS[7]}"`: '
            + ", ".join(f"{w:.1f} s" for w in walls)
            + f" (median {sorted(walls)[len(walls) // 2]:.1f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
