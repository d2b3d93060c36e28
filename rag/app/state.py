"""The browser app: Gradio Blocks over the library (ask, check citations, manage the corpus).

``AppState`` holds the loaded models and the live index and does the work;
``build_app`` lays out the page and wires its events to the state; ``serve``
loads everything (building the index when it is missing or stale) and starts
the server on loopback. HTML comes from ``rag.app.views``, which escapes all
corpus and user text.

Stable API names for ``gradio_client`` (see docs/app.md): ``/ask``, ``/check``,
``/upload`` and ``/articles``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Nothing may phone home: Gradio's usage analytics and version check off before it is imported.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from rag.app import views as app_view
from rag.budget import Deadline
from rag.errors import RagError
from rag.redaction import redact
from rag.settings import Settings

if TYPE_CHECKING:
    import gradio as gr

    from rag.check.checker import CheckReport
    from rag.search.embedding import Embedder
    from rag.search.build import BuildReport
    from rag.search.store import Index
    from rag.records import Answer, Document

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_UPLOADS = Path("corpus") / "uploads"
EXAMPLES_FILE = ROOT / "eval" / "seeds_gold.jsonl"
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


# ---------------------------------------------------------------------------
# Where the corpus lives


def app_settings(settings: Settings, uploads: Path) -> Settings:
    """``settings`` whose corpus is the configured one (explicit, else the index's, else seeds/) plus ``uploads``."""
    from rag.search.index import configured_corpus

    uploads.mkdir(parents=True, exist_ok=True)
    paths = configured_corpus(settings)
    if uploads.resolve() not in {p.resolve() for p in paths}:
        paths = (*paths, uploads)
    return replace(settings, corpus=tuple(paths))


def example_questions(index: Index, path: Path = EXAMPLES_FILE, limit: int = 5) -> list[str]:
    """Questions from a gold file whose evidence is all in the index (plus one unanswerable one)."""
    from rag.evaluate.metrics import load_gold

    try:
        gold = load_gold(path)
    except RagError:
        return []
    if not all(e.doc_id in index.documents for q in gold for e in q.evidence):
        # Unanswerable examples only make sense for the corpus the gold file was written for.
        gold = [q for q in gold if q.answerable]
    answerable = [q.question for q in gold if q.answerable and all(e.doc_id in index.documents for e in q.evidence)]
    unanswerable = [q.question for q in gold if not q.answerable]
    return answerable[: limit - 1] + unanswerable[:1] if answerable else []


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
    from rag.settings import env_positive

    return env_positive("RAG_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB)


class AppState:
    """The loaded models and the live index; every handler goes through it.

    Readers take a snapshot of (index, retriever, checker) under a short lock, so an upload that swaps
    the index never leaves a request holding half of the old one and half of the new; corpus changes
    take another lock, so asking goes on while an upload is indexed.
    """

    def __init__(self, settings: Settings, embedder: Embedder, index: Index, uploads: Path,
                 max_upload_bytes: int | None = None):
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
        from rag.check.checker import CitationChecker
        from rag.search.retrieval import Retriever

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

    def ask(self, question: str, k: int = 5, answerer: str = "extractive",
            deadline: Deadline | None = None) -> tuple[Answer, float]:
        """The answer (or abstention) to ``question`` and the seconds it took, within the time budget."""
        from rag.answer.registry import answerer_for
        from rag.answer.extractive import ask

        if not 1 <= int(k) <= MAX_K:
            raise RagError(f"k must be between 1 and {MAX_K}: choose how many passages to retrieve")
        started = time.perf_counter()
        deadline = deadline or self._deadline("the question")
        _, retriever, _ = self.snapshot()
        with deadline.active(), self._slot(self._model_slots, deadline):
            answer = ask(question, retriever, answerer_for(answerer, retriever), k=int(k))
        return answer, time.perf_counter() - started

    def ask_stream(self, question: str, k: int = 5, answerer: str = "extractive") -> Iterator[dict[str, Any]]:
        """``ask`` as events. The LLM answerer streams a ``{"type": "sentence", "kept": bool, ...}`` event per
        reply sentence once the checker has verified it (``rag.answer.llm.answerer.stream_ask``); every answerer
        ends with ``{"type": "answer", "answer": Answer, "seconds": float}``.

        The time budget covers the whole stream; each step runs under it, whichever thread runs it.
        """
        from rag.answer.registry import answerer_for
        from rag.answer.llm.answerer import LLMAnswerer, stream_ask

        if not 1 <= int(k) <= MAX_K:
            raise RagError(f"k must be between 1 and {MAX_K}: choose how many passages to retrieve")
        started = time.perf_counter()
        deadline = self._deadline("the question")
        _, retriever, _ = self.snapshot()
        chosen = answerer_for(answerer, retriever)
        if not isinstance(chosen, LLMAnswerer):
            answer, seconds = self.ask(question, k, answerer, deadline)
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
            chosen.client.close()

    # -- check ---------------------------------------------------------------

    def check(self, raw: str) -> tuple[CheckReport, float]:
        """Verdicts for an answer in any format `rag check` reads, and the seconds it took, within the time budget."""
        from rag.check.formats import parse_check_input

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
        from rag.ingest.reading import load_document

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
            taken = [d.id for d in documents if d.id in index.documents and Path(index.documents[d.id].source).resolve() != target]
            if taken or name.lower() in names:
                problems.append(f"{name}: an article with id '{taken[0] if taken else path.stem}' is already in the corpus (rename the file)")
                continue
            names.add(name.lower())
            # The articles as the corpus will hold them: read from the uploads folder from now on.
            accepted.append(Upload(path, name, tuple(replace(d, source=str(self.uploads / name)) for d in documents)))
        if problems:
            raise RagError("nothing was added: " + "; ".join(problems))
        if not accepted:
            raise RagError("no file given: choose .txt, .md or .html articles to add")
        return accepted

    def add_files(self, files: Sequence[str | Path], progress: Callable[[float, str], None] | None = None) -> BuildReport:
        """Validates the files, indexes them with the corpus, and moves them into the uploads folder once
        the index that holds them is live.

        All or nothing: a bad file, a failed build, or the app stopping half-way leaves the corpus folder
        and the index as they were (files wait in a hidden folder, which the next start clears).
        """
        from rag.search.index import ingest

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


# ---------------------------------------------------------------------------
# The page


def removed_html(removed: Sequence[dict[str, Any]]) -> str:
    """The "removed" panel: the LLM's sentences the citation checker did not support, struck out, with why."""
    if not removed:
        return ""
    items = "".join(
        f'<li><del>{escape(str(r["text"]))}</del> <span class="rag-score">{escape(str(r["verdict"]))}'
        + (f": {escape(str(r['reasons'][0]))}" if r.get("reasons") else "") + "</span></li>"
        for r in removed
    )
    return (f'<details class="rag-removed" open><summary>Removed: {len(removed)} sentence(s) not supported by the '
            f"passages they cite</summary><ul>{items}</ul></details>")


def streaming_html(kept: Sequence[dict[str, Any]], removed: Sequence[dict[str, Any]]) -> str:
    """The answer while the LLM writes: only the sentences verified so far, and those removed so far."""
    sentences = " ".join(
        escape(e["sentence"].text) + "".join(f"[{c.passage_rank}]" for c in e["sentence"].citations) for e in kept
    )
    return (f'<div class="rag-answer"><p class="rag-sentences">{sentences}</p><div class="rag-meta">the model is '
            f"writing; each sentence appears once the citation checker supports it…</div>{removed_html(removed)}</div>")


def _ask_handler(state: AppState):
    import gradio as gr

    def ask(question: str, k: float, answerer: str) -> Iterator[tuple[str, dict[str, Any]]]:
        kept: list[dict[str, Any]] = []
        removed: list[dict[str, Any]] = []
        try:
            for event in state.ask_stream(question, int(k), answerer):
                if event["type"] == "sentence":
                    if event["kept"]:
                        kept.append(event)
                    elif event["removed"] is not None:
                        removed.append(event["removed"])
                    yield streaming_html(kept, removed), {"question": question, "status": "writing"}
                elif event["type"] == "answer":
                    answer, seconds = event["answer"], event["seconds"]
        except RagError as exc:
            raise gr.Error(redact(str(exc))) from None
        index = state.snapshot()[0]
        record = {**answer.to_dict(), "seconds": round(seconds, 3)}
        if answer.abstained:
            record["message"] = answer.extra.get("message")
        yield app_view.answer_html(answer, index.documents, seconds) + removed_html(answer.extra.get("removed") or []), record

    return ask


def _check_handler(state: AppState):
    import gradio as gr

    def check(text: str) -> tuple[str, dict[str, Any]]:
        try:
            report, seconds = state.check(text)
        except RagError as exc:
            raise gr.Error(redact(str(exc))) from None
        record = {**report.to_dict(), "seconds": round(seconds, 3)}
        return app_view.report_html(report, state.snapshot()[0].documents, seconds), record

    return check


def _corpus_handlers(state: AppState):
    import gradio as gr

    def articles() -> str:
        return app_view.articles_html(state.snapshot()[0].documents, state.chunk_counts())

    def upload(files: list[str] | None, progress=gr.Progress(track_tqdm=True)) -> tuple[str, str]:
        try:
            report = state.add_files(files or [], progress=lambda f, m: progress(f, desc=m))
        except RagError as exc:
            return app_view.message_html(str(exc), ok=False), articles()
        added = ", ".join(report.added + report.changed) or "nothing new"
        return app_view.message_html(f"added {added}: {report.summary()}"), articles()

    return articles, upload


CHECK_PLACEHOLDER = (
    "Paste an answer with citations, e.g.\n\n"
    "Turkey bought S-400 missiles from Russia [1].\n\nSources:\n"
    '[1] DOC_ID: "the quoted sentence"\n\n'
    "or the JSON of an answer (the Ask tab's 'Answer JSON'), or "
    '{"answer": "… [1]", "citations": [{"doc_id": "…", "quote": "…"}]}'
)


def build_app(state: AppState, examples: Sequence[str] = ()) -> gr.Blocks:
    """The Blocks page: Ask, Check and Corpus tabs wired to ``state``."""
    import gradio as gr

    from rag.answer.registry import ANSWERERS

    ask, check = _ask_handler(state), _check_handler(state)
    articles, upload = _corpus_handlers(state)
    with gr.Blocks(title="rag-news: grounded answers", analytics_enabled=False) as app:
        gr.Markdown("## Grounded answers from your news articles\nEvery answer sentence cites the passage it comes from.")
        with gr.Tab("Ask"):
            with gr.Row():
                question = gr.Textbox(label="Question", placeholder="Ask about the articles…", scale=5,
                                      elem_id="question", max_lines=3)
                ask_button = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
            with gr.Accordion("Settings", open=False):
                k = gr.Slider(1, MAX_K, value=5, step=1, label="Passages to retrieve (k)")
                answerer = gr.Dropdown(list(ANSWERERS), value=ANSWERERS[0], label="Answerer")
            if examples:
                gr.Examples([[q] for q in examples], inputs=[question], label="Example questions")
            answer_view = gr.HTML(elem_id="answer", js_on_load=app_view.CITATION_JS)
            with gr.Accordion("Answer JSON", open=False):
                answer_json = gr.JSON(label="Answer record")
        with gr.Tab("Check"):
            gr.Markdown("Paste an answer with [n] citations and a source list (or answer JSON); each sentence "
                        "gets a verdict with the span that supports it.")
            check_text = gr.Textbox(label="Answer to check", lines=8, placeholder=CHECK_PLACEHOLDER, elem_id="check-text")
            with gr.Row():
                last = gr.Button("Use the last answer")
                check_button = gr.Button("Check", variant="primary", elem_id="check")
            report_view = gr.HTML(elem_id="report")
            with gr.Accordion("Report JSON", open=False):
                report_json = gr.JSON(label="Check report")
        with gr.Tab("Corpus"):
            gr.Markdown(f"Add articles (.txt, .md, .html), at most {state.max_upload_bytes / 1_000_000:g} MB per file. "
                        f"They are indexed at once and then saved in `{state.uploads}`; a file that cannot be read "
                        "is refused and the index stays as it was.")
            files = gr.File(file_count="multiple", file_types=list(UPLOAD_SUFFIXES), label="Articles")
            add_button = gr.Button("Add to the corpus", variant="primary")
            upload_status = gr.HTML()
            article_list = gr.HTML(articles())

        # No queue limit on questions and checks: AppState bounds the model work (DEFAULT_WORKERS) and the LLM
        # requests (DEFAULT_LLM_REQUESTS) apart, so a slow LLM answer never holds up extractive questions.
        unbounded = {"concurrency_limit": None}
        for trigger in (ask_button.click, question.submit):
            trigger(ask, [question, k, answerer], [answer_view, answer_json],
                    api_name="ask" if trigger == ask_button.click else None,
                    api_visibility="public" if trigger == ask_button.click else "private", **unbounded)
        check_button.click(check, [check_text], [report_view, report_json], api_name="check", **unbounded)
        last.click(lambda record: json.dumps(record, ensure_ascii=False, indent=1) if record else "",
                   [answer_json], [check_text], queue=False, api_visibility="private")
        # Its own queue: indexing an upload never holds up questions.
        add_button.click(upload, [files], [upload_status, article_list], api_name="upload",
                         concurrency_id="corpus", concurrency_limit=1)
        app.load(articles, None, [article_list], api_name="articles")
    return app


# ---------------------------------------------------------------------------
# Starting


def _step(message: str) -> Callable[[], None]:
    """Prints a start-up step now and its duration when the returned function is called."""
    started = time.perf_counter()
    print(f"{message}…", end="", file=sys.stderr, flush=True)
    return lambda: print(f" {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def load_state(settings: Settings, uploads: Path = DEFAULT_UPLOADS, max_upload_mb: float | None = None) -> AppState:
    """Loads the models and the index of the configured corpus plus ``uploads``, building it when missing or stale.

    ``max_upload_mb``: the upload size limit per file (default ``RAG_MAX_UPLOAD_MB``, else 5).
    """
    from rag.search.embedding import default_embedder
    from rag.search.index import open_index

    settings = app_settings(settings, uploads)
    discard_interrupted_uploads(uploads)
    # Gradio and spaCy load in the background while torch and the model load here: start-up is mostly
    # imports, and part of each (file reads, native library loading) overlaps with the others.
    background = [threading.Thread(target=target, daemon=True) for target in (_import_gradio, _load_spacy)]
    for thread in background:
        thread.start()
    done = _step("loading the embedding model")
    embedder = default_embedder()
    done()
    print(f"opening the index in {settings.index_dir} (built or updated when missing or stale)", file=sys.stderr)
    done = _step(f"index of {', '.join(map(str, settings.corpus or ()))}")
    index = open_index(settings, embedder, rebuild=True, progress=True)
    done()
    done = _step("loading the language model and reading the articles")
    background[1].join()
    _warm_up(embedder, index)
    done()
    done = _step("loading the web framework")
    background[0].join()
    done()
    return AppState(settings, embedder, index, uploads, int(max_upload_mb * 1_000_000) if max_upload_mb else None)


PREPARE_UP_TO = 400  # chunks: a corpus this small is analysed whole at start-up (about a second per 100 chunks)


def _warm_up(embedder: Embedder, index: Index) -> None:
    """Loads the question encoder and, for a small corpus, analyses every sentence now rather than on the first question."""
    from rag.answer.extractive import default_answerer
    from rag.search.retrieval import Retriever

    embedder.query_encoder  # noqa: B018  (loads the ONNX session)
    if len(index) <= PREPARE_UP_TO:
        default_answerer(Retriever(index, embedder)).prepare(index)


def _import_gradio() -> None:
    import gradio  # noqa: F401


def _load_spacy() -> None:
    from rag.ingest.sentences import nlp

    nlp(full=True)  # what the answerer parses with; the checker's lighter pipeline loads on first use


THEME_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]  # local fonts: no request to a font CDN


def start(state: AppState, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> gr.Blocks:
    """Builds the page for ``state`` and starts serving it in the background (never a public share link)."""
    import gradio as gr

    app = build_app(state, example_questions(state.index))
    # Concurrent users wait in Gradio's queue (uploads one at a time); questions and checks are bounded by AppState.
    app.queue(default_concurrency_limit=1, max_size=256)
    app.launch(
        server_name=host, server_port=port, share=False, inbrowser=False, quiet=True, show_error=True,
        prevent_thread_lock=True, css=app_view.CSS, footer_links=["api"],
        max_file_size=state.max_upload_bytes,  # the server stops reading a bigger upload
        theme=gr.themes.Default(font=THEME_FONTS, font_mono=["ui-monospace", "monospace"]),
    )
    return app


def serve(
    settings: Settings | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
    uploads: Path = DEFAULT_UPLOADS, block: bool = True, max_upload_mb: float | None = None,
) -> gr.Blocks:
    """Loads the models and index (building it when missing or stale), then serves the app on ``host:port``."""
    state = load_state(settings or Settings(), uploads, max_upload_mb)
    done = _step("starting the web server")
    app = start(state, host, port)
    done()
    print(f"ready: http://{host}:{port}  (Ctrl+C stops it)", file=sys.stderr, flush=True)
    if block:
        app.block_thread()
    return app
