"""Choosing an answerer by name (`--answerer`): the extractive default, or others as they are added."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.errors import RagError

if TYPE_CHECKING:
    from rag.answering import Answerer
    from rag.llm import LLMConfig
    from rag.retrieval import Retriever

ANSWERERS = ("extractive", "llm")


def answerer_for(name: str, retriever: Retriever, llm: LLMConfig | None = None) -> Answerer:
    """The answerer called ``name``; RagError naming the choices when there is none.

    ``llm`` configures the "llm" answerer (default: ``LLMConfig.from_env()``).
    """
    if name == "extractive":
        from rag.answering import default_answerer

        return default_answerer(retriever)
    if name == "llm":
        from rag.llm_answering import llm_answerer

        return llm_answerer(retriever, llm)
    raise RagError(f"unknown answerer '{name}': choose one of {', '.join(ANSWERERS)}")
