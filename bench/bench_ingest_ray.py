"""`rag ingest --ray` against the local `rag ingest` on the same articles, in one run: articles per second,
the overhead, and the arithmetic for a corpus of millions of articles on N workers.

The corpus is seeds/ plus the first ``--count`` dev-2023 articles (read from ../shared at run time and
written to a temporary folder outside the repository). Each ingest is a fresh process timed from start
to finish (imports, model loading and, for --ray, starting a local Ray instance included), building a
fresh index; the runs alternate local, ray, ray, local, ... so that a change in the machine's load
falls on both. The two indexes are then compared (same chunks, vectors within 1e-5).

    .venv/bin/python bench/bench_ingest_ray.py                          # 60 articles, one round
    .venv/bin/python bench/bench_ingest_ray.py --count 200 --rounds 2 --ray-option=--ray-workers=2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine, table

NEWS = ROOT.parent / "shared" / "benchmarks" / "newsqa" / "dev-2023" / "articles.jsonl"
SCALES = (1_000_000, 100_000_000)  # articles
NODES = (1, 8, 64, 512)  # machines like this one


def run(command: list[str]) -> tuple[float, float]:
    """(wall seconds of ``command``, the build's own seconds from its summary line)."""
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    build = re.search(r"; ([\d.]+) s →", done.stdout)
    return wall, float(build.group(1)) if build else float("nan")


def same_index(first: Path, second: Path) -> str:
    """Whether two indexes hold the same chunks and vectors (within 1e-5), as one line."""
    import numpy as np

    from rag.search.store import Index

    a, b = Index.load(first), Index.load(second)
    same = a.chunks == b.chunks and np.allclose(a.vectors, b.vectors, atol=1e-5)
    gap = float(np.abs(a.vectors - b.vectors).max()) if a.vectors.shape == b.vectors.shape else float("nan")
    return f"same chunks and vectors: {same} ({len(a.chunks)} chunks, largest difference {gap:.1e})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=Path, default=NEWS, help="a .jsonl of news articles")
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument(
        "--rounds", type=int, default=1, help="pairs of runs of each (default 1: local, ray, ray, local)"
    )
    parser.add_argument("--ray", default="auto", help="--ray ADDRESS (default auto: a local instance)")
    parser.add_argument("--ray-option", action="append", default=[], help="more options for the --ray run")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a new temporary one)")
    args = parser.parse_args()
    if not args.articles.is_file():
        raise SystemExit(f"{args.articles} is missing: the news benchmark lives in ../shared/benchmarks/newsqa/")
    print(machine())
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-ingest-ray-"))
    corpus = work / "corpus"
    shutil.copytree(ROOT / "seeds", corpus, dirs_exist_ok=True)
    lines = args.articles.read_text(encoding="utf-8").splitlines()[: args.count]
    (corpus / "news.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    articles = len(lines) + len(list((ROOT / "seeds").iterdir()))
    characters = sum(len(json.loads(line)["text"]) for line in lines)
    print(f"{articles} articles (seeds + {len(lines)} from {args.articles.name}, {characters:,} characters)")
    rag = str(Path(sys.executable).with_name("rag"))
    commands = {
        "local": [rag, "ingest", str(corpus), "-q"],
        "ray": [rag, "ingest", str(corpus), "-q", "--ray", args.ray, *args.ray_option],
    }
    times: dict[str, list[tuple[float, float]]] = {"local": [], "ray": []}
    for name in ["local", "ray", "ray", "local"] * args.rounds:
        index = work / f"index-{name}"
        shutil.rmtree(index, ignore_errors=True)
        load = os.getloadavg()[0]
        times[name].append(run([*commands[name], "--index", str(index)]))
        print(f"  {name}: {times[name][-1][0]:.1f} s wall, build {times[name][-1][1]:.1f} s (load {load:.1f})")
    print(same_index(work / "index-local", work / "index-ray"))

    def mean(name: str, part: int) -> float:
        return sum(t[part] for t in times[name]) / len(times[name])

    rows = [
        [
            name,
            f"{mean(name, 0):.1f}",
            f"{articles / mean(name, 0):.2f}",
            f"{mean(name, 1):.1f}",
            f"{articles / mean(name, 1):.2f}",
        ]
        for name in ("local", "ray")
    ]
    print(table(["ingest", "wall s", "articles/s (wall)", "build s", "articles/s (build)"], rows))
    overhead = mean("ray", 0) / mean("local", 0) - 1
    print(
        f"**--ray overhead: {overhead:+.0%} of the local wall time** (the build alone: {mean('ray', 1) / mean('local', 1) - 1:+.0%})"
    )
    scaling(articles / mean("ray", 1))
    print(machine())


def scaling(rate: float) -> None:
    """Hours for large corpora on N machines like this one, if the cluster scales linearly."""
    cores = os.cpu_count() or 1
    print(
        f"\nscaling: {1 / rate:.2f} s per article on this machine ({cores} cores), {cores / rate:.2f} core-seconds "
        "per article (the build's time, start-up left out)"
    )
    rows = [[n, n * cores] + [f"{count / rate / n / 3600:,.1f}" for count in SCALES] for n in NODES]
    print(table(["machines", "cores", *(f"hours for {c:,} articles" for c in SCALES)], rows))


if __name__ == "__main__":
    main()
