"""The page of the browser app: Ask, Check and Corpus tabs wired to an ``AppState``.

Stable API names for ``gradio_client`` (see docs/app.md): ``/ask``, ``/check``, ``/upload`` and
``/articles``. HTML comes from ``rag.app.views``, which escapes all corpus and user text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from rag.answer.registry import ANSWERERS
from rag.app import views
from rag.app.assets import CITATION_JS
from rag.app.state import MAX_K, UPLOAD_SUFFIXES, AppState
from rag.errors import RagError
from rag.redaction import redact

if TYPE_CHECKING:
    import gradio as gr


def _ask_handler(state: AppState):
    import gradio as gr

    def ask(question: str, k: float, answerer: str, as_of: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        verified: list[dict[str, Any]] = []
        try:
            for event in state.ask_stream(question, int(k), answerer, as_of):
                if event["type"] == "sentence":
                    verified.append(event)
                    yield views.streaming_html(verified), {"question": question, "status": "writing"}
                elif event["type"] == "answer":
                    answer, seconds = event["answer"], event["seconds"]
        except RagError as exc:
            raise gr.Error(redact(str(exc))) from None
        index = state.snapshot()[0]
        record = {**answer.to_dict(), "seconds": round(seconds, 3)}
        if answer.abstained:
            record["message"] = answer.message
        # answer_html shows the removed sentences itself (once).
        yield views.answer_html(answer, index.documents, seconds), record

    return ask


def _check_handler(state: AppState):
    import gradio as gr

    def check(text: str) -> tuple[str, dict[str, Any]]:
        try:
            report, seconds = state.check(text)
        except RagError as exc:
            raise gr.Error(redact(str(exc))) from None
        record = {**report.to_dict(), "seconds": round(seconds, 3)}
        return views.report_html(report, state.snapshot()[0].documents, seconds), record

    return check


def _corpus_handlers(state: AppState):
    import gradio as gr

    def articles() -> str:
        return views.articles_html(state.snapshot()[0].documents, state.chunk_counts())

    def upload(files: list[str] | None, progress=gr.Progress(track_tqdm=True)) -> tuple[str, str]:
        try:
            report = state.add_files(files or [], progress=lambda f, m: progress(f, desc=m))
        except RagError as exc:
            return views.message_html(str(exc), ok=False), articles()
        added = ", ".join(report.added + report.changed) or "nothing new"
        return views.message_html(f"added {added}: {report.summary()}"), articles()

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

    ask, check = _ask_handler(state), _check_handler(state)
    articles, upload = _corpus_handlers(state)
    with gr.Blocks(title="rag-news: grounded answers", analytics_enabled=False) as app:
        gr.Markdown(
            "## Grounded answers from your news articles\nEvery answer sentence cites the passage it comes from."
        )
        with gr.Tab("Ask"):
            with gr.Row():
                question = gr.Textbox(
                    label="Question", placeholder="Ask about the articles…", scale=5, elem_id="question", max_lines=3
                )
                ask_button = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
            with gr.Accordion("Settings", open=False):
                k = gr.Slider(1, MAX_K, value=5, step=1, label="Passages to retrieve (k)")
                answerer = gr.Dropdown(list(ANSWERERS), value=ANSWERERS[0], label="Answerer")
                as_of = gr.Textbox(
                    value="",
                    label="As of (YYYY-MM-DD, optional): only articles published by then, and undated ones",
                    max_lines=1,
                    elem_id="as-of",
                )
            if examples:
                gr.Examples([[q] for q in examples], inputs=[question], label="Example questions")
            answer_view = gr.HTML(elem_id="answer", js_on_load=CITATION_JS)
            with gr.Accordion("Answer JSON", open=False):
                answer_json = gr.JSON(label="Answer record")
        with gr.Tab("Check"):
            gr.Markdown(
                "Paste an answer with [n] citations and a source list (or answer JSON); each sentence "
                "gets a verdict with the span that supports it."
            )
            check_text = gr.Textbox(
                label="Answer to check", lines=8, placeholder=CHECK_PLACEHOLDER, elem_id="check-text"
            )
            with gr.Row():
                last = gr.Button("Use the last answer")
                check_button = gr.Button("Check", variant="primary", elem_id="check")
            report_view = gr.HTML(elem_id="report")
            with gr.Accordion("Report JSON", open=False):
                report_json = gr.JSON(label="Check report")
        with gr.Tab("Corpus"):
            gr.Markdown(
                f"Add articles (.txt, .md, .html), at most {state.max_upload_bytes / 1_000_000:g} MB per file. "
                f"They are indexed at once and then saved in `{state.uploads}`; a file that cannot be read "
                "is refused and the index stays as it was."
            )
            files = gr.File(file_count="multiple", file_types=list(UPLOAD_SUFFIXES), label="Articles")
            add_button = gr.Button("Add to the corpus", variant="primary")
            upload_status = gr.HTML()
            article_list = gr.HTML(articles())

        # No queue limit on questions and checks: AppState bounds the model work (DEFAULT_WORKERS) and the LLM
        # requests (DEFAULT_LLM_REQUESTS) apart, so a slow LLM answer never holds up extractive questions.
        unbounded: dict[str, Any] = {"concurrency_limit": None}
        for trigger in (ask_button.click, question.submit):
            trigger(
                ask,
                [question, k, answerer, as_of],
                [answer_view, answer_json],
                api_name="ask" if trigger == ask_button.click else None,
                api_visibility="public" if trigger == ask_button.click else "private",
                **unbounded,
            )
        check_button.click(check, [check_text], [report_view, report_json], api_name="check", **unbounded)
        last.click(
            lambda record: json.dumps(record, ensure_ascii=False, indent=1) if record else "",
            [answer_json],
            [check_text],
            queue=False,
            api_visibility="private",
        )
        # Its own queue: indexing an upload never holds up questions.
        add_button.click(
            upload,
            [files],
            [upload_status, article_list],
            api_name="upload",
            concurrency_id="corpus",
            concurrency_limit=1,
        )
        app.load(articles, None, [article_list], api_name="articles")
    return app
