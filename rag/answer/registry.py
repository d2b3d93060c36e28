"""Choosing an answerer by name (``--answerer``): the learned reader (default), the rule-based
extractive answerer, or the LLM.

A new answerer is one module with a class that has ``name`` and ``answer(question, passages, index)``
(see ``rag.answer.pipeline.Answerer``), one line in ``ANSWERERS`` and one branch in ``answerer_for``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from rag.answer.extractive import ExtractiveAnswerer
from rag.answer.llm.answerer import LLMAnswerer
from rag.answer.llm.config import LLMConfig
from rag.answer.reader.answerer import ReaderAnswerer, shared_reader
from rag.errors import RagError

if TYPE_CHECKING:
    from rag.search.embedding import Embedder
    from rag.search.retrieval import Retriever

ANSWERERS = ("reader", "extractive", "llm")
DEFAULT_ANSWERER = ANSWERERS[0]


@lru_cache(maxsize=4)
def _extractive(embedder: Embedder) -> ExtractiveAnswerer:
    return ExtractiveAnswerer(embedder)


def default_answerer(retriever: Retriever) -> ReaderAnswerer:
    """The shared reader for a retriever's embedder (its caches live as long as the process)."""
    return shared_reader(retriever.embedder)


def answerer_for(
    name: str, retriever: Retriever, llm: LLMConfig | None = None
) -> ReaderAnswerer | ExtractiveAnswerer | LLMAnswerer:
    """The answerer called ``name``; RagError naming the choices when there is none.

    ``llm`` configures the "llm" answerer (default: ``LLMConfig.from_env()``).
    """
    if name == "reader":
        return default_answerer(retriever)
    if name == "extractive":
        return _extractive(retriever.embedder)
    if name == "llm":
        return LLMAnswerer(llm or LLMConfig.from_env(), retriever.embedder)
    raise RagError(f"unknown answerer '{name}': choose one of {', '.join(ANSWERERS)}")
