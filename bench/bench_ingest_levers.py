"""The ingest levers one at a time, in one process, on the same news articles and the same chunks.

Embedding: sentence-transformers (torch, batch 32, which sorts by length itself), onnxruntime float32
in length-sorted batches (what `rag ingest` uses), the same graph in batches of corpus order, and the
int8 graph. Parsing: spaCy's full pipeline (what the stored analysis needs), the parser alone (what
sentence boundaries need) and the `senter`, on the same paragraphs; the sentence boundaries of each
against the full pipeline's. Figures are CPU seconds of this process (all threads): on cores shared
with other jobs wall time measures the neighbours more than the lever.

    .venv/bin/python bench/bench_ingest_levers.py --count 60
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from common import ROOT, machine, table

from rag.ingest.analysis import components, parse_articles
from rag.ingest.chunking import chunk_document
from rag.records import Document
from rag.search import bulk_encoder
from rag.search.embedding import default_embedder
from rag.settings import AnalysisSettings, ChunkSettings

NEWS = ROOT.parent / "shared" / "benchmarks" / "newsqa" / "dev-2023" / "articles.jsonl"


def clock(work):
    """(CPU seconds of this process, all threads, result): wall time means little on shared cores."""
    started = time.process_time()
    result = work()
    return time.process_time() - started, result


def note(rows: list[list[str]], row: list[str]) -> None:
    """Keeps a row for the final table and prints it at once (a long run shows what it has so far)."""
    rows.append(row)
    print(" | ".join(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=Path, default=NEWS)
    parser.add_argument("--count", type=int, default=60)
    args = parser.parse_args()
    print(machine())
    lines = args.articles.read_text(encoding="utf-8").splitlines()[: args.count]
    articles = [(a["id"], a["text"]) for a in map(json.loads, lines)]
    print(f"{len(articles)} articles, {sum(len(t) for _, t in articles):,} characters")
    rows = []
    sentences = {}
    for boundary, store in (("parser", True), ("parser", False), ("senter", False)):
        settings = AnalysisSettings(boundary)
        parse_articles(articles[:1], settings, store)  # loads the pipeline outside the timing
        seconds, parses = clock(lambda s=settings, st=store: list(parse_articles(articles, s, st)))
        sentences[(boundary, store)] = [p.sentences for p in parses]
        same = np.mean([a == b for a, b in zip(sentences[(boundary, store)], sentences[("parser", True)])])
        note(rows, [f"spaCy {'+'.join(components(settings, store))}", f"{seconds:.1f}", f"{same:.3f}"])
    embedder = default_embedder()
    chunks = [
        doc.text[c.start : c.end]
        for (doc_id, text), parse in zip(articles, sentences[("parser", True)])
        for doc in [Document(id=doc_id, title="", text=text)]
        for c in chunk_document(doc, ChunkSettings(), fits=embedder.fits, sentences=parse)
    ]
    print(f"{len(chunks)} chunks of ChunkSettings() (160/40 tokens)")
    reference = embedder.encode_with_model(chunks[:8], progress=False)
    seconds, torch_vectors = clock(lambda: embedder.model.encode(chunks, batch_size=32, normalize_embeddings=True))
    note(rows, ["embed: sentence-transformers, batch 32", f"{seconds:.1f}", ""])
    for precision in ("fp32", "int8"):
        encoder = bulk_encoder.load(embedder, precision)
        seconds, vectors = clock(lambda e=encoder: e.encode(chunks))
        cosine = float(np.min(np.sum(vectors * torch_vectors, axis=1)))
        note(rows, [f"embed: onnxruntime {precision}, length-sorted", f"{seconds:.1f}", f"min cosine {cosine:.5f}"])
        if precision == "fp32":

            def unsorted(e=encoder):
                return np.vstack(
                    [
                        e._encode_group([e.tokenizer.encode(t).ids for t in chunks[i : i + 32]])
                        for i in range(0, len(chunks), 32)
                    ]
                )

            seconds, _ = clock(unsorted)
            note(rows, ["embed: onnxruntime fp32, batches of 32 in corpus order", f"{seconds:.1f}", ""])
    assert np.allclose(reference, torch_vectors[:8], atol=1e-4)
    print(table(["lever", "CPU seconds", "same sentences as the full pipeline / vectors"], rows))
    print(machine())


if __name__ == "__main__":
    main()
