"""Large documents: time and peak memory to cut a huge article, and how soon `rag ingest` shows progress.

Three measurements, each in a fresh process (peak memory is per process):

1. cutting one article that is a single paragraph of 1.2 million characters (over spaCy's 1,000,000
   limit, error E088 before) into chunks: seconds and peak RSS;
2. `rag ingest` of a 10 kB, a 100 kB and a 1 MB article (ordinary paragraphs): wall seconds and peak
   RSS, embedding included (the smaller ones show what the models alone take);
3. `rag ingest` of a 50 MB file: seconds until the first progress bar reaches the terminal (the run is
   then stopped: embedding 50 MB takes hours on two cores).

The articles are built from the seed articles' sentences and written to bench/out/ (ignored by git).

    .venv/bin/python bench/bench_large_documents.py
"""

from __future__ import annotations

import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import OUT, ROOT, machine, table

CUT = """
import resource, sys, time
from rag.ingest.chunking import chunk_document
from rag.records import Document
text = open(sys.argv[1], encoding="utf-8").read()
started = time.perf_counter()
chunks = chunk_document(Document(id="huge", title="Huge", text=text))
print(len(text), len(chunks), time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def seed_text() -> str:
    from rag.ingest.reading import load_corpus

    return "\n\n".join(d.text for d in load_corpus([ROOT / "seeds"]))


def write_article(path: Path, size: int, one_paragraph: bool) -> Path:
    text = seed_text()
    if one_paragraph:
        text = " ".join(text.split())
    body = ("Large Test Article\n\n" + (text + (" " if one_paragraph else "\n\n")) * (size // len(text) + 1))[:size]
    path.write_text(body.rsplit(" ", 1)[0] + ".\n", encoding="utf-8")
    return path


def cut_huge_paragraph() -> list[object]:
    article = write_article(OUT / "huge_paragraph.txt", 1_200_000, one_paragraph=True)
    run = subprocess.run(
        [sys.executable, "-c", CUT, str(article)], capture_output=True, text=True, cwd=ROOT, check=True
    )
    chars, chunks, seconds, rss = run.stdout.split()
    return [
        "cut a 1.2M-character paragraph into chunks",
        f"{int(chars):,} chars, {chunks} chunks",
        float(seconds),
        float(rss),
    ]


MEASURED = """
import resource, sys
from rag.cli import main
code = main(sys.argv[1:])
print(code, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def corpus_of(work: str, size: int) -> Path:
    corpus = Path(work) / "corpus"
    corpus.mkdir()
    write_article(corpus / f"article_{size}.txt", size, one_paragraph=False)
    return corpus


def ingest_article(size: int, what: str) -> list[object]:
    with tempfile.TemporaryDirectory(dir=OUT) as work:
        corpus = corpus_of(work, size)
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-c", MEASURED, "ingest", str(corpus), "--index", str(Path(work) / "index"), "-q"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
    code, rss = run.stdout.split()[-2:]
    assert code == "0", run.stderr
    return [what, f"{size:,} chars", seconds, float(rss)]


def first_progress_of_fifty_megabytes() -> list[object]:
    with tempfile.TemporaryDirectory(dir=OUT) as work:
        corpus = corpus_of(work, 50_000_000)
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "rag", "ingest", str(corpus), "--index", str(Path(work) / "index")],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        first = None
        try:
            while first is None and time.perf_counter() - started < 600:
                ready, _, _ = select.select([process.stderr], [], [], 1.0)
                if ready and b"%|" in process.stderr.read1(4096):
                    first = time.perf_counter() - started
        finally:
            process.kill()
            process.wait()
    return [
        "rag ingest of a 50 MB article: first progress bar after",
        "50,000,000 chars",
        first if first is not None else "none in 600 s",
        "-",
    ]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    print(machine())
    rows = [
        cut_huge_paragraph(),
        ingest_article(10_000, "rag ingest of a 10 kB article (few chunks: the ONNX path, no torch)"),
        ingest_article(100_000, "rag ingest of a 100 kB article (torch embeds it)"),
        ingest_article(1_000_000, "rag ingest of a 1 MB article (embedding included)"),
        first_progress_of_fifty_megabytes(),
    ]
    print(table(["what", "size", "seconds", "peak RSS MiB"], rows))
    print(machine())


if __name__ == "__main__":
    main()
