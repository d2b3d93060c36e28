"""The performance paths give the same results as the plain ones: ONNX query vectors, word-piece counts, IVF, FAISS threads."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest

QUESTIONS = [
    "Which law allows the US to penalise countries that buy Russian weapons?",
    "Was kostete der Vertrag? Émoji 🎉 naïve café, 中文",
    "S-400 " * 300,  # longer than the model's 256 word pieces: both paths must truncate alike
]


def test_onnx_query_vectors_match_sentence_transformers(embedder):
    assert embedder.query_encoder is not None, "onnx + onnxruntime are dependencies: the fast path must load"
    plain = embedder.encode_with_model(QUESTIONS, progress=False)
    for row, question in enumerate(QUESTIONS):
        fast = embedder.encode_query(question)
        assert fast.dtype == np.float32 and fast.shape == (embedder.dimension,)
        assert abs(float(np.linalg.norm(fast)) - 1) < 1e-5
        assert float(fast @ plain[row]) > 0.99999


def test_fast_path_can_be_switched_off(embedder, monkeypatch):
    from rag.search import query_encoder

    monkeypatch.setenv("RAG_ONNX_QUERY", "0")
    assert query_encoder.load(embedder) is None
    plain = copy.copy(embedder)
    plain.__dict__["query_encoder"] = None  # what Embedder gets when the fast path is unavailable
    vector = plain.encode_query(QUESTIONS[0])
    assert float(vector @ embedder.encode_with_model([QUESTIONS[0]], progress=False)[0]) > 0.99999


def test_word_piece_counts_equal_the_transformers_tokenizer(embedder, seed_documents):
    tokenizer = embedder.model.tokenizer
    texts = [*QUESTIONS, ""] + [p for doc in seed_documents.values() for p in doc.text.split("\n\n")]
    for text in texts:
        expected = len(tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])
        assert embedder.count_tokens(text) == expected


def test_ivf_lists_follow_the_square_root_rule():
    from rag.search.structures import ivf_lists

    assert ivf_lists(1_000_000) == 4000
    assert ivf_lists(200_000) == int(4 * 200_000**0.5)
    assert ivf_lists(100) == 2  # capped so that every list has enough training points
    assert ivf_lists(5) == 1


def test_approximate_index_saves_loads_and_finds_what_exact_search_finds(embedder, seed_settings, tmp_path):
    from rag.ingest.reading import load_corpus
    from rag.search.build import build_index
    from rag.search.retrieval import Retriever
    from rag.search.store import Index
    from rag.search.structures import IVF_NPROBE

    documents = load_corpus(seed_settings.corpus)
    settings = replace(seed_settings, index_dir=tmp_path / "index", approximate_above=0)
    index, _ = build_index(documents, embedder, settings)
    assert index.manifest["faiss"]["type"] == "ivf"
    index.save(settings.index_dir)
    loaded = Index.load(settings.index_dir)
    assert loaded.faiss.nprobe == IVF_NPROBE and loaded.faiss.ntotal == len(loaded)

    exact, _ = build_index(documents, embedder, replace(settings, approximate_above=10**9))
    question = QUESTIONS[0]
    approximate_top = [p.chunk_id for p in Retriever(loaded, embedder, mode="dense").search(question, k=3)]
    exact_top = [p.chunk_id for p in Retriever(exact, embedder, mode="dense").search(question, k=3)]
    assert approximate_top == exact_top  # a dozen chunks fit one IVF list: the search is exhaustive


@pytest.mark.parametrize("threads", [1, 2])
def test_single_query_search_restores_faiss_threads(seed_index, threads):
    import faiss

    from rag.search.backend import search_one as _search_one

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        _search_one(seed_index.faiss, seed_index.vectors[:1], 3)
        assert faiss.omp_get_max_threads() == threads
    finally:
        faiss.omp_set_num_threads(before)


def test_batched_onnx_vectors_match_sentence_transformers_on_passage_sentences(embedder, seed_documents):
    from rag.ingest.sentences import sentence_spans

    doc = next(iter(seed_documents.values()))
    sentences = [doc.text[s:e] for s, e in sentence_spans(doc.text)][:20]
    fast = embedder.encode(sentences)  # few texts: the ONNX path, padded batches
    plain = embedder.encode_with_model(sentences, progress=False)
    assert fast.shape == plain.shape
    assert float(np.min(np.sum(fast * plain, axis=1))) > 0.99999


def test_int8_passage_vectors_do_not_depend_on_the_other_texts_embedded_with_them(embedder, seed_documents):
    from rag.ingest.sentences import sentence_spans
    from rag.search import bulk_encoder

    doc = next(iter(seed_documents.values()))
    sentences = [doc.text[s:e] for s, e in sentence_spans(doc.text)][:12]
    int8 = bulk_encoder.load(embedder, "int8")
    together = int8.encode(sentences)
    alone = np.concatenate([int8.encode([s]) for s in sentences])
    with_others = int8.encode([*reversed(sentences), "A much longer text " * 40])[: len(sentences)][::-1]
    assert np.array_equal(together, alone)  # an incremental build gives a fresh build's vectors
    assert np.array_equal(together, with_others)
    float32 = embedder.encode_with_model(sentences, progress=False)
    assert float(np.min(np.sum(together * float32, axis=1))) > bulk_encoder.MIN_INT8_AGREEMENT


def test_answering_over_an_existing_index_never_imports_sentence_transformers(embedder, seed_settings, seed_index):
    """Cold start: once the fast path is verified, a process that only answers skips sentence-transformers.

    (spaCy's thinc still imports torch when it is installed; sentence-transformers and the
    scikit-learn it pulls in are the larger cost.)
    """
    import subprocess
    import sys

    assert embedder.query_encoder is not None  # verified here, remembered beside the graph
    code = f"""
import sys
from pathlib import Path
from rag.answer.pipeline import ask
from rag.search.embedding import default_embedder
from rag.search.index import open_index
from rag.search.retrieval import Retriever
from rag.settings import Settings

settings = Settings(corpus=(Path({str(seed_settings.corpus[0])!r}),), index_dir=Path({str(seed_settings.index_dir)!r}))
embedder = default_embedder()
answer = ask("Which organisation does Omar Lamrani work for?", Retriever(open_index(settings, embedder), embedder))
assert answer.passages and answer.answerer == "reader", answer.to_dict()
heavy = [m for m in ("sentence_transformers", "sklearn") if m in sys.modules]
assert not heavy, heavy
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_the_spacy_pipelines_load_once_however_they_are_asked_for():
    from rag.ingest.sentences import nlp

    assert nlp() is nlp(True) is nlp(full=True)  # three spellings, one pipeline: no reload per question
    assert nlp(full=False) is nlp(False)
    assert nlp() is not nlp(full=False)
