"""Choosing an answerer by name (`--answerer`): the extractive default, or others as they are added."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.errors import RagError

if TYPE_CHECKING:
    from rag.answering import Answerer
    from rag.retrieval import Retriever

ANSWERERS = ("extractive",)


def answerer_for(name: str, retriever: Retriever) -> Answerer:
    """The answerer called ``name``; RagError naming the choices when there is none."""
    if name == "extractive":
        from rag.answering import default_answerer

        return default_answerer(retriever)
    raise RagError(f"unknown answerer '{name}': choose one of {', '.join(ANSWERERS)}")
