"""The state behind the browser app: the loaded models and the live index, and the work each handler does.

``AppState`` answers, checks and adds articles; readers take a consistent snapshot of (index,
retriever, checker) and every request runs within its time budget. The page is ``rag.app.layout``,
start-up is ``rag.app.startup``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.answer.pipeline import StreamingAnswerer, ask, stream_ask
from rag.answer.registry import DEFAULT_ANSWERER, answerer_for
from rag.budget import Deadline
from rag.check.checker import CitationChecker
from rag.check.formats import parse_check_input
from rag.errors import RagError
from rag.ingest.reading import load_document
from rag.records import Answer, CheckReport, Document
from rag.search.build import BuildReport
from rag.search.index import configured_corpus, ingest
from rag.search.retrieval import Retriever
from rag.settings import Settings, env_positive
from rag.validation import parse_date

if TYPE_CHECKING:
    from rag.search.embedding import Embedder
    from rag.search.store import Index

log = logging.getLogger(__name__)

DEFAULT_UPLOADS = Path("corpus") / "uploads"
UPLOAD_SUFFIXES = (".txt", ".md", ".html", ".htm")
DEFAULT_MAX_UPLOAD_MB = 5.0  # per file; news articles are kilobytes, and a big file holds the indexer for long
PENDING = ".pending-"  # hidden folder in the uploads where files wait until the index that holds them is live
MAX_K = 20
# Requests doing model work (extractive answers, checks) at once: one slow request leaves the other slot
# free, and on a 2-core machine more would only contend for the cores. The caches they share are
# thread-safe (locked OrderedDicts, lru_cache).
DEFAULT_WORKERS = 2
# LLM answers waiting on their server at once. They never take a model slot, so however slow the
# server, extractive questions go on.
DEFAULT_LLM_REQUESTS = 4


def app_settings(settings: Settings, uploads: Path) -> Settings:
    """``settings`` whose corpus is the configured one (explicit, else the index's, else seeds/) plus ``uploads``."""
    uploads.mkdir(parents=True, exist_ok=True)
    paths = configured_corpus(settings)
    if uploads.resolve() not in {p.resolve() for p in paths}:
        paths = (*paths, uploads)
    return replace(settings, corpus=tuple(paths))


# ---------------------------------------------------------------------------
# The state behind the page


@dataclass(frozen=True)
class Upload:
    """An uploaded file that passed validation: where it came from, the name it gets in the corpus and the
    articles read from it."""

    source: Path
    name: str
    documents: tuple[Document, ...]


def max_upload_mb() -> float:
    """The upload size limit per file in MB (``RAG_MAX_UPLOAD_MB``, default 5)."""
    return env_positive("RAG_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB)


class AppState:
    """The loaded models and the live index; every handler goes through it.

    Readers take a snapshot of (index, retriever, checker) under a short lock, so an upload that swaps
    the index never leaves a request holding half of the old one and half of the new; corpus changes
    take another lock, so asking goes on while an upload is indexed.
    """

    def __init__(
        self, settings: Settings, embedder: Embedder, index: Index, uploads: Path, max_upload_bytes: int | None = None
    ):
        self.settings = settings
        self.embedder = embedder
        self.uploads = uploads
        self.max_upload_bytes = max_upload_bytes or int(max_upload_mb() * 1_000_000)
        self._lock = threading.RLock()
        self._changing = threading.Lock()
        self._model_slots = threading.BoundedSemaphore(DEFAULT_WORKERS)
        self._llm_slots = threading.BoundedSemaphore(DEFAULT_LLM_REQUESTS)
        self._set_index(index)

    def _set_index(self, index: Index) -> None:
        retriever = Retriever(index, self.embedder, rrf_k=self.settings.rrf_k)
        checker = CitationChecker(index, self.embedder, retriever=retriever)
        with self._lock:
            self.index, self.retriever, self.checker = index, retriever, checker

    def snapshot(self):
        with self._lock:
            return self.index, self.retriever, self.checker

    # -- ask -----------------------------------------------------------------

    def _deadline(self, what: str) -> Deadline:
        return Deadline.start(self.settings.time_budget, what)

    @contextmanager
    def _slot(self, slots: threading.BoundedSemaphore, deadline: Deadline) -> Iterator[None]:
        """Holds one of ``slots`` for the block, waiting for one at most until the deadline."""
        if not slots.acquire(timeout=max(deadline.remaining(), 0.0)):
            raise deadline.exceeded()
        try:
            yield
        finally:
            slots.release()

    def ask(
        self,
        question: str,
        k: int = 5,
        answerer: str = DEFAULT_ANSWERER,
        deadline: Deadline | None = None,
        as_of: str | None = None,
    ) -> tuple[Answer, float]:
        """The answer (or abstention) to ``question`` and the seconds it took, within the time budget.

        ``as_of`` (a date, or empty): search only the articles published by then, and undated ones.
        """
        if not 1 <= int(k) <= MAX_K:
            raise RagError(f"k must be between 1 and {MAX_K}: choose how many passages to retrieve")
        started = time.perf_counter()
        deadline = deadline or self._deadline("the question")
        retriever = self._retriever_as_of(as_of)
        with deadline.active(), self._slot(self._model_slots, deadline):
            answer = ask(question, retriever, answerer_for(answerer, retriever), k=int(k))
        return answer, time.perf_counter() - started

    def _retriever_as_of(self, as_of: str | None) -> Retriever:
        retriever = self.snapshot()[1]
        return retriever.dated(parse_date(as_of, "the as-of date")) if as_of and as_of.strip() else retriever

    def ask_stream(
        self, question: str, k: int = 5, answerer: str = DEFAULT_ANSWERER, as_of: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """``ask`` as events. The LLM answerer streams a ``{"type": "sentence", "kept": bool, ...}`` event per
        reply sentence once the checker has verified it (``rag.answer.pipeline.stream_ask``); every answerer
        ends with ``{"type": "answer", "answer": Answer, "seconds": float}``.

        The time budget covers the whole stream; each step runs under it, whichever thread runs it.
        """
        if not 1 <= int(k) <= MAX_K:
            raise RagError(f"k must be between 1 and {MAX_K}: choose how many passages to retrieve")
        started = time.perf_counter()
        deadline = self._deadline("the question")
        retriever = self._retriever_as_of(as_of)
        chosen = answerer_for(answerer, retriever)
        if not isinstance(chosen, StreamingAnswerer):
            answer, seconds = self.ask(question, k, answerer, deadline, as_of)
            yield {"type": "answer", "answer": answer, "seconds": seconds}
            return
        try:
            with self._slot(self._llm_slots, deadline):
                events = stream_ask(question, retriever, chosen, k=int(k))
                while True:
                    with deadline.active():
                        event = next(events, None)
                    if event is None:
                        break
                    if event["type"] == "answer":
                        event = {**event, "seconds": time.perf_counter() - started}
                    yield event
        finally:
            chosen.close()

    # -- check ---------------------------------------------------------------

    def check(self, raw: str) -> tuple[CheckReport, float]:
        """Verdicts for an answer in any format `rag check` reads, and the seconds it took, within the time budget."""
        started = time.perf_counter()
        deadline = self._deadline("the check")
        index, _, checker = self.snapshot()
        with deadline.active(), self._slot(self._model_slots, deadline):
            report = checker.check_answer(parse_check_input(raw or "", index))
        return report, time.perf_counter() - started

    # -- corpus --------------------------------------------------------------

    def chunk_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for chunk in self.snapshot()[0].chunks:
            counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
        return counts

    def validate(self, files: Sequence[str | Path]) -> list[Upload]:
        """Checks every file before anything is copied; RagError naming each bad file otherwise."""
        index = self.snapshot()[0]
        problems, accepted, names = [], [], set()
        for file in files:
            path = Path(file)
            name = path.name
            if path.suffix.lower() not in UPLOAD_SUFFIXES:
                problems.append(f"{name} is not a .txt, .md or .html file")
                continue
            if path.is_file() and path.stat().st_size > self.max_upload_bytes:
                problems.append(f"{name} is larger than the {self.max_upload_bytes / 1_000_000:g} MB limit per file")
                continue
            try:
                documents = load_document(path)
            except (ValueError, OSError) as exc:
                problems.append(f"{name} {exc}")
                continue
            if not documents:
                problems.append(f"{name} has no article text")
                continue
            target = (self.uploads / name).resolve()
            taken = [
                d.id
                for d in documents
                if d.id in index.documents and Path(index.documents[d.id].source).resolve() != target
            ]
            if taken or name.lower() in names:
                problems.append(
                    f"{name}: an article with id '{taken[0] if taken else path.stem}' is already in the corpus (rename the file)"
                )
                continue
            names.add(name.lower())
            # The articles as the corpus will hold them: read from the uploads folder from now on.
            accepted.append(Upload(path, name, tuple(replace(d, source=str(self.uploads / name)) for d in documents)))
        if problems:
            raise RagError("nothing was added: " + "; ".join(problems))
        if not accepted:
            raise RagError("no file given: choose .txt, .md or .html articles to add")
        return accepted

    def add_files(
        self, files: Sequence[str | Path], progress: Callable[[float, str], None] | None = None
    ) -> BuildReport:
        """Validates the files, indexes them with the corpus, and moves them into the uploads folder once
        the index that holds them is live.

        All or nothing: a bad file, a failed build, or the app stopping half-way leaves the corpus folder
        and the index as they were (files wait in a hidden folder, which the next start clears).
        """
        note = progress or (lambda fraction, message: None)
        with self._changing:  # one corpus change at a time; readers keep using the current snapshot
            note(0.05, "checking the files")
            uploads = self.validate(files)
            self.uploads.mkdir(parents=True, exist_ok=True)
            pending = Path(tempfile.mkdtemp(prefix=PENDING, dir=self.uploads))
            try:
                for upload in uploads:
                    shutil.copyfile(upload.source, pending / upload.name)
                note(0.2, f"indexing {len(uploads)} file(s)")
                documents = [d for upload in uploads for d in upload.documents]
                index, report = ingest(self.settings, self.embedder, progress=progress is not None, extra=documents)
                for upload in uploads:  # the index holding them is live: now they are part of the corpus
                    os.replace(pending / upload.name, self.uploads / upload.name)
            finally:
                shutil.rmtree(pending, ignore_errors=True)
            note(0.95, "loading the new index")
            self._set_index(index)
        return report


def discard_interrupted_uploads(uploads: Path) -> None:
    """Removes files an earlier run was still indexing when it stopped: they never reached the corpus."""
    if not uploads.is_dir():
        return
    for folder in uploads.glob(f"{PENDING}*"):
        names = ", ".join(sorted(p.name for p in folder.iterdir())) if folder.is_dir() else folder.name
        log.warning("discarded an upload that was interrupted before it was indexed: %s", names or "(empty)")
        shutil.rmtree(folder, ignore_errors=True)
