"""The transformer graphs with and without torch's attention guards (``rag/search/onnx_graph.py``), on
real news: the span head reading a question with 4 passages, and the int8 passage encoder embedding a
batch of chunks as `rag ingest` does. Both sessions of a graph run in one process on the same inputs,
calls interleaved, so the ratio holds on a noisy machine; the outputs are compared element by element.
With ``--index`` (a dev-2023 index), the whole answer too: each question asked with the head's lean
session and with the one as exported, in turn, and the answers compared.

    .venv/bin/python bench/bench_lean_graphs.py --count 40 [--index DEV-INDEX]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from common import NEWSQA, machine, percentile, table

from rag.answer.reader.span_head import GRAPH_FILE, THREADS, load_span_head
from rag.ingest.chunking import chunk_document
from rag.records import Document, Passage
from rag.search import bulk_encoder
from rag.search.embedding import default_embedder
from rag.search.query_encoder import cpu_session
from rag.settings import ChunkSettings

READ_TOGETHER = 4  # passages the shipped reader's head reads per question
BATCH = 64  # chunks a timed embedding call takes


def interleaved(session_a, session_b, calls: list, rounds: int) -> tuple[list[float], list[float], float]:
    """Milliseconds per call of ``call(session)`` for each session, alternating which goes first, and the
    largest absolute difference between their outputs."""
    times: tuple[list[float], list[float]] = ([], [])
    largest = 0.0
    for turn in range(rounds):
        for n, call in enumerate(calls):
            outputs = []
            for which in (0, 1) if (turn + n) % 2 else (1, 0):
                started = time.perf_counter()
                outputs.append(call((session_a, session_b)[which]))
                times[which].append((time.perf_counter() - started) * 1000)
            largest = max(largest, max(float(np.max(np.abs(a - b))) for a, b in zip(*outputs)))
    return times[0], times[1], largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=Path, default=NEWSQA / "dev-2023" / "articles.jsonl")
    parser.add_argument("--questions", type=Path, default=NEWSQA / "dev-2023" / "questions.jsonl")
    parser.add_argument("--count", type=int, default=40, help="questions (span head) and batches (encoder)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--index", type=Path, help="an index of the --articles' corpus: also time whole answers")
    args = parser.parse_args()
    print(machine())
    embedder = default_embedder()
    lines = args.articles.read_text(encoding="utf-8").splitlines()[: args.count * 2]
    documents = [Document(id=a["id"], title=a.get("title", ""), text=a["text"]) for a in map(json.loads, lines)]
    chunks = [
        Passage(doc.id, c.chunk_id, c.start, c.end, c.text, 0.0, 1 + n % READ_TOGETHER)
        for doc in documents
        for n, c in enumerate(chunk_document(doc, ChunkSettings(), fits=embedder.fits))
    ]
    questions = [json.loads(line)["question"] for line in args.questions.read_text(encoding="utf-8").splitlines()]
    rows = []

    head = load_span_head(embedder.path / "tokenizer.json")
    plain, lean = cpu_session(GRAPH_FILE, THREADS), cpu_session(GRAPH_FILE, THREADS, lean=True)

    def reading(question: str, passages: list[Passage]):
        def call(session) -> list[np.ndarray]:
            head.session = session
            return [array for logits in head.read(question, passages) for array in (logits.starts, logits.ends)]

        return call

    reads = [
        reading(questions[n % len(questions)], chunks[n * READ_TOGETHER : (n + 1) * READ_TOGETHER])
        for n in range(min(args.count, len(chunks) // READ_TOGETHER))
    ]
    rows.append(["span head: a question with 4 passages", *summary(*interleaved(plain, lean, reads, args.rounds))])

    encoder = bulk_encoder.load(embedder, "int8")
    plain, lean = cpu_session(encoder.path), cpu_session(encoder.path, lean=True)

    def embedding(texts: list[str]):
        def call(session) -> list[np.ndarray]:
            encoder.session = session
            return [encoder.encode(texts)]

        return call

    texts = [c.text for c in chunks]
    batches = [embedding(texts[i : i + BATCH]) for i in range(0, min(len(texts), args.count * BATCH), BATCH)]
    rows.append([f"passage encoder (int8): {BATCH} chunks", *summary(*interleaved(plain, lean, batches, args.rounds))])
    if args.index:
        rows.append(answer_row(args.index, head, questions[: args.count * 2]))
    print(
        table(
            ["graph", "calls", "p50 ms as exported", "p50 ms lean", "lean / as exported", "largest |difference|"], rows
        )
    )


def answer_row(index_dir: Path, head, questions: list[str]) -> list[object]:
    """`ask` with the learned reader, its head's session lean and as exported in turn (one torch thread,
    as bench_reader.py asks)."""
    import torch

    from rag.answer.pipeline import ask
    from rag.answer.registry import answerer_for
    from rag.search.index import open_index
    from rag.search.retrieval import Retriever
    from rag.settings import Settings

    torch.set_num_threads(1)
    embedder = default_embedder()
    retriever = Retriever(open_index(Settings(index_dir=index_dir), embedder, rebuild=False), embedder)
    answerer = answerer_for("reader", retriever)
    questions = list(dict.fromkeys(questions))
    for question in questions[-5:]:
        ask(question, retriever, answerer)
    plain, lean = cpu_session(GRAPH_FILE, THREADS), cpu_session(GRAPH_FILE, THREADS, lean=True)
    times: tuple[list[float], list[float]] = ([], [])
    differing = 0
    for n, question in enumerate(questions):
        answers = {}
        for which in (0, 1) if n % 2 else (1, 0):
            head.session = (plain, lean)[which]
            started = time.perf_counter()
            answers[which] = ask(question, retriever, answerer)
            times[which].append((time.perf_counter() - started) * 1000)
        differing += answers[0] != answers[1]
    return [f"`ask`, learned reader ({differing} of {len(questions)} answers differ)", *summary(*times, 0.0)[:-1], "–"]


def summary(plain: list[float], lean: list[float], largest: float) -> list[object]:
    p50_plain, p50_lean = percentile(plain, 50), percentile(lean, 50)
    return [len(plain), p50_plain, p50_lean, f"{p50_lean / p50_plain:.3f}", f"{largest:g}"]


if __name__ == "__main__":
    main()
