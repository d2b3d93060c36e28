"""Helpers shared by the benchmark scripts: machine facts, timing, tables and the WiCE corpus.

The scripts import it as ``from common import ...`` (they run as ``python bench/NAME.py``).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"  # git-ignored scratch space (corpora, indexes, cached vectors)
WICE = ROOT.parent / "shared" / "benchmarks" / "wice" / "claim_dev.jsonl"
NEWSQA = ROOT.parent / "shared" / "benchmarks" / "newsqa"

sys.path.insert(0, str(ROOT))


def machine() -> str:
    """One line naming the CPU, cores, memory, load and versions, printed above every table."""
    cpu = "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC | {cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB | "
        f"load average {load} | Python {platform.python_version()}"
    )


def parse_size(text: str) -> int:
    """A count from "10k", "1M" or "2.5m"."""
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * scale)


def unit(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32."""
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Latency:
    """Milliseconds per call."""

    p50: float
    p95: float
    mean: float
    n: int


def latency(call: Callable[[object], object], inputs: Iterable[object], warmup: int = 3) -> Latency:
    """Times ``call`` once per input (after ``warmup`` untimed calls) and summarises the milliseconds."""
    inputs = list(inputs)
    for item in inputs[:warmup]:
        call(item)
    times = []
    for item in inputs:
        started = time.perf_counter()
        call(item)
        times.append((time.perf_counter() - started) * 1000)
    return Latency(percentile(times, 50), percentile(times, 95), sum(times) / len(times), len(times))


def peak_rss_mib() -> float:
    """The process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A GitHub-flavoured markdown table (pasted as is into bench/README.md)."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# WiCE as a retrieval benchmark


@dataclass(frozen=True)
class Claim:
    """A WiCE claim used as a query; ``doc_id`` is the article it cites (the gold document)."""

    id: str
    text: str
    doc_id: str


def wice_corpus(limit: int | None = None) -> tuple[Path, list[Claim]]:
    """Writes the distinct cited articles as a .jsonl corpus under bench/out/ and returns it with the claims.

    Each article's sentences become paragraphs (blank-line separated), so the
    corpus loader and chunker see ordinary article text. Articles are keyed by
    their full text: a claim's gold document is the article it cites.
    """
    if not WICE.is_file():
        raise SystemExit(f"{WICE} is missing: the WiCE benchmark lives in ../shared/benchmarks/wice/")
    rows = [json.loads(line) for line in WICE.read_text(encoding="utf-8").splitlines() if line.strip()]
    articles: dict[str, str] = {}
    claims: list[Claim] = []
    for row in rows:
        text = "\n\n".join(s.strip() for s in row["evidence"] if s.strip())
        doc_id = articles.setdefault(text, f"wice-{len(articles):04d}")
        claims.append(Claim(row["meta"]["id"], row["claim"], doc_id))
    if limit is not None:
        keep = set(list(dict.fromkeys(c.doc_id for c in claims))[:limit])
        claims = [c for c in claims if c.doc_id in keep]
        articles = {t: d for t, d in articles.items() if d in keep}
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"wice_articles{'' if limit is None else f'_{limit}'}.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        for text, doc_id in articles.items():
            out.write(json.dumps({"id": doc_id, "title": "", "text": text}, ensure_ascii=False) + "\n")
    return path, claims
