"""Grounded question answering over a news corpus.

Documents → Chunks → Passages → Answers, each carrying character offsets into
the normalised article text, so every answer sentence can be shown in place.
"""

from rag import settings as _settings  # noqa: F401  (offline environment before any model import)
from rag.errors import RagError
from rag.records import Answer, AnswerSentence, Chunk, Citation, Document, Passage

__all__ = ["Answer", "AnswerSentence", "Chunk", "Citation", "Document", "Passage", "RagError"]
__version__ = "0.1.0"
