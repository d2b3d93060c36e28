"""Chunks: exact offsets, sentence boundaries, and the embedder's input limit."""

import itertools

import pytest

from rag.ingest.chunking import chunk_document, count_tokens
from rag.ingest.reading import load_corpus
from rag.ingest.sentences import sentence_spans
from rag.records import Document
from rag.settings import ChunkSettings

from .conftest import SEEDS


@pytest.fixture(scope="module")
def seed_docs():
    return load_corpus([SEEDS])


@pytest.mark.parametrize("settings", [ChunkSettings(), ChunkSettings(60, 20), ChunkSettings(240, 0)])
def test_every_chunk_is_exactly_the_document_text_at_its_offsets(seed_docs, settings):
    for doc in seed_docs:
        for chunk in chunk_document(doc, settings):
            assert doc.text[chunk.start : chunk.end] == chunk.text
            assert chunk.doc_id == doc.id
            assert count_tokens(chunk.text) <= settings.max_tokens


def test_every_sentence_lies_wholly_inside_some_chunk(seed_docs):
    for doc in seed_docs:
        chunks = chunk_document(doc, ChunkSettings(80, 20))
        for start, end in sentence_spans(doc.text):
            assert any(c.start <= start and end <= c.end for c in chunks), doc.text[start:end]


def test_chunks_start_and_end_at_sentence_boundaries(seed_docs):
    for doc in seed_docs:
        bounds = {s for s, _ in sentence_spans(doc.text)}, {e for _, e in sentence_spans(doc.text)}
        for chunk in chunk_document(doc):
            assert chunk.start in bounds[0] and chunk.end in bounds[1]


def test_consecutive_chunks_overlap_by_whole_sentences(seed_docs):
    doc = seed_docs[0]
    chunks = chunk_document(doc, ChunkSettings(80, 40))
    assert len(chunks) > 3
    assert any(b.start < a.end for a, b in itertools.pairwise(chunks))
    assert all(b.start > a.start for a, b in itertools.pairwise(chunks))


def test_no_chunk_exceeds_the_embedders_own_input_limit(seed_docs, embedder):
    # Digits and rare words cost far more word pieces than cl100k tokens.
    numbers = " ".join(f"{n * 7919:,}.{n % 97:02d}%" for n in range(400))
    docs = [*seed_docs, Document(id="numbers", title="n", text=numbers)]
    for doc in docs:
        for chunk in chunk_document(doc, ChunkSettings(400, 40), fits=embedder.fits):
            assert embedder.count_tokens(chunk.text) <= embedder.max_tokens == 256


def test_a_sentence_longer_than_a_chunk_is_cut_at_word_boundaries():
    words = " ".join(f"word{i}" for i in range(600))
    doc = Document(id="long", title="t", text=words + ".")
    chunks = chunk_document(doc, ChunkSettings(50, 10))
    assert len(chunks) > 5
    for chunk in chunks:
        assert count_tokens(chunk.text) <= 50
        assert not chunk.text.startswith(" ") and doc.text[chunk.start - 1] in " " if chunk.start else True


def test_overlap_must_be_smaller_than_the_chunk():
    with pytest.raises(ValueError, match="overlap"):
        chunk_document(Document(id="x", title="x", text="Hello."), ChunkSettings(20, 20))
