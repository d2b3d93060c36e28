"""How long opening an existing, up-to-date index takes (what every `rag ask`, `search` and `check` pays).

Makes a corpus of N articles under bench/out/open-corpus (copies of the seed articles, each with its own
headline), builds its index once, then times ``open_index`` on it R times with the model already loaded:
the time is the index's files plus the check that the corpus has not changed.

    python bench/bench_index_open.py [--articles 200] [--repeats 5] [--index bench/out/open-index]

Runs against whichever ``rag`` is first on the path (an older checkout through PYTHONPATH works too).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def make_corpus(folder: Path, articles: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    seeds = sorted(SEEDS.glob("*.txt"))
    for number in range(articles):
        path = folder / f"article-{number:04d}.txt"
        if not path.exists():
            body = seeds[number % len(seeds)].read_text(encoding="utf-8")
            path.write_text(f"Dispatch Number {number} From The Wire\n\n{body}", encoding="utf-8")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--index", default=str(OUT / "open-index"))
    args = parser.parse_args()

    # The old names first: under an editable install, rag.search of this checkout would be found beside
    # an older checkout's rag package and mix the two.
    try:
        from rag.corpus import load_corpus  # type: ignore[import-not-found]
        from rag.embedding import default_embedder  # type: ignore[import-not-found]
        from rag.index import open_index  # type: ignore[import-not-found]
    except ImportError:
        from rag.ingest.reading import load_corpus
        from rag.search.embedding import default_embedder
        from rag.search.index import open_index
    from rag.settings import Settings

    corpus = make_corpus(OUT / "open-corpus", args.articles)
    settings = replace(Settings(), corpus=(corpus,), index_dir=Path(args.index))
    embedder = default_embedder()
    started = time.perf_counter()
    index = open_index(settings, embedder)
    print(
        f"first open (builds when needed): {time.perf_counter() - started:.1f} s, {len(index.documents)} articles, "
        f"{len(index)} chunks"
    )
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        open_index(settings, embedder, rebuild=False)
        times.append(time.perf_counter() - started)
    print(
        f"open_index of an unchanged corpus: median {1000 * statistics.median(times):.0f} ms, "
        f"min {1000 * min(times):.0f} ms over {args.repeats} runs"
    )
    reading = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        load_corpus([corpus])
        reading.append(time.perf_counter() - started)
    print(
        f"reading the whole corpus, as deciding 'unchanged' did before file stamps: {1000 * statistics.median(reading):.0f} ms"
    )


if __name__ == "__main__":
    main()
