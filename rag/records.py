"""The small typed records that flow between stages: Document → Chunk → Passage → Answer.

Every span is a pair of character offsets into ``Document.text`` (the normalised
article text stored with the index), so ``doc.text[start:end]`` is always the
quoted text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Citation:
    """A quoted span backing an answer sentence; ``passage_rank`` points into the passages shown."""

    doc_id: str
    start: int
    end: int
    text: str
    passage_rank: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AnswerSentence:
    """One sentence of an answer with the citations that back it."""

    text: str
    citations: tuple[Citation, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "citations": [c.to_dict() for c in self.citations]}


@dataclass(frozen=True)
class Answer:
    """What the answerer returns for one question."""

    question: str
    sentences: tuple[AnswerSentence, ...]
    passages: tuple[Passage, ...]
    short_answer: str | None = None
    abstained: bool = False
    score: float = 0.0  # confidence that the answer is supported; abstention compares it to a threshold
    answerer: str = "extractive"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The answer as plain text, sentences joined by spaces."""
        return " ".join(s.text for s in self.sentences)

    @property
    def citations(self) -> list[Citation]:
        """All citations of all sentences, in order, without repeats."""
        seen: dict[tuple[str, int, int], Citation] = {}
        for sentence in self.sentences:
            for citation in sentence.citations:
                seen.setdefault((citation.doc_id, citation.start, citation.end), citation)
        return list(seen.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "short_answer": self.short_answer,
            "abstained": self.abstained,
            "score": self.score,
            "answerer": self.answerer,
            "sentences": [s.to_dict() for s in self.sentences],
            "citations": [c.to_dict() for c in self.citations],
            "passages": [p.to_dict() for p in self.passages],
            **({"extra": self.extra} if self.extra else {}),
        }
