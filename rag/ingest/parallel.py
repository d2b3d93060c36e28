"""Cutting articles into chunks (and parsing them for the stored analysis) in worker processes.

spaCy runs on one core per process; embedding runs in the main process at the same time (on every
core: parsing needs far less CPU than embedding, so the worker mostly waits; bench/README.md measured
the split). Articles go to the workers in tasks of about ``TASK_CHARS`` characters, a few tasks ahead
of what the main process has consumed, so memory stays bounded however large the corpus is; results
come back in corpus order. Small jobs (a few articles, an upload) are cut in this process: starting a
worker and loading spaCy in it costs more than they do.

Workers ignore Ctrl+C: the main process decides what an interruption means (see ``rag.search.journal``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from rag.ingest.analysis import parse_articles
from rag.ingest.chunking import chunk_document
from rag.records import Document
from rag.settings import AnalysisSettings, ChunkSettings
from rag.text import first_line

log = logging.getLogger(__name__)

TASK_CHARS = 30_000  # characters per task: a few news articles
TASKS_AHEAD = 3  # tasks queued per worker beyond the one it runs
PARENT_CHECK_SECONDS = 1.0  # how often a worker checks that the build that started it still runs
IN_PROCESS_BELOW = 100_000  # characters: smaller jobs are not worth a worker's start (~3 s)


@dataclass(frozen=True)
class WordPieceLimit:
    """Whether a text fits the embedder's input (``Embedder.fits``), rebuilt from its tokenizer file in a worker."""

    tokenizer_file: str
    max_tokens: int
    _tokenizer: list = field(default_factory=list, compare=False, repr=False)

    def __call__(self, text: str) -> bool:
        if not self._tokenizer:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(self.tokenizer_file)
            tokenizer.no_truncation()
            tokenizer.no_padding()
            self._tokenizer.append(tokenizer)
        return len(self._tokenizer[0].encode(text, add_special_tokens=True).ids) <= self.max_tokens

    def __getstate__(self):
        return (self.tokenizer_file, self.max_tokens)

    def __setstate__(self, state) -> None:
        object.__setattr__(self, "tokenizer_file", state[0])
        object.__setattr__(self, "max_tokens", state[1])
        object.__setattr__(self, "_tokenizer", [])


@dataclass(frozen=True)
class Plan:
    """How articles are cut: chunk sizes, the analysis, whether it is stored, and the embedder's limit."""

    chunking: ChunkSettings
    analysis: AnalysisSettings
    store_analysis: bool
    fits: WordPieceLimit | None


@dataclass(frozen=True)
class CutArticle:
    """One article's chunks as (start, end) spans and its packed analysis; ``error`` when it could not be cut."""

    doc_id: str
    spans: tuple[tuple[int, int], ...]
    record: bytes | None
    error: str | None = None


def cut_articles(articles: Sequence[tuple[str, str]], plan: Plan) -> list[CutArticle]:
    """Chunks and analysis of (doc_id, text) articles, in order. An article that fails alone gets ``error``."""
    try:
        return _cut(articles, plan)
    except Exception as exc:
        if len(articles) == 1:
            return [CutArticle(articles[0][0], (), None, error=first_line(exc))]
        return [cut for article in articles for cut in cut_articles([article], plan)]  # find which one fails


def _cut(articles: Sequence[tuple[str, str]], plan: Plan) -> list[CutArticle]:
    cut = []
    for (doc_id, text), parse in zip(articles, parse_articles(articles, plan.analysis, plan.store_analysis)):
        document = Document(id=doc_id, title="", text=text)
        chunks = chunk_document(document, plan.chunking, fits=plan.fits, sentences=parse.sentences)
        cut.append(CutArticle(doc_id, tuple((c.start, c.end) for c in chunks), parse.record))
    return cut


def _tasks(documents: Iterable[Document]) -> Iterator[list[tuple[str, str]]]:
    task: list[tuple[str, str]] = []
    size = 0
    for doc in documents:
        task.append((doc.id, doc.text))
        size += len(doc.text)
        if size >= TASK_CHARS:
            yield task
            task, size = [], 0
    if task:
        yield task


def _start_worker(parent: int) -> None:
    """In each worker: Ctrl+C is the main process's to handle, and a killed main process ends it too."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)  # orphaned (the build was killed): nothing of ours is worth finishing

    threading.Thread(target=watch, daemon=True).start()


MAX_DEFAULT_WORKERS = 8  # each holds a spaCy pipeline (~370 MiB)


def default_workers() -> int:
    """Parsing processes: ``RAG_INGEST_WORKERS``, else one per core (at most ``MAX_DEFAULT_WORKERS``).

    With int8 passage vectors, parsing takes more CPU than embedding (150 news articles: ~50 s of spaCy
    against ~37 s of embedding), so the parsers share every core with the embedder rather than half of
    them: 49 s instead of 70 s on two cores (bench/README.md, (g)).
    """
    value = os.environ.get("RAG_INGEST_WORKERS", "").strip()
    if value.isdigit():
        return int(value)
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))


def cut_corpus(documents: Sequence[Document], plan: Plan, workers: int | None = None) -> Iterator[CutArticle]:
    """``CutArticle`` of every document, in order: in worker processes, or here for small jobs (or ``workers=0``)."""
    workers = default_workers() if workers is None else workers
    if workers == 0 or sum(len(d.text) for d in documents) < IN_PROCESS_BELOW:
        for task in _tasks(documents):
            yield from cut_articles(task, plan)
        return
    # spawn, not fork: the main process may already run onnxruntime or torch threads.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),))
    pending: deque[Future] = deque()
    try:
        tasks = _tasks(documents)
        for task in tasks:
            pending.append(pool.submit(cut_articles, task, plan))
            if len(pending) >= workers * (1 + TASKS_AHEAD):
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
