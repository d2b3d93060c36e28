"""Shared fixtures: the real embedder, the real seed articles and a real index built from them once."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


def load_eval_script(name: str):
    """A script of eval/ (not a package) imported as a module, for its functions."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "eval" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def small_faiss(vectors, kind: str):
    """A FAISS index of ``kind`` over a few thousand test vectors, built on one thread: k-means on tiny
    sub-spaces gains nothing from OpenMP's waiting threads and loses much."""
    import faiss

    from rag.search.structures import build_faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return build_faiss(vectors, kind, batch=1_000)
    finally:
        faiss.omp_set_num_threads(threads)


USER_VARIABLES = ("RAG_", "OPENAI_")  # settings a user may have exported; tests set their own


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory):
    """Every test runs without the user's RAG_* and OPENAI_* variables, and with caches (the ONNX
    question encoder's) in a temporary folder instead of ~/.cache. Session-wide and first, so the
    shared model and index fixtures see the same environment as the tests."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith(USER_VARIABLES)]:
            patch.delenv(name)
        patch.setenv("RAG_CACHE", str(tmp_path_factory.mktemp("rag-cache")))
        yield


@pytest.fixture(scope="session")
def embedder():
    from rag.search.embedding import default_embedder

    return default_embedder()


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory) -> Settings:
    """Settings whose corpus is a private copy of seeds/ and whose index lives in a temp folder."""
    base = tmp_path_factory.mktemp("seeds-index")
    corpus = base / "corpus"
    shutil.copytree(SEEDS, corpus)
    return replace(Settings(), corpus=(corpus,), index_dir=base / "index")


@pytest.fixture(scope="session")
def seed_index(seed_settings, embedder):
    from rag.search.index import open_index

    return open_index(seed_settings, embedder)


@pytest.fixture(scope="session")
def retriever(seed_index, embedder):
    from rag.search.retrieval import Retriever

    return Retriever(seed_index, embedder)


@pytest.fixture(scope="session")
def seed_documents(seed_index):
    return seed_index.documents


@pytest.fixture(scope="session")
def llm_server():
    """A scripted OpenAI-compatible server on loopback (``tests/llm_server.py``); tests set its ``script``."""
    from .llm_server import start_server

    server = start_server()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def server(llm_server):
    """The scripted LLM server (``llm_server``) under a shorter name for the LLM tests."""
    return llm_server


@pytest.fixture
def script(server):
    """A fresh script for the scripted LLM server: set its ``steps``, read its ``requests``."""
    from .llm_server import Script

    server.script = Script()
    return server.script


@pytest.fixture
def config(server):
    """An LLM configuration pointed at the scripted server, without retries."""
    from rag.answer.llm.config import LLMConfig

    return LLMConfig(
        base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", model="scripted", timeout=5.0, retries=0
    )


@pytest.fixture
def answerer(config, embedder):
    """The LLM answerer talking to the scripted server."""
    from rag.answer.llm.answerer import LLMAnswerer

    return LLMAnswerer(config, embedder)


class Hung(Exception):
    """Raised inside a call that ran past its time limit (see ``time_limit``)."""


@contextmanager
def time_limit(seconds: float, what: str = "the call"):
    """Fails the test when the block runs longer than ``seconds`` instead of letting it hang the suite.

    A SIGALRM interrupts pure-Python loops in the main thread, where pytest runs tests; this guards
    against hangs and is no speed assertion (the limits are far above normal times).
    """

    def interrupt(signum, frame):
        raise Hung(f"{what} did not finish within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
