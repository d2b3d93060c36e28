"""The browser app's API through gradio_client, against the real app on loopback.

The app runs in this process on a free port, over a private copy of seeds/ and its own index,
because the upload tests change that corpus.
"""

from __future__ import annotations

import json
import shutil
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
INDIA = "What is the value of India's S-400 contract?"
YEAR = "In what year was the first batch of S-400 missiles delivered to Turkey?"
UNANSWERABLE = "What is the capital of Australia?"

NEW_ARTICLE = """Harbour Authority Opens Ferry Terminal in Valletta

The Malta Harbour Authority opened a new ferry terminal in Valletta on March 3, 2021, after two years of building work.

The new ferry terminal in Valletta cost 48 million euros and can handle 12,000 passengers a day, the authority's director, Carmel Zammit, said.

Ferries to Gozo will move to the new terminal in May, easing traffic in the old port.
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_env(tmp_path_factory, embedder):
    """(state, url): the real app over a private corpus copy, served on a free loopback port."""
    from rag.app.startup import start
    from rag.app.state import AppState, app_settings
    from rag.search.index import open_index

    base = tmp_path_factory.mktemp("webapp")
    shutil.copytree(ROOT / "seeds", base / "corpus")
    uploads = base / "uploads"
    settings = app_settings(replace(Settings(), corpus=(base / "corpus",), index_dir=base / "index"), uploads)
    state = AppState(settings, embedder, open_index(settings, embedder), uploads)
    port = free_port()
    app = start(state, "127.0.0.1", port)
    yield state, f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def client(app_env):
    from gradio_client import Client

    return Client(app_env[1], verbose=False)


def _ask(client, question: str, k: int = 5) -> tuple[str, dict]:
    return client.predict(question, k, "extractive", api_name="/ask")


def test_seed_question_gets_an_answer_with_a_citation(client, app_env):
    state, _ = app_env
    html, record = _ask(client, INDIA)
    assert not record["abstained"]
    assert "5 billion" in record["short_answer"]
    citation = record["sentences"][0]["citations"][0]
    doc = state.index.documents[citation["doc_id"]]
    assert doc.text[citation["start"] : citation["end"]] == citation["text"]
    assert "<mark" in html and "rag-cite" in html and record["seconds"] > 0


def test_unanswerable_question_gets_an_abstention(client):
    html, record = _ask(client, UNANSWERABLE)
    assert record["abstained"] and record["sentences"] == []
    assert record["message"] == "The corpus does not answer this question."
    assert 'class="rag-abstain"' in html and record["passages"]  # the closest passages are still shown


def test_bad_input_is_a_one_line_error(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="question is empty"):
        _ask(client, "   ")


def test_the_as_of_date_field_dates_the_search_and_refuses_a_bad_date(client, app_env):
    from gradio_client.exceptions import AppError

    state, _ = app_env
    _, plain = _ask(client, INDIA)
    _, dated = client.predict(INDIA, 5, "extractive", "2019-07-12", api_name="/ask")
    assert dated["passages"] == plain["passages"]  # the seed articles are undated: kept whatever the date
    assert {p["published"] for p in dated["passages"]} == {None}
    with pytest.raises(AppError, match=r"the as-of date '2019-13-12' is not a date"):
        client.predict(INDIA, 5, "extractive", "2019-13-12", api_name="/ask")
    dated_state = state._retriever_as_of("2019-07-12")
    assert dated_state.as_of is not None and dated_state.as_of.isoformat() == "2019-07-12"
    assert state._retriever_as_of("  ").as_of is None


def test_twenty_concurrent_requests_are_all_answered_correctly(client, app_env):
    state, _ = app_env
    questions = [INDIA, YEAR, UNANSWERABLE, "Which organisation does Omar Lamrani work for?"] * 5
    expected = {q: state.ask(q, answerer="extractive")[0] for q in set(questions)}
    jobs = [client.submit(q, 5, "extractive", api_name="/ask") for q in questions]
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda job: job.result(timeout=120), jobs))
    assert len(results) == 20
    for question, (_html, record) in zip(questions, results):
        want = expected[question]
        assert record["question"] == question
        assert record["abstained"] == want.abstained and record["answer"] == want.text
        assert record["short_answer"] == want.short_answer
    answers = {q: r for q, (_, r) in zip(questions, results)}
    assert "5 billion" in answers[INDIA]["short_answer"] and answers[YEAR]["short_answer"] == "2019"
    assert answers[UNANSWERABLE]["abstained"]


def test_check_endpoint_gives_verdicts_with_spans(client, app_env):
    state, _ = app_env
    _, record = _ask(client, INDIA)
    html, report = client.predict(json.dumps(record), api_name="/check")
    assert report["sentences"][0]["verdict"] == "supported"
    evidence = report["sentences"][0]["evidence"]
    assert state.index.documents[evidence["doc_id"]].text[evidence["start"] : evidence["end"]] == evidence["text"]
    assert "rag-verdict supported" in html and "<mark>" in html
    doc_id = next(iter(state.index.documents))
    text = f'Turkey paid 99 billion dollars for the S-400 system [1].\n\nSources:\n[1] {doc_id}: "no such quote here"'
    _, report = client.predict(text, api_name="/check")
    assert report["sentences"][0]["verdict"] == "unsupported"


def test_bad_upload_leaves_corpus_and_index_unchanged(client, app_env, tmp_path):
    from gradio_client import handle_file

    state, _ = app_env
    before = (state.index.path, sorted(p.name for p in state.uploads.iterdir()), len(state.index.documents))
    empty = tmp_path / "empty.txt"
    empty.write_text("   \n")
    binary = tmp_path / "photo.txt"
    binary.write_bytes(b"\x89PNG\x00\x00\x01binary")
    good = tmp_path / "ferry.txt"
    good.write_text(NEW_ARTICLE)
    message, articles = client.predict([handle_file(empty), handle_file(binary), handle_file(good)], api_name="/upload")
    assert "nothing was added" in message and "empty.txt is empty" in message and "photo.txt looks binary" in message
    assert "rag-error" in message
    after = (state.index.path, sorted(p.name for p in state.uploads.iterdir()), len(state.index.documents))
    assert after == before and "ferry" not in articles


def test_upload_updates_the_index_incrementally(client, app_env, tmp_path):
    from gradio_client import handle_file

    state, _ = app_env
    old_documents = set(state.index.documents)
    article = tmp_path / "ferry.txt"
    article.write_text(NEW_ARTICLE)
    message, articles = client.predict([handle_file(article)], api_name="/upload")
    assert "added ferry" in message
    assert "rag-ok" in message and "<code>ferry</code>" in articles
    assert set(state.index.documents) == old_documents | {"ferry"}
    assert (state.uploads / "ferry.txt").read_text() == NEW_ARTICLE
    _, record = _ask(client, "When did the Malta Harbour Authority open the ferry terminal in Valletta?")
    assert not record["abstained"] and record["short_answer"] == "March 3, 2021"
    assert record["sentences"][0]["citations"][0]["doc_id"] == "ferry"
    # Incremental: the seed articles were reused, only the new one embedded.
    assert "2 articles reused" in message and "added 1, changed 0, removed 0" in message


# ---------------------------------------------------------------------------
# Uploads: a size limit, nothing half-added, a start that survives a bad upload


def test_an_upload_over_the_size_limit_is_refused_and_the_page_states_the_limit(client, app_env, tmp_path):
    import httpx

    from rag.errors import RagError

    state, url = app_env
    limit_mb = state.max_upload_bytes / 1_000_000
    assert f"at most {limit_mb:g} MB per file" in httpx.get(url + "config").text
    big = tmp_path / "big.txt"
    big.write_text(NEW_ARTICLE * (state.max_upload_bytes // len(NEW_ARTICLE) + 1))
    # The server stops reading an upload at the limit, whoever sends it …
    with open(big, "rb") as handle:
        response = httpx.post(client.upload_url, files=[("files", ("big.txt", handle))])
    assert response.status_code == 413
    # … and the app refuses such a file from any caller.
    with pytest.raises(RagError, match=rf"big.txt is larger than the {limit_mb:g} MB limit"):
        state.validate([big])


def test_asking_goes_on_while_an_upload_is_being_indexed(client, app_env, tmp_path, monkeypatch):
    import threading

    from gradio_client import handle_file

    import rag.app.state

    from .conftest import time_limit

    _state, _ = app_env
    indexing, release = threading.Event(), threading.Event()
    real_ingest = rag.app.state.ingest

    def slow_ingest(*args, **kwargs):
        indexing.set()
        release.wait(timeout=120)
        return real_ingest(*args, **kwargs)

    monkeypatch.setattr(rag.app.state, "ingest", slow_ingest)
    article = tmp_path / "slowferry.txt"
    article.write_text(NEW_ARTICLE.replace("Valletta", "Mdina"))
    upload = client.submit([handle_file(article)], api_name="/upload")
    try:
        assert indexing.wait(timeout=60)
        with time_limit(60, "asking while an upload is indexed"):
            _, record = _ask(client, INDIA)
        assert "5 billion" in record["short_answer"] and not upload.done()
    finally:
        release.set()
    message, _ = upload.result(timeout=120)
    assert "added slowferry" in message


def _state_for(corpus, embedder, tmp_path):
    from rag.app.startup import load_state

    settings = replace(Settings(), corpus=(corpus,), index_dir=tmp_path / "index")
    return load_state(settings, tmp_path / "uploads")


def test_an_upload_cut_off_by_a_crash_never_enters_the_corpus(tmp_path, embedder):
    """The app dies (kill -9, power cut) while the upload is being indexed: the file is not in the corpus,
    and the next start comes up with the corpus as it was."""
    import os

    import rag.app.state

    shutil.copytree(ROOT / "seeds", tmp_path / "corpus")
    state = _state_for(tmp_path / "corpus", embedder, tmp_path)
    article = tmp_path / "ferry.txt"
    article.write_text(NEW_ARTICLE)
    child = os.fork()
    if child == 0:  # the app, killed in the middle of indexing the upload
        rag.app.state.ingest = lambda *args, **kwargs: os._exit(9)
        state.add_files([article])
        os._exit(0)
    _, status = os.waitpid(child, 0)
    assert os.WEXITSTATUS(status) == 9
    assert [p.name for p in (tmp_path / "uploads").iterdir() if not p.name.startswith(".")] == []
    restarted = _state_for(tmp_path / "corpus", embedder, tmp_path)
    assert "ferry" not in restarted.index.documents and len(restarted.index.documents) == 2
    assert list((tmp_path / "uploads").iterdir()) == []  # what the crash left behind is cleared at start


def test_a_start_with_unusable_uploads_still_comes_up(tmp_path, embedder, monkeypatch, caplog):
    import logging

    from rag.ingest.sentences import nlp

    shutil.copytree(ROOT / "seeds", tmp_path / "corpus")
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "photo.txt").write_bytes(b"\x89PNG\x00\x00\x01binary")
    (uploads / "ferry.txt").write_text(NEW_ARTICLE)
    # A paragraph longer than spaCy takes in one go (its limit lowered to keep this test quick).
    for full in (True, False):
        monkeypatch.setattr(nlp(full), "max_length", 30_000)
    (uploads / "runon.txt").write_text("Minutes Of The Meeting\n\n" + "The board met and agreed. " * 1_500)
    with caplog.at_level(logging.WARNING):
        state = _state_for(tmp_path / "corpus", embedder, tmp_path)
    assert {"ferry", "runon"} <= set(state.index.documents) and "photo" not in state.index.documents
    assert "photo.txt" in caplog.text
