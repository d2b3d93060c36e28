"""Starting the browser app: load the models and the index (building it when missing or stale), then
serve the page on loopback. ``rag serve`` and ``python app.py`` come here.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

# Nothing may phone home: Gradio's usage analytics and version check off before it is imported.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from rag.answer.registry import default_answerer
from rag.app.assets import CSS
from rag.app.layout import build_app
from rag.app.state import DEFAULT_UPLOADS, AppState, app_settings, discard_interrupted_uploads
from rag.ingest.sentences import nlp
from rag.search.embedding import default_embedder
from rag.search.index import open_index
from rag.search.retrieval import Retriever
from rag.settings import DATA_DIR, Settings

if TYPE_CHECKING:
    import gradio as gr

    from rag.search.embedding import Embedder
    from rag.search.store import Index

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
EXAMPLES_FILE = DATA_DIR / "examples.json"


def example_questions(index: Index, path: Path = EXAMPLES_FILE) -> list[str]:
    """The example questions of ``path`` whose documents are all in the index; the unanswerable ones only
    beside answerable ones (an example that does not answer makes sense only for its own corpus)."""
    try:
        examples = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []

    def usable(kind: str) -> list[str]:
        return [e["question"] for e in examples.get(kind, []) if all(d in index.documents for d in e["documents"])]

    answerable = usable("answerable")
    return answerable + usable("unanswerable") if answerable else []


def _step(message: str) -> Callable[[], None]:
    """Prints a start-up step now and its duration when the returned function is called."""
    started = time.perf_counter()
    print(f"{message}…", end="", file=sys.stderr, flush=True)
    return lambda: print(f" {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def load_state(settings: Settings, uploads: Path = DEFAULT_UPLOADS, max_upload_mb: float | None = None) -> AppState:
    """Loads the models and the index of the configured corpus plus ``uploads``, building it when missing or stale.

    ``max_upload_mb``: the upload size limit per file (default ``RAG_MAX_UPLOAD_MB``, else 5).
    """
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
    embedder.query_encoder  # noqa: B018  (loads the ONNX session)
    if len(index) <= PREPARE_UP_TO:
        default_answerer(Retriever(index, embedder)).prepare(index)


def _import_gradio() -> None:
    import gradio  # noqa: F401


def _load_spacy() -> None:
    nlp(full=True)  # what the answerer parses with; the checker's lighter pipeline loads on first use


THEME_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]  # local fonts: no request to a font CDN


def start(state: AppState, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> gr.Blocks:
    """Builds the page for ``state`` and starts serving it in the background (never a public share link)."""
    import gradio as gr

    app = build_app(state, example_questions(state.index))
    # Concurrent users wait in Gradio's queue (uploads one at a time); questions and checks are bounded by AppState.
    app.queue(default_concurrency_limit=1, max_size=256)
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        quiet=True,
        show_error=True,
        prevent_thread_lock=True,
        css=CSS,
        footer_links=["api"],
        max_file_size=state.max_upload_bytes,  # the server stops reading a bigger upload
        theme=gr.themes.Default(font=THEME_FONTS, font_mono=["ui-monospace", "monospace"]),
    )
    return app


def serve(
    settings: Settings | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    uploads: Path = DEFAULT_UPLOADS,
    block: bool = True,
    max_upload_mb: float | None = None,
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
