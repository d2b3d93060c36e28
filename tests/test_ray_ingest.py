"""`rag ingest --ray` on a local Ray instance started here: the same index as the local build, and one-line
errors for a cluster that cannot be reached or a Ray that is not installed."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest

from rag.cli import main
from rag.errors import RagError
from rag.ingest.reading import read_corpus
from rag.search.index import STANDARD_ARTEFACTS, open_index
from rag.search.ray_ingest import RayOptions, ray_engine
from rag.search.store import Index

from .conftest import ROOT

QUESTION = "What is the value of India's S-400 contract?"


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'rag-news[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def on_ray(ray_instance, seed_settings, seed_index, tmp_path_factory):
    """Settings and index of the seeds built with `rag ingest --ray` (one article per embedding call)."""
    settings = replace(seed_settings, index_dir=tmp_path_factory.mktemp("ray-ingest") / "index")
    corpus = str(seed_settings.corpus[0])
    assert main(["ingest", corpus, "--index", str(settings.index_dir), "-q", "--ray", "--ray-batch-size", "1"]) == 0
    return settings, Index.load(settings.index_dir, STANDARD_ARTEFACTS)


def test_same_documents_and_chunks(on_ray, seed_index):
    _, index = on_ray
    assert index.documents == seed_index.documents
    assert [(c.doc_id, c.chunk_id, c.start, c.end, c.text) for c in index.chunks] == [
        (c.doc_id, c.chunk_id, c.start, c.end, c.text) for c in seed_index.chunks
    ]


def test_vectors_agree_within_1e5(on_ray, seed_index):
    _, index = on_ray
    assert index.vectors.shape == seed_index.vectors.shape
    np.testing.assert_allclose(index.vectors, seed_index.vectors, atol=1e-5, rtol=0)


def test_same_manifest_but_how_it_was_built(on_ray, seed_index, ray_instance):
    _, index = on_ray
    differs = {
        k
        for k in index.manifest.keys() | seed_index.manifest.keys()
        if index.manifest.get(k) != seed_index.manifest.get(k)
    }
    assert differs <= {"build", "created"}
    assert seed_index.manifest["build"] == {"engine": "local"}
    assert index.manifest["build"] == {
        "engine": "ray",
        "ray_version": ray_instance.__version__,
        "workers": 1,
        "batch_size": 1,
        "gpus_per_worker": 0,
    }


def test_same_stored_analysis(on_ray, seed_index):
    _, index = on_ray
    for doc_id in seed_index.documents:
        mine = [(offset, doc.to_bytes()) for offset, doc in index.artefacts["analysis"].document(doc_id)]
        local = [(offset, doc.to_bytes()) for offset, doc in seed_index.artefacts["analysis"].document(doc_id)]
        assert mine == local and mine


def test_an_index_built_on_ray_opens_as_it_is(on_ray, embedder):
    settings, index = on_ray
    assert open_index(settings, embedder, rebuild=False).path == index.path


def test_rag_ask_gives_the_same_answer(on_ray, seed_settings, capsys):
    answers = []
    for settings in (seed_settings, on_ray[0]):
        capsys.readouterr()
        assert main(["ask", QUESTION, "--index", str(settings.index_dir), "--no-rebuild", "--json"]) == 0
        answers.append(json.loads(capsys.readouterr().out))
    assert answers[0] == answers[1]
    assert "5 billion" in answers[0]["answer"]


def test_an_interrupted_ray_ingest_resumes_and_ends_as_a_local_build(
    ray_instance, seed_settings, tmp_path, monkeypatch, caplog
):
    from rag.search.journal import Journal

    # Enough articles for several parsing batches (CUT_BATCH each), so that the journal is written more
    # than once (Ray hands back one block per parsing batch).
    corpus = tmp_path / "corpus"
    shutil.copytree(seed_settings.corpus[0], corpus)
    for n in range(18):
        town = f"Town{n:02d}"
        (corpus / f"brief_{n:02d}.txt").write_text(
            f"{town} opens a library\n\nThe mayor of {town} opened a library on Monday. It holds {1000 + n} books.\n"
        )
    index_dir = tmp_path / "index"
    command = ["ingest", str(corpus), "--index", str(index_dir), "-q", "--ray", "--ray-batch-size", "1"]
    append = Journal.append
    calls = []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl+C once the first batch of articles is in the journal
        return append(self, *args, **kwargs)

    monkeypatch.setattr(Journal, "append", interrupted)
    assert main(command) == 130
    assert not (index_dir / "CURRENT").exists()  # nothing half-built is in use
    monkeypatch.setattr(Journal, "append", append)
    with caplog.at_level(logging.WARNING):
        assert main(command) == 0
    assert re.search(r"resuming an interrupted build: \d+ articles were already embedded", caplog.text)
    assert main(["ingest", str(corpus), "--index", str(tmp_path / "local"), "-q"]) == 0
    resumed, local = Index.load(index_dir, STANDARD_ARTEFACTS), Index.load(tmp_path / "local", STANDARD_ARTEFACTS)
    assert [(c.doc_id, c.start, c.end) for c in resumed.chunks] == [(c.doc_id, c.start, c.end) for c in local.chunks]
    np.testing.assert_allclose(resumed.vectors, local.vectors, atol=1e-5, rtol=0)


def test_files_read_on_ray_are_the_local_reading(ray_instance, tmp_path, caplog):
    """Corpus order, duplicate ids, skipped lines and files, and stamps: as ``read_corpus`` gives them."""
    (tmp_path / "a.jsonl").write_text(
        '{"id": "x", "title": "X", "text": "One."}\nnot json\n{"id": "y", "text": "Two."}\n'
    )
    (tmp_path / "b.txt").write_text("Another x? No: this one is y.\n")
    (tmp_path / "y.txt").write_text("A second article with the id y.\n")
    (tmp_path / "empty.txt").write_text("")
    for path in tmp_path.iterdir():  # old enough for their times to be stamped (stamps.RECENT_NS)
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    with caplog.at_level("WARNING"):
        local = read_corpus([tmp_path])
        warned = sorted(r.getMessage() for r in caplog.records)
        caplog.clear()
        with ray_engine(RayOptions()) as engine:
            assert engine.read([tmp_path], progress=False) == local
        assert sorted(r.getMessage() for r in caplog.records) == warned
    assert [d.id for d in local[0]] == ["x", "y", "b"] and len(local[1]) == 4
    assert any("line 2" in w for w in warned) and any("already used" in w for w in warned)


def test_an_unreachable_cluster_is_one_line_naming_it(tmp_path):
    pytest.importorskip("ray", reason="without Ray the error is the missing extra (the next test)")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rag",
            "ingest",
            str(ROOT / "seeds"),
            "--index",
            str(tmp_path / "index"),
            "--ray",
            address,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: cannot reach the Ray cluster at " + address)
    assert "ray start --head" in done.stderr
    assert not (tmp_path / "index").exists()


def test_a_cluster_with_a_gpu_embeds_on_it_or_says_in_one_line_why_it_cannot(tmp_path):
    """The GPU branch, on a machine without one: a Ray that declares a GPU gets GPU embedding actors, whose
    onnxruntime has no CUDA here, so the build stops with that one line and leaves no index behind."""
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'rag-news[ray]'")
    driver = (
        "import sys, ray\n"
        "ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)\n"
        "from rag.cli import main\n"
        f"sys.exit(main(['ingest', {str(ROOT / 'seeds')!r}, '--index', {str(tmp_path / 'index')!r}, '-q', '--ray']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", driver], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 2, done.stderr[-2000:]
    error = done.stderr.strip().splitlines()[-1]
    assert error == (
        "error: a GPU was given to the embedding actor, but this node's onnxruntime has no CUDA: "
        "pip install onnxruntime-gpu on the GPU nodes"
    )
    assert not (tmp_path / "index" / "CURRENT").exists()


@pytest.mark.parametrize(
    ("passages", "library"), [("onnx-int8", "onnxruntime"), ("onnx-fp32", "onnxruntime"), ("torch", "torch")]
)
def test_an_embedding_actor_given_a_gpu_without_cuda_says_which_library_lacks_it(passages, library):
    from rag.search.ray_stages import PassageEncoder

    with pytest.raises(
        RagError, match=f"a GPU was given to the embedding actor, but this node's {library} has no CUDA"
    ):
        PassageEncoder(passages=passages, threads=1, gpu=True)


def test_ray_missing_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(RagError, match=r"pip install 'rag-news\[ray\]'"), ray_engine(RayOptions()):
        pass


def test_ray_options_need_ray(tmp_path, capsys):
    assert main(["ingest", str(ROOT / "seeds"), "--index", str(tmp_path / "index"), "--ray-workers", "2"]) == 2
    assert "--ray [auto|ADDRESS]" in capsys.readouterr().err
