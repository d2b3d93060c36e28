"""The records of the corpus and of search: Document → Chunk → Passage, and Evidence (a quoted span)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Document:
    """One article, with its text normalised (see ``rag.ingest.reading``)."""

    id: str
    title: str
    text: str
    source: str = ""
    url: str | None = None
    published: str | None = None
    content_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    """A span of a document that is embedded and indexed as one unit."""

    doc_id: str
    chunk_id: int  # position of the chunk within its document
    start: int
    end: int
    text: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Evidence:
    """A span of a document that supports a claim: ``documents[doc_id].text[start:end] == text``."""

    doc_id: str
    start: int
    end: int
    text: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Passage:
    """A retrieved span of a document; ``rank`` (1-based) is its citation label."""

    doc_id: str
    chunk_id: int
    start: int
    end: int
    text: str
    score: float
    rank: int
    published: str | None = None  # the document's publication date as YYYY-MM-DD; None when undated

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
