"""The streaming part of a build: articles are cut (worker processes) while passages are embedded (here).

Chunks of finished articles are collected until ``EMBED_WINDOW`` of them wait, embedded together (the
passage encoder sorts them by length, so batches carry little padding), and the articles are appended
to the resume journal. Nothing of the corpus is held beyond one window and the workers' queue; vectors
and analyses go to disk as they are made. One progress bar counts the articles, parsing and
embedding included, with tqdm's time left.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag.ingest.parallel import IN_PROCESS_BELOW, CutArticle, Plan, cut_corpus, default_workers
from rag.records import Document
from rag.search.journal import Journal

if TYPE_CHECKING:
    from rag.search.embedding import Embedder

EMBED_WINDOW = 384  # chunks embedded together: enough to sort by length, small enough to checkpoint often


@dataclass
class _Window:
    articles: list[tuple[Document, CutArticle]]
    chunks: int = 0


@contextmanager
def article_bar(total: int, done: int, show: bool | None):
    """The ingest's one bar, over articles (those resumed or reused count as done from the start)."""
    from tqdm import tqdm

    visible = show if show is not None else total - done >= 50
    with tqdm(
        total=total, initial=done, desc="indexing articles", unit="article", disable=not visible, mininterval=0.5
    ) as bar:
        yield bar


def index_articles(
    documents: Sequence[Document], plan: Plan, embedder: Embedder, journal: Journal, bar, workers: int | None = None
) -> float:
    """Cuts, analyses and embeds ``documents`` into ``journal``; returns the seconds spent embedding."""
    workers = default_workers() if workers is None else workers
    in_process = workers == 0 or sum(len(d.text) for d in documents) < IN_PROCESS_BELOW
    # Every core embeds: parsing takes a fraction of embedding's CPU, so a worker waits on the queue
    # most of the time, and leaving it a core of its own left that core idle (bench/README.md).
    threads = os.cpu_count() or 1
    by_id = {d.id: d for d in documents}
    window = _Window([])
    embedding = 0.0
    for cut in cut_corpus(documents, plan, 0 if in_process else workers):
        window.articles.append((by_id[cut.doc_id], cut))
        window.chunks += len(cut.spans)
        if window.chunks >= EMBED_WINDOW:
            embedding += _flush(window, embedder, journal, bar, threads)
            window = _Window([])
    if window.articles:
        embedding += _flush(window, embedder, journal, bar, threads)
    return embedding


def _flush(window: _Window, embedder: Embedder, journal: Journal, bar, threads: int) -> float:
    texts = [doc.text[s:e] for doc, cut in window.articles for s, e in cut.spans]
    started = time.perf_counter()
    vectors = embedder.encode_passages(texts, threads=threads)
    seconds = time.perf_counter() - started
    journal.append(
        [(doc.id, doc.content_hash, cut.spans, cut.record, cut.error) for doc, cut in window.articles], vectors
    )
    bar.update(len(window.articles))
    return seconds
