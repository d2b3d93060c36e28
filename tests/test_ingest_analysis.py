"""The stored sentence analysis, the old-format rebuild and resuming an interrupted ingest (issue 14)."""

import json
import logging
import shutil
from dataclasses import replace

import pytest

import rag.search.indexing
from rag.search.analysis_store import StoredAnalysis
from rag.search.generations import resume_folder
from rag.search.index import ingest, open_index
from rag.search.store import Index

from .conftest import SEEDS

MORE = """Finland Opens Its First Permanent Nuclear Waste Repository

Finland opened the Onkalo repository near Eurajoki on Tuesday. The tunnels lie about 430 metres below ground.

Posiva, the company that runs it, said the first canisters would arrive in 2025.
"""


@pytest.fixture
def settings(tmp_path, seed_settings):
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    (corpus / "finland.txt").write_text(MORE)
    return replace(seed_settings, corpus=(corpus,), index_dir=tmp_path / "index")


def test_paragraphs_are_parsed_docs_at_the_exact_offsets_of_the_document_text(seed_index):
    analysis = seed_index.artefacts["analysis"]
    assert isinstance(analysis, StoredAnalysis)
    assert "parser" in seed_index.manifest["analysis"]["components"]
    assert "ner" in seed_index.manifest["analysis"]["components"]
    for doc_id, document in seed_index.documents.items():
        every = analysis.paragraphs(doc_id, 0, len(document.text))
        assert every and [offset for offset, _ in every] == sorted(offset for offset, _ in every)
        for offset, doc in every:
            assert doc.text == document.text[offset : offset + len(doc.text)]
            assert doc.has_annotation("DEP") and doc.has_annotation("ENT_IOB") and doc.has_annotation("LEMMA")
        assert any(doc.ents for _, doc in every)
        for chunk in seed_index.chunks_of(doc_id):
            overlapping = analysis.paragraphs(doc_id, chunk.start, chunk.end)
            assert overlapping[0][0] <= chunk.start
            assert overlapping[-1][0] + len(overlapping[-1][1].text) >= chunk.end - 1
            assert all(o < chunk.end and o + len(d.text) > chunk.start for o, d in overlapping)
    with pytest.raises(KeyError):
        analysis.paragraphs("no-such-article", 0, 10)


def test_an_incremental_ingest_keeps_the_analysis_of_unchanged_articles(settings, embedder):
    first, _ = ingest(settings, embedder)
    before = {d: [(o, doc.to_json()) for o, doc in first.artefacts["analysis"].document(d)] for d in first.documents}
    (settings.corpus[0] / "finland.txt").write_text(MORE.replace("Tuesday", "Wednesday"))
    second, report = ingest(settings, embedder)
    assert report.changed == ("finland",) and report.reused_documents == 2
    after = second.artefacts["analysis"]
    for doc_id in ("000_bbbc7011c7c84b3f", "002_16737bcee59f1979"):
        assert [(o, doc.to_json()) for o, doc in after.document(doc_id)] == before[doc_id]
    assert any("Wednesday" in doc.text for _, doc in after.document("finland"))


def test_an_index_of_the_old_format_is_rebuilt_with_a_message(settings, embedder, caplog):
    index, _ = ingest(settings, embedder)
    manifest_path = index.path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps(manifest | {"format": 1}))
    with caplog.at_level(logging.WARNING):
        rebuilt = open_index(replace(settings, corpus=()), embedder)
    assert "has format 1, made by another version of rag" in caplog.text
    assert set(rebuilt.documents) == set(index.documents) and "analysis" in rebuilt.artefacts


def test_an_interrupted_ingest_resumes_from_the_articles_already_embedded(settings, embedder, monkeypatch):
    ingest(settings, embedder)
    live = Index.load(settings.index_dir)
    for name in ("a", "b", "c"):
        (settings.corpus[0] / f"{name}.txt").write_text(MORE.replace("Finland", f"Finland {name}"))
    monkeypatch.setattr(rag.search.indexing, "EMBED_WINDOW", 1)  # one article per journal entry
    calls = []
    encode = embedder.encode_passages

    def interrupted(texts, *args, **kwargs):
        calls.append(len(texts))
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl+C after two articles were embedded
        return encode(texts, *args, **kwargs)

    monkeypatch.setattr(embedder, "encode_passages", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ingest(settings, embedder)
    # The live index is untouched; the journal holds the two finished articles.
    assert Index.load(settings.index_dir).path == live.path
    assert resume_folder(settings.index_dir).is_dir()
    monkeypatch.setattr(embedder, "encode_passages", encode)
    resumed, report = ingest(settings, embedder)
    assert report.resumed == 2 and report.added == ("a", "b", "c")
    assert not resume_folder(settings.index_dir).exists()
    shutil.rmtree(settings.index_dir)
    fresh, _ = ingest(settings, embedder)
    assert resumed.chunks == fresh.chunks
    assert abs(resumed.vectors - fresh.vectors).max() < 1e-4
    for doc_id in ("a", "b", "c"):
        assert [d.to_json() for _, d in resumed.artefacts["analysis"].document(doc_id)] == [
            d.to_json() for _, d in fresh.artefacts["analysis"].document(doc_id)
        ]


def test_a_passage_decodes_only_the_paragraphs_it_overlaps_and_they_match_the_whole_document(seed_index):
    stored = seed_index.artefacts["analysis"]
    doc_id = max(seed_index.documents, key=lambda d: len(stored.document(d)))
    whole = stored.document(doc_id)
    fresh = StoredAnalysis(stored.path)
    start, end = whole[2][0] + 1, whole[3][0] + 5  # from inside the third paragraph into the fourth
    part = fresh.paragraphs(doc_id, start, end)
    assert [offset for offset, _ in part] == [whole[2][0], whole[3][0]]
    assert [doc.to_json() for _, doc in part] == [doc.to_json() for _, doc in whole[2:4]]
    assert len(fresh._decoded) == 2  # the document's other paragraphs were never made into Docs
