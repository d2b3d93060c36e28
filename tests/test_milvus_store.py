"""The Milvus store against the local one on the seeds, twice: in a Milvus Lite file, and on a Milvus
standalone server reached by URI (the `milvus` package runs Milvus' own server binary, with its embedded
etcd, on free local ports); and the FAISS index chosen by size."""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace

import numpy as np
import pytest

from rag.cli import main
from rag.search.backend import store_record
from rag.search.index import ingest, open_index
from rag.search.retrieval import Retriever
from rag.search.structures import PQ_MIN_ROWS, faiss_kind
from rag.settings import StoreChoice

from .conftest import ROOT, SEEDS, small_faiss

# The store is an optional extra (`.[milvus]`, part of `.[test]`): without it there is nothing to test.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pymilvus") is None or importlib.util.find_spec("milvus_lite") is None,
    reason="pymilvus and milvus-lite are not installed",
)

GOLD = [json.loads(line)["question"] for line in (ROOT / "eval" / "seeds_gold.jsonl").open()]


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory):
    """The URI of a Milvus server started for these tests (about 20 s), stopped after them."""
    if importlib.util.find_spec("milvus") is None:
        pytest.skip("the milvus package (a Milvus standalone server) is not installed")
    from milvus import MilvusServer

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 2380)) == 0:
            pytest.skip("port 2380 is taken: the server's embedded etcd always listens there")
    base = tmp_path_factory.mktemp("milvus-server")
    server = MilvusServer(wait_for_started=False)
    server.set_base_dir(str(base))
    server.start()
    try:
        health = f"http://127.0.0.1:{server.webservice_port}/healthz"
        deadline = time.monotonic() + 120
        while not _answers(health):
            if server.server_proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Milvus server did not start: see {base / 'logs'}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{server.listen_port}"
    finally:
        server.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return b"OK" in reply.read()
    except OSError:
        return False


@pytest.fixture(scope="module", params=["lite", "server"])
def milvus(request, tmp_path_factory, seed_settings, embedder):
    """Settings and index of a private copy of the seeds kept in a Milvus Lite file, or on a server."""
    base = tmp_path_factory.mktemp("milvus")
    shutil.copytree(SEEDS, base / "corpus")
    uri = str(base / "chunks.db") if request.param == "lite" else request.getfixturevalue("milvus_server")
    choice = StoreChoice.parse(f"milvus:{uri}")
    settings = replace(seed_settings, corpus=(base / "corpus",), index_dir=base / "index", store=choice)
    return settings, open_index(settings, embedder)


def chunk_names(index, ranked):
    return [(index.chunks[i].doc_id, index.chunks[i].chunk_id) for i, _ in ranked]


def rows_held(settings) -> int:
    from rag.search.milvus_connection import client_for

    client = client_for(settings.store)
    return len(client.query(settings.store.collection, filter="id >= 0", output_fields=["id"]))


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_milvus_gives_the_local_top_ten_on_the_seed_questions(milvus, seed_index, embedder, mode):
    _, index = milvus
    local, remote = Retriever(seed_index, embedder), Retriever(index, embedder)
    assert type(remote.backend).__name__ == "MilvusStore"
    for question in GOLD:
        expected = chunk_names(seed_index, local.ranked(question, 10, mode))
        assert chunk_names(index, remote.ranked(question, 10, mode)) == expected, question
        if mode == "dense":
            scores = [s for _, s in remote.ranked(question, 10, mode)]
            assert np.allclose(scores, [s for _, s in local.ranked(question, 10, mode)], atol=1e-5)


def test_the_manifest_names_the_store_without_its_secret(milvus):
    settings, index = milvus
    assert index.manifest["store"] == {
        "kind": "milvus",
        "uri": settings.store.uri,
        "collection": "rag_chunks",
        "lexical": "local",
    }
    record = store_record(StoreChoice.parse("milvus:https://alice:s3cret-pass@milvus.example:19530"))
    assert "s3cret" not in json.dumps(record) and record["uri"] == "https://milvus.example:19530"


def test_rag_ask_answers_the_same_with_valid_citations(milvus, seed_settings, capsys):
    settings, index = milvus
    question = "What is the value of India's S-400 contract?"
    answers = []
    for store, folder in (("local", seed_settings.index_dir), (f"milvus:{settings.store.uri}", settings.index_dir)):
        assert main(["ask", question, "--index", str(folder), "--store", store, "--no-rebuild", "--json"]) == 0
        answers.append(json.loads(capsys.readouterr().out))
    local, remote = answers
    assert remote["sentences"] == local["sentences"] and remote["passages"] == local["passages"]
    assert remote["sentences"], "the seeds answer this question"
    for sentence in remote["sentences"]:
        for c in sentence["citations"]:
            assert index.documents[c["doc_id"]].text[c["start"] : c["end"]] == c["text"]


def test_an_as_of_date_filters_in_milvus_as_it_does_locally(milvus, seed_index, embedder):
    from datetime import date

    _, index = milvus
    # The seeds are undated: kept by any date, so both stores rank as without one.
    for as_of in (date(1990, 1, 1), date(2030, 1, 1)):
        local, remote = Retriever(seed_index, embedder, as_of=as_of), Retriever(index, embedder, as_of=as_of)
        assert chunk_names(index, remote.ranked(GOLD[0], 10)) == chunk_names(seed_index, local.ranked(GOLD[0], 10))


def test_a_changed_added_or_removed_article_updates_only_its_rows(milvus, embedder):
    settings, index = milvus
    corpus = settings.corpus[0]
    first, second = sorted(corpus.glob("*.txt"))
    kept = {c.doc_id for c in index.chunks if c.doc_id == first.stem}
    new_text = "Zorblatt Industries unveiled a solar kettle in Reykjavik on Tuesday, its chief engineer said."
    (corpus / "003_added.txt").write_text(f"Solar kettle unveiled\n\n{new_text}\n")
    second.write_text(second.read_text() + "\n\nThe ministry later denied every report of the deal.\n")
    updated, report = ingest(settings, embedder, progress=False)
    assert report.added == ("003_added",) and report.changed == (second.stem,) and kept
    store = updated.artefacts["milvus"]
    assert rows_held(settings) == len(updated.chunks)
    # The unchanged article keeps its rows; the changed and added ones were the only ones written.
    assert store.sync() == (0, 0)
    hits = Retriever(updated, embedder).search("Who unveiled a solar kettle in Reykjavik?", k=3)
    assert hits[0].doc_id == "003_added"

    (corpus / "003_added.txt").unlink()
    removed, report = ingest(settings, embedder, progress=False)
    assert report.removed == ("003_added",)
    assert rows_held(settings) == len(removed.chunks)
    hits = Retriever(removed, embedder).search("Who unveiled a solar kettle in Reykjavik?", k=10)
    assert "003_added" not in {p.doc_id for p in hits}


def test_a_search_sees_what_another_process_has_just_ingested(milvus, embedder):
    settings, _ = milvus
    if settings.store.uri.endswith(".db"):
        pytest.skip("Milvus Lite serves one process at a time")
    added = settings.corpus[0] / "004_other_process.txt"
    added.write_text(
        "Harbour strike ends\n\nDock workers in Quillsby ended a nine-day strike on Friday, the union said.\n"
    )
    store = ["--store", f"milvus:{settings.store.uri}", "--index", str(settings.index_dir)]
    try:
        command = [sys.executable, "-m", "rag", "ingest", str(settings.corpus[0]), "-q", *store]
        subprocess.run(command, check=True, cwd=ROOT, capture_output=True)
        hits = Retriever(open_index(settings, embedder), embedder).search("Where did dock workers end a strike?", k=3)
        assert hits[0].doc_id == "004_other_process"
    finally:
        added.unlink()
        ingest(settings, embedder, progress=False)


def test_a_damaged_store_file_is_a_one_line_error_naming_it(tmp_path, embedder, seed_settings, capsys):
    from rag.search.milvus_connection import close_clients

    shutil.copytree(SEEDS, tmp_path / "corpus")
    path = tmp_path / "damaged.db"
    store = ["--store", f"milvus:{path}", "--index", str(tmp_path / "index")]
    assert main(["ingest", str(tmp_path / "corpus"), "-q", *store]) == 0
    close_clients()  # the Milvus Lite server lets go of the file
    path.write_bytes(b"not a database" * 100)
    capsys.readouterr()
    assert main(["search", "Who sold S-400s to Turkey?", *store]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and str(path) in error and "rag ingest" in error


def test_milvus_bm25_on_a_server_older_than_2_5_is_refused_and_keeps_the_collection(milvus, capsys):
    settings, _ = milvus
    if settings.store.uri.endswith(".db"):
        pytest.skip("Milvus Lite of the 2.5 line has the BM25 function")
    held = rows_held(settings)
    store = ["--store", f"milvus:{settings.store.uri}", "--index", str(settings.index_dir)]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAG_MILVUS_LEXICAL", "milvus")
        assert main(["ingest", str(settings.corpus[0]), "-q", *store]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and settings.store.uri in error and "RAG_MILVUS_LEXICAL" in error
    assert rows_held(settings) == held  # nothing was dropped
    assert main(["search", "Who sold S-400s to Turkey?", *store]) == 0


def test_an_unreachable_server_is_a_one_line_error_naming_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RAG_MILVUS_TIMEOUT", "1")
    shutil.copytree(SEEDS, tmp_path / "corpus")
    uri = "http://127.0.0.1:9"  # the discard port: nothing answers gRPC there
    code = main(["ingest", str(tmp_path / "corpus"), "-q", "--store", f"milvus:{uri}", "--index", str(tmp_path / "i")])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and uri in error and "start the server" in error


@pytest.mark.parametrize("text", ["milvus", "milvus:", "faiss", "milvus: "])
def test_a_bad_store_is_one_line_naming_the_forms(text):
    from rag.errors import RagError

    with pytest.raises(RagError, match="milvus:PATH_OR_URI"):
        StoreChoice.parse(text)


@pytest.mark.parametrize(
    ("n", "kind"), [(50, "flat"), (100, "flat"), (101, "ivf"), (PQ_MIN_ROWS, "ivf"), (PQ_MIN_ROWS + 1, "ivfpq")]
)
def test_the_faiss_index_is_chosen_by_size(n, kind):
    assert faiss_kind(n, approximate_above=100, compress_above=1_000) == kind


@pytest.mark.parametrize("kind", ["flat", "ivf", "ivfpq"])
def test_each_faiss_kind_builds_and_finds_a_stored_vector_first(kind):
    import faiss

    from rag.search.backend import search_one
    from rag.search.structures import rerank

    rng = np.random.default_rng(0)
    # Small on purpose (3,000 x 32): the sizes that choose each kind are tested above; PQ trains here
    # on fewer points than it asks for (FAISS warns) to keep the test to seconds.
    centres = rng.standard_normal((40, 32)).astype(np.float32)
    vectors = centres[rng.integers(0, 40, 3_000)] + 0.3 * rng.standard_normal((3_000, 32))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    index = small_faiss(vectors, kind)
    expected = {"flat": faiss.IndexFlatIP, "ivf": faiss.IndexIVFFlat, "ivfpq": faiss.IndexIVFPQ}[kind]
    assert isinstance(index, expected) and index.ntotal == len(vectors)
    for row in (0, 1234, len(vectors) - 1):
        query = vectors[row : row + 1]
        _, ids = search_one(index, query, 80)
        assert rerank(vectors, query, ids[0], 1)[0][0] == row
