"""Shared fixtures: the real embedder, the real seed articles and a real index built from them once."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="session")
def embedder():
    from rag.embedding import default_embedder

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
    from rag.index import open_index

    return open_index(seed_settings, embedder)


@pytest.fixture(scope="session")
def retriever(seed_index, embedder):
    from rag.retrieval import Retriever

    return Retriever(seed_index, embedder)


@pytest.fixture(scope="session")
def seed_documents(seed_index):
    return seed_index.documents
