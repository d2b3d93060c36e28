"""Opening an index cheaply (file stamps instead of reading the corpus) and extra per-generation artefacts."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest

import rag.errors
import rag.search.index
from rag.search.index import ingest, open_index
from rag.search.store import Index

from .conftest import SEEDS

OLD = time.time() - 3600  # a modification time long past: trusted without hashing


@pytest.fixture
def settings(tmp_path, seed_settings):
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    for path in corpus.iterdir():
        os.utime(path, (OLD, OLD))
    return replace(seed_settings, corpus=(corpus,), index_dir=tmp_path / "index")


def forbid_reading(monkeypatch) -> None:
    """From now on, reading the corpus to open an index fails the test."""
    monkeypatch.setattr(rag.search.index, "read_corpus", lambda *a, **k: pytest.fail("the corpus was read"))


def _hashes(monkeypatch) -> list[str]:
    """Records the files whose bytes ``corpus_unchanged`` hashes."""

    hashed: list[str] = []
    real = Path.read_bytes

    def spy(path: Path) -> bytes:
        hashed.append(path.name)
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", spy)
    return hashed


def test_an_unchanged_corpus_is_recognised_from_file_stamps_alone(settings, embedder, monkeypatch):
    built, _ = ingest(settings, embedder)
    assert built.corpus_files is not None and len(built.corpus_files) == 2
    hashed = _hashes(monkeypatch)
    forbid_reading(monkeypatch)
    index = open_index(settings, embedder, rebuild=False)
    assert index.path == built.path and hashed == []


def test_a_touched_file_is_hashed_but_the_corpus_is_not_read(settings, embedder, monkeypatch):
    ingest(settings, embedder)
    forbid_reading(monkeypatch)
    touched = sorted(settings.corpus[0].iterdir())[0]
    os.utime(touched, (OLD + 60, OLD + 60))
    hashed = _hashes(monkeypatch)
    open_index(settings, embedder, rebuild=False)
    assert hashed == [touched.name]


def test_a_changed_file_of_the_same_size_is_found_by_its_hash(settings, embedder):
    ingest(settings, embedder)
    path = sorted(settings.corpus[0].iterdir())[0]
    text = path.read_text()
    path.write_text(text.replace("Turkey", "Turkei", 1))  # same size
    os.utime(path, (OLD + 60, OLD + 60))
    index = open_index(settings, embedder)
    assert "Turkei" in index.documents[path.stem].text


def test_a_new_file_makes_the_index_stale(settings, embedder):
    ingest(settings, embedder)
    (settings.corpus[0] / "new.txt").write_text(
        "Malta Opens a Ferry Terminal\n\nMalta opened a ferry terminal in 2021.\n"
    )
    index = open_index(settings, embedder)
    assert "new" in index.documents


def test_an_index_without_stamps_reads_the_corpus_once_and_records_them(settings, embedder, monkeypatch):
    built, _ = ingest(settings, embedder)
    (built.path / "corpus-files.json").unlink()  # as an index built before stamps were recorded
    index = open_index(settings, embedder, rebuild=False)
    assert index.path == built.path and (built.path / "corpus-files.json").is_file()
    forbid_reading(monkeypatch)
    assert open_index(settings, embedder, rebuild=False).path == built.path


class ChunkCounts:
    """A test artefact: the number of chunks of each document, as JSON."""

    name = "chunk-counts.json"

    def __init__(self) -> None:
        self.built_with_previous: list[bool] = []

    def build(self, index: Index, previous: Index | None) -> dict[str, int]:
        self.built_with_previous.append(previous is not None)
        return {doc_id: len(index.chunks_of(doc_id)) for doc_id in index.documents}

    def save(self, value: dict[str, int], path: Path) -> None:
        path.write_text(json.dumps(value))

    def load(self, path: Path, index: Index) -> dict[str, int]:
        value = json.loads(path.read_text())
        if set(value) != set(index.documents):
            raise ValueError("counts of other documents")
        return value


def test_an_extra_artefact_is_built_saved_checked_and_loaded_with_its_generation(settings, embedder):
    counts = ChunkCounts()
    index, _ = ingest(settings, embedder, artefacts=[counts])
    expected = {doc_id: len(index.chunks_of(doc_id)) for doc_id in index.documents}
    assert index.artefacts[counts.name] == expected
    assert index.manifest["artefacts"] == [counts.name] and counts.name in index.manifest["files"]
    assert Index.load(settings.index_dir, [counts]).artefacts[counts.name] == expected

    (index.path / counts.name).write_text("{}")  # another size: damage, so rebuilt from the corpus
    rebuilt = open_index(settings, embedder, artefacts=[counts])
    assert rebuilt.path != index.path and rebuilt.artefacts[counts.name] == expected


def test_an_index_lacking_an_artefact_asked_for_is_updated_to_hold_it(settings, embedder):
    plain, _ = ingest(settings, embedder)
    counts = ChunkCounts()
    with pytest.raises(rag.errors.IndexMismatchError, match=r"lacks chunk-counts\.json"):
        open_index(settings, embedder, rebuild=False, artefacts=[counts])
    index = open_index(settings, embedder, artefacts=[counts])
    assert index.path != plain.path and counts.name in index.artefacts
    assert counts.built_with_previous == [True]  # an update can reuse what the previous generation holds
