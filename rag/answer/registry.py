"""Choosing an answerer by name (`--answerer`): the extractive default, or others as they are added."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.errors import RagError

if TYPE_CHECKING:
    from rag.answer.extractive import Answerer
    from rag.answer.llm.client import LLMConfig
    from rag.search.retrieval import Retriever

ANSWERERS = ("extractive", "llm")


def answerer_for(name: str, retriever: Retriever, llm: LLMConfig | None = None) -> Answerer:
    """The answerer called ``name``; RagError naming the choices when there is none.

    ``llm`` configures the "llm" answerer (default: ``LLMConfig.from_env()``).
    """
    if name == "extractive":
        from rag.answer.extractive import default_answerer

        return default_answerer(retriever)
    if name == "llm":
        from rag.answer.llm.answerer import llm_answerer

        return llm_answerer(retriever, llm)
    raise RagError(f"unknown answerer '{name}': choose one of {', '.join(ANSWERERS)}")
