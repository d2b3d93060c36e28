"""Large documents: text goes through spaCy in bounded pieces, with progress shown from the start.

spaCy refuses a text longer than its ``max_length`` (1,000,000 characters: error E088), and its
memory grows with the length of what it parses. Paragraphs longer than a piece are cut at sentence
ends (else at spaces) before parsing. The tests lower spaCy's limit to 30,000 characters so that a
paragraph "over the limit" costs seconds, not minutes: the code path is the same at any size
(`bench/bench_large_documents.py` measures the real sizes).
"""

from __future__ import annotations

import itertools
import logging
import shutil
from dataclasses import replace

import pytest

from rag.ingest.chunking import chunk_document
from rag.records import Document

from .conftest import SEEDS, time_limit

SPACY_LIMIT = 30_000


@pytest.fixture
def small_spacy_limit(monkeypatch):
    from rag.ingest.sentences import nlp

    for full in (True, False):
        monkeypatch.setattr(nlp(full), "max_length", SPACY_LIMIT)


@pytest.fixture(scope="module")
def seed_sentences() -> str:
    """The seed articles' text as one paragraph (about 7,000 characters)."""
    from rag.ingest.reading import load_corpus

    return " ".join(" ".join(d.text.split()) for d in load_corpus([SEEDS]))


def one_paragraph(seed_sentences: str, at_least: int) -> str:
    return " ".join([seed_sentences] * (at_least // len(seed_sentences) + 1))


def test_sentence_pieces_are_bounded_and_cover_the_text(seed_sentences):
    from rag.ingest.sentences import MAX_PIECE_CHARS, analysis_spans

    text = "Headline\n\n" + one_paragraph(seed_sentences, 3 * MAX_PIECE_CHARS) + "\n\nLast paragraph."
    spans = analysis_spans(text)
    assert all(0 < end - start <= MAX_PIECE_CHARS for start, end in spans)
    assert "".join(text[s:e] for s, e in spans).replace(" ", "") == text.replace(" ", "").replace("\n", "")
    # Long paragraphs are cut after a sentence, not inside a word.
    assert all(text[e - 1] in ".!?\"'”’)" for s, e in spans[1:-2])


def test_spacy_reads_a_long_article_in_batches_of_bounded_length(seed_sentences, monkeypatch):
    """spaCy's parser needs memory in proportion to what it reads at once: batches are cut by characters,
    so peak memory stays the same for any article (bench/bench_large_documents.py measures it)."""
    from rag.ingest import sentences

    pipeline = sentences.nlp(full=False)
    real_pipe, batches = pipeline.pipe, []

    def recording_pipe(texts, **options):
        texts = list(texts)
        batches.append(sum(map(len, texts)))
        return real_pipe(texts, **options)

    monkeypatch.setattr(pipeline, "pipe", recording_pipe)
    text = one_paragraph(seed_sentences, 4 * sentences.PIPE_BATCH_CHARS)
    sentences.sentence_spans(text)
    assert len(batches) >= 4 and max(batches) <= sentences.PIPE_BATCH_CHARS
    assert sum(batches) > 0.99 * len(text)  # all of it (but the spaces where pieces were cut)


def test_a_paragraph_longer_than_spacys_limit_is_cut_into_passages(small_spacy_limit, seed_sentences):
    text = one_paragraph(seed_sentences, 2 * SPACY_LIMIT)
    doc = Document(id="huge", title="Huge", text=text)
    chunks = chunk_document(doc)
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert all(a.start < b.start and not text[a.end : b.start].strip() for a, b in itertools.pairwise(chunks))  # no gap


@pytest.fixture
def huge_corpus(tmp_path, seed_sentences, seed_settings):
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    (corpus / "huge.txt").write_text(
        "Arms Exports Report\n\n" + one_paragraph(seed_sentences, SPACY_LIMIT + 5_000) + "\n"
    )
    return replace(seed_settings, corpus=(corpus,), index_dir=tmp_path / "index")


def test_ingest_ask_and_check_over_a_paragraph_longer_than_spacys_limit(
    small_spacy_limit, huge_corpus, embedder, capsys
):
    from rag.answer.pipeline import ask
    from rag.cli import main
    from rag.search.index import ingest
    from rag.search.retrieval import Retriever

    index, report = ingest(huge_corpus, embedder)
    assert "huge" in index.documents and report.documents == 3
    answer = ask("Who heads Turkey's Defense Industry Directorate?", Retriever(index, embedder))
    assert answer.short_answer == "Ismail Demir"
    long_answer = huge_corpus.index_dir.parent / "answer.md"
    long_answer.write_text(
        "Turkey, " * (SPACY_LIMIT // 8 + 100) + "and Russia signed a deal [1].\n\n"
        '[1] huge: "Turkey bought S-400 missiles from Russia"\n'
    )
    code = main(["check", str(long_answer), "--index", str(huge_corpus.index_dir), "--no-rebuild", "--no-propose"])
    captured = capsys.readouterr()
    assert code in (0, 1) and "Traceback" not in captured.err and captured.out, captured.err


def test_ingest_shows_progress_before_it_cuts_the_first_article(huge_corpus, embedder, capsys, monkeypatch):
    import rag.ingest.parallel
    from rag.search.index import ingest

    monkeypatch.setenv("RAG_INGEST_WORKERS", "0")  # cut here, where the spy sees it
    seen_at_first_cut = []
    cut = rag.ingest.parallel.chunk_document

    def spy(doc, *args, **kwargs):
        if not seen_at_first_cut:
            seen_at_first_cut.append(capsys.readouterr().err)
        return cut(doc, *args, **kwargs)

    monkeypatch.setattr(rag.ingest.parallel, "chunk_document", spy)
    ingest(huge_corpus, embedder, progress=True)
    before, after = seen_at_first_cut[0], capsys.readouterr().err
    assert "reading articles" in before and "100%" in before  # the corpus was read with a bar
    assert "indexing articles" in before  # the one ingest bar is up before the work starts
    assert "indexing articles: 100%" in after and "3/3" in after


def test_an_article_that_cannot_be_cut_is_skipped_with_a_warning(huge_corpus, embedder, monkeypatch, caplog):
    import rag.ingest.parallel
    from rag.search.index import ingest

    monkeypatch.setenv("RAG_INGEST_WORKERS", "0")  # cut here, where the patch applies
    cut = rag.ingest.parallel.chunk_document

    def broken_on_huge(doc, *args, **kwargs):
        if doc.id == "huge":
            raise ValueError("[E088] Text of length 1200000 exceeds maximum of 1000000")
        return cut(doc, *args, **kwargs)

    monkeypatch.setattr(rag.ingest.parallel, "chunk_document", broken_on_huge)
    with caplog.at_level(logging.WARNING):
        index, report = ingest(huge_corpus, embedder)
    # Kept without passages, so the index still matches the corpus (no rebuild on every start).
    assert index.chunks_of("huge") == [] and len(index.documents) == 3 and report.skipped == ("huge",)
    assert "skipped huge" in caplog.text and "E088" in caplog.text and "skipped 1" in report.summary()
    assert index.chunks_of("000_bbbc7011c7c84b3f")


def test_long_runs_of_capitalised_words_are_analysed_in_linear_time():
    """All-caps wire copy or a page of names: law names are looked for word run by word run, not from
    every capital letter to the end of the run (which took 5 s for 34,000 characters and grew as the square)."""
    from rag.answer.analysis import _law_acronyms

    law = "later, the Countering America’s Adversaries Through Sanctions Act (CAATSA) was passed"
    page = " ".join(["WASHINGTON Senate Committee Hearing Report"] * 2_500) + " " + law
    with time_limit(20, "looking for law names in 110,000 characters of capitalised words"):
        assert _law_acronyms(page) == frozenset({"CAATSA"})
