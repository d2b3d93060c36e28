"""The answer to one question: cited sentences or an abstention, and what the answerer recorded."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rag.records.corpus import Passage

NO_ANSWER = "The corpus does not answer this question."


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
class RejectedAnswer:
    """The best answer found for a question when it was not good enough to show."""

    answer: str
    short_answer: str | None = None


@dataclass(frozen=True)
class Abstention:
    """Why an answer abstains: ``reason`` for developers, ``message`` for the user, and what was rejected."""

    reason: str
    message: str = NO_ANSWER
    rejected: RejectedAnswer | None = None


@dataclass(frozen=True)
class ExtractiveFeatures:
    """What the extractive answerer measured of its best sentence (see ``rag.answer.extractive``)."""

    question_type: str | None
    expected: tuple[str, ...]  # entity labels that can answer the question, best first
    similarity: float  # cosine between question and sentence
    support: float  # share of the question's content words in the answer sentences
    slot: float  # how well the sentence fills the question's answer slot
    missing: tuple[str, ...]  # question terms no answer sentence holds

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "expected": list(self.expected), "missing": list(self.missing)}


@dataclass(frozen=True)
class ReaderCandidate:
    """A short answer the reader considered: its text, entity label and ranking score."""

    text: str
    label: str
    score: float


@dataclass(frozen=True)
class ReaderFeatures:
    """What the learned reader saw (see ``rag.answer.reader``): the question's type and its best candidates."""

    question_type: str
    type_phrase: str | None  # the words naming the expected answer ("law", "person")
    candidates: tuple[ReaderCandidate, ...]  # best first; the first is the short answer
    probability: float  # calibrated probability that the first candidate is right

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "candidates": [asdict(c) for c in self.candidates]}


@dataclass(frozen=True)
class YesNoFeatures:
    """What the learned reader judged of a yes/no question (see ``rag.answer.reader.yes_no``)."""

    claim: str  # the statement the question asks about ("Turkey did buy the S-400 system")
    support: float  # the support judge's score of the answer given for its sentence; 0 when undecided
    question_type: str = "yes/no"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReplyVerdict:
    """The citation checker's verdict on one sentence of a generated reply ("declined": it said no answer)."""

    text: str
    verdict: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RemovedSentence:
    """A sentence of a generated reply that was not shown, with the checker's verdict and reasons."""

    text: str
    verdict: str
    reasons: tuple[str, ...] = ()
    cited: tuple[int, ...] = ()  # the [n] labels the sentence carried

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "verdict": self.verdict, "reasons": list(self.reasons), "cited": list(self.cited)}


def _labels(labels: tuple[int, ...]) -> str:
    return "".join(f"[{n}]" for n in labels)


@dataclass(frozen=True)
class Reattribution:
    """A sentence of a generated reply kept with other citations than the model gave: the passages it cited
    (if any) do not support it, another retrieved passage does."""

    text: str
    cited: tuple[int, ...]  # the [n] labels the model wrote
    supported_by: tuple[int, ...]  # the passages that support the sentence, now its citations

    def describe(self) -> str:
        """ "cited [2], supported by [4]"; "uncited, supported by [4]" when the model cited nothing"""
        cited = f"cited {_labels(self.cited)}" if self.cited else "uncited"
        return f"{cited}, supported by {_labels(self.supported_by)}"

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "cited": list(self.cited), "supported_by": list(self.supported_by)}


@dataclass(frozen=True)
class IrrelevantSentence:
    """A sentence of a generated reply the passages support but that does not answer the question: listed
    apart, not shown as the answer (``rag.answer.relevance.stated``: neither the reader nor the rules
    answer with it)."""

    text: str
    relevance: float
    citations: tuple[Citation, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "relevance": self.relevance, "citations": [c.to_dict() for c in self.citations]}


@dataclass(frozen=True)
class Generation:
    """How a generative answerer wrote its answer: the server and model (never the key) and the raw reply."""

    base_url: str
    model: str
    temperature: float
    reply: str | None = None  # None when no request was made (nothing to answer from)
    declined: bool = False  # the model said the passages do not answer

    def endpoint(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "model": self.model, "temperature": self.temperature}


@dataclass(frozen=True)
class Answer:
    """What answering one question gives: cited sentences, or an abstention with the closest passages.

    ``score`` is the answerer's confidence, compared with the calibrated ``threshold`` by
    ``rag.answer.pipeline``; answerer-specific detail lives in ``features`` (extractive, reader) or
    ``generation``, ``verdicts``, ``removed``, ``reattributed`` and ``irrelevant`` (generative, checked sentence
    by sentence).
    """

    question: str
    sentences: tuple[AnswerSentence, ...]
    passages: tuple[Passage, ...]
    short_answer: str | None = None
    score: float = 0.0
    answerer: str = "extractive"
    abstention: Abstention | None = None
    threshold: float | None = None
    features: ExtractiveFeatures | ReaderFeatures | YesNoFeatures | None = None
    generation: Generation | None = None
    verdicts: tuple[ReplyVerdict, ...] = ()
    removed: tuple[RemovedSentence, ...] = ()
    reattributed: tuple[Reattribution, ...] = ()
    irrelevant: tuple[IrrelevantSentence, ...] = ()

    @property
    def abstained(self) -> bool:
        """True when the corpus does not answer the question (no sentences are shown)."""
        return self.abstention is not None

    @property
    def text(self) -> str:
        """The answer as plain text, sentences joined by spaces."""
        return " ".join(s.text for s in self.sentences)

    @property
    def message(self) -> str:
        """What to tell the user on abstention."""
        return self.abstention.message if self.abstention is not None else NO_ANSWER

    @property
    def citations(self) -> list[Citation]:
        """All citations of all sentences, in order, without repeats."""
        seen: dict[tuple[str, int, int], Citation] = {}
        for sentence in self.sentences:
            for citation in sentence.citations:
                seen.setdefault((citation.doc_id, citation.start, citation.end), citation)
        return list(seen.values())

    def extra(self) -> dict[str, Any]:
        """The ``extra`` object of the JSON form (README: the --json schema)."""
        extra: dict[str, Any] = {}
        if self.features is not None:
            extra["features"] = self.features.to_dict()
        if self.generation is not None:
            extra["llm"] = self.generation.endpoint()
            if self.generation.reply is not None:
                extra.update(
                    reply=self.generation.reply,
                    declined=self.generation.declined,
                    verdicts=[v.to_dict() for v in self.verdicts],
                )
            extra["removed"] = [r.to_dict() for r in self.removed]
            extra["reattributed"] = [r.to_dict() for r in self.reattributed]
            extra["irrelevant"] = [r.to_dict() for r in self.irrelevant]
        if self.abstention is not None:
            extra.update(message=self.abstention.message, reason=self.abstention.reason)
            if self.abstention.rejected is not None:
                extra["rejected"] = asdict(self.abstention.rejected)
        if self.threshold is not None:
            extra["threshold"] = self.threshold
        return extra

    def to_dict(self) -> dict[str, Any]:
        extra = self.extra()
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
            **({"extra": extra} if extra else {}),
        }
