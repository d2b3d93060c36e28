"""The small typed records that flow between stages: Document → Chunk → Passage → Answer, and the
citation checker's CitedSentence → SentenceVerdict → CheckReport.

Every span is a pair of character offsets into ``Document.text`` (the normalised article text stored
with the index), so ``doc.text[start:end]`` is always the quoted text. All records are frozen; build
changed copies with ``dataclasses.replace``. Import them from here.
"""

from rag.records.answer import (
    NO_ANSWER,
    Abstention,
    Answer,
    AnswerSentence,
    Citation,
    ExtractiveFeatures,
    Generation,
    IrrelevantSentence,
    ReaderCandidate,
    ReaderFeatures,
    Reattribution,
    RejectedAnswer,
    RemovedSentence,
    ReplyVerdict,
    YesNoFeatures,
)
from rag.records.check import CheckReport, CitedSentence, SentenceVerdict
from rag.records.corpus import Chunk, Document, Evidence, Passage

__all__ = [
    "NO_ANSWER",
    "Abstention",
    "Answer",
    "AnswerSentence",
    "CheckReport",
    "Chunk",
    "Citation",
    "CitedSentence",
    "Document",
    "Evidence",
    "ExtractiveFeatures",
    "Generation",
    "IrrelevantSentence",
    "Passage",
    "ReaderCandidate",
    "ReaderFeatures",
    "Reattribution",
    "RejectedAnswer",
    "RemovedSentence",
    "ReplyVerdict",
    "SentenceVerdict",
    "YesNoFeatures",
]
