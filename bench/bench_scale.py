"""FAISS at scale: exact against approximate search on synthetic sets of 10k, 100k and 1M chunks.

    .venv/bin/python bench/bench_scale.py                          # 10k,100k,1M; flat, HNSW, IVF
    .venv/bin/python bench/bench_scale.py --sizes 10k,100k --methods flat,ivf
    nohup .venv/bin/python bench/bench_scale.py > bench/out/scale.log 2>&1 &   # the 1M HNSW build is slow

Two synthetic sets, 384-d unit vectors, inner product (= cosine):
- ``random``: Gaussian directions. No structure at all, the worst case for
  approximate search: reported for latency (its recall is a floor, not a forecast).
- ``realistic``: the real chunk vectors of the WiCE articles (written by
  bench_wice_retrieval.py) expanded to N by random mixtures of two of them plus
  noise, re-normalised; queries are the real WiCE claim vectors.
Latency is one query per call through the app's own ``_search_one`` (one
FAISS thread, see rag/search/backend.py), query vector given; builds use 2 threads. Recall@10 is the share of the exact top-10 that the approximate top-10 finds.
Memory is the serialised size of the FAISS structure per chunk (the Index also
keeps the float32 matrix itself: 1,536 bytes a chunk).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import OUT, latency, machine, parse_size, table, unit

DIM = 384
QUERIES = 200
HNSW_SETTINGS = [(32, 80)]  # (M, efConstruction); efSearch is swept at search time
EF_SEARCH = [16, 32, 64, 128]
NPROBE = [8, 16, 32, 64]


def random_set(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n random unit vectors and QUERIES random unit queries."""
    data = np.empty((n, DIM), np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        data[start:stop] = unit(rng.standard_normal((stop - start, DIM), dtype=np.float32))
    return data, unit(rng.standard_normal((QUERIES, DIM), dtype=np.float32))


def realistic_set(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """Real WiCE chunk vectors expanded to n by noisy mixtures; queries are real claim vectors."""
    # The full WiCE run's vectors, else those of the largest --docs subset run.
    candidates = sorted(OUT.glob("wice_chunks*.npy"), key=lambda p: (p.stem == "wice_chunks", p.stat().st_size))
    if not candidates:
        return None
    chunks_path = candidates[-1]
    claims_path = chunks_path.with_name(chunks_path.name.replace("wice_chunks", "wice_claims"))
    if not claims_path.is_file():
        return None
    print(f"  realistic set from {chunks_path.name} and {claims_path.name}", flush=True)
    real, claims = np.load(chunks_path), np.load(claims_path)
    data = np.empty((n, DIM), np.float32)
    keep = min(n, len(real))
    data[:keep] = real[:keep]
    noise = 0.3 / np.sqrt(DIM)  # noise of norm ~0.3 against unit vectors
    for start in range(keep, n, 100_000):
        stop = min(n, start + 100_000)
        m = stop - start
        weight = rng.uniform(0.5, 1.0, (m, 1)).astype(np.float32)
        mix = weight * real[rng.integers(0, len(real), m)] + (1 - weight) * real[rng.integers(0, len(real), m)]
        data[start:stop] = unit(mix + rng.normal(0, noise, (m, DIM)).astype(np.float32))
    return data, claims.astype(np.float32)


def size_bytes(index) -> int:
    import faiss

    return int(faiss.serialize_index(index).size)


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


class Rows(list):
    """Result rows, each also printed as a table line the moment it is measured."""

    def append(self, row: list[object]) -> None:
        super().append(row)
        print(table(HEADERS, [row]).splitlines()[-1], flush=True)


HEADERS = ["set", "chunks", "index", "search param", "build s", "p50 ms", "p95 ms", "recall@10", "bytes/chunk"]


def run(name: str, data: np.ndarray, queries: np.ndarray, methods: list[str], rows: list[list[object]]) -> None:
    import faiss

    from rag.search.backend import SEARCH_THREADS  # the app's own one-query search
    from rag.search.backend import search_one as _search_one

    n = len(data)
    single = [q.reshape(1, -1) for q in queries]

    started = time.perf_counter()
    flat = faiss.IndexFlatIP(DIM)
    flat.add(data)
    build = time.perf_counter() - started
    _, truth = flat.search(queries, 10)
    lat = latency(lambda q: _search_one(flat, q, 10), single)
    if "flat" in methods:
        rows.append(
            [
                name,
                f"{n:,}",
                "exact (IndexFlatIP)",
                f"{SEARCH_THREADS} thread",
                build,
                lat.p50,
                lat.p95,
                1.0,
                size_bytes(flat) / n,
            ]
        )
        both = latency(lambda q: flat.search(q, 10), single[:50])  # OpenMP default: all threads
        rows.append(
            [
                name,
                f"{n:,}",
                "exact (IndexFlatIP)",
                f"{faiss.omp_get_max_threads()} threads",
                build,
                both.p50,
                both.p95,
                1.0,
                size_bytes(flat) / n,
            ]
        )
    print(f"  {name} {n:,}: flat p95 {lat.p95:.1f} ms", flush=True)

    if "ivf" in methods:
        nlist = int(4 * np.sqrt(n))
        started = time.perf_counter()
        quantizer = faiss.IndexFlatIP(DIM)
        ivf = faiss.IndexIVFFlat(quantizer, DIM, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = data[np.random.default_rng(1).choice(n, min(n, 40 * nlist), replace=False)]  # faiss warns below 39
        ivf.train(sample)
        ivf.add(data)
        build = time.perf_counter() - started
        memory = size_bytes(ivf) / n
        for nprobe in NPROBE:
            ivf.nprobe = nprobe
            _, found = ivf.search(queries, 10)
            lat = latency(lambda q: _search_one(ivf, q, 10), single)
            rows.append(
                [
                    name,
                    f"{n:,}",
                    f"IVF{nlist},Flat",
                    f"nprobe={nprobe}",
                    build,
                    lat.p50,
                    lat.p95,
                    recall_at_10(found, truth),
                    memory,
                ]
            )
        print(f"  {name} {n:,}: ivf built in {build:.0f} s", flush=True)
        del ivf

    if "hnsw" in methods:
        for m, ef_construction in HNSW_SETTINGS:
            started = time.perf_counter()
            hnsw = faiss.IndexHNSWFlat(DIM, m, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = ef_construction
            hnsw.add(data)
            build = time.perf_counter() - started
            memory = size_bytes(hnsw) / n
            for ef in EF_SEARCH:
                hnsw.hnsw.efSearch = ef
                _, found = hnsw.search(queries, 10)
                lat = latency(lambda q, index=hnsw: _search_one(index, q, 10), single)
                rows.append(
                    [
                        name,
                        f"{n:,}",
                        f"HNSW{m},efC={ef_construction}",
                        f"efSearch={ef}",
                        build,
                        lat.p50,
                        lat.p95,
                        recall_at_10(found, truth),
                        memory,
                    ]
                )
            print(f"  {name} {n:,}: hnsw M={m} built in {build:.0f} s", flush=True)
            del hnsw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10k,100k,1M", help="comma-separated chunk counts (default 10k,100k,1M)")
    parser.add_argument("--methods", default="flat,hnsw,ivf", help="any of flat, hnsw, ivf")
    parser.add_argument("--sets", default="random,realistic", help="any of random, realistic")
    parser.add_argument("--threads", type=int, default=2, help="FAISS threads for building")
    args = parser.parse_args()
    import faiss

    faiss.omp_set_num_threads(args.threads)
    methods = args.methods.split(",")
    print(machine())
    print(f"faiss {faiss.__version__}, {args.threads} threads, {QUERIES} random queries / the WiCE claims, k=10")
    rows: list[list[object]] = Rows()
    for n in map(parse_size, args.sizes.split(",")):
        rng = np.random.default_rng(n)
        for name in args.sets.split(","):
            made = random_set(n, rng) if name == "random" else realistic_set(n, rng)
            if made is None:
                print("  realistic set skipped: run bench/bench_wice_retrieval.py first (it writes the WiCE vectors)")
                continue
            run(name, *made, methods, rows)
            del made
    print("\n(c) exact vs approximate search, query vector given, one query per call")
    print(table(HEADERS, rows))
    print(f"\nend: {machine()}")


if __name__ == "__main__":
    main()
