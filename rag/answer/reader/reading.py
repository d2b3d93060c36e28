"""The reader's view of the retrieved passages: their parsed sentences, and how rare each word is.

The spaCy analysis comes from the index when it stores one (the ``analysis`` artefact written at
ingest); otherwise paragraphs are parsed here, once, and remembered. Word rarity is the inverse
document frequency over the index's chunks, read from its BM25 statistics.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.answer.reader.features import smoothed_idf
from rag.budget import check_time_budget
from rag.ingest.sentences import analysis_spans, nlp
from rag.records import Passage
from rag.text import snowball_stemmer

if TYPE_CHECKING:
    from rag.search.store import Index

PARSE_CACHE = 8192  # paragraphs


@lru_cache(maxsize=PARSE_CACHE)
def _parse(text: str):
    return nlp()(text)


def paragraphs(index: Index, doc_id: str, start: int, end: int) -> list[tuple[int, Any]]:
    """(paragraph start, parsed paragraph) for the paragraphs of a document overlapping [start, end)."""
    stored = index.artefacts.get("analysis")
    if stored is not None:
        return list(stored.paragraphs(doc_id, start, end))
    text = index.documents[doc_id].text
    found = []
    for a, b in analysis_spans(text):
        if a < end and start < b:
            check_time_budget()
            found.append((a, _parse(text[a:b])))
    return found


def passage_sentences(index: Index, passage: Passage) -> list[tuple[int, Any]]:
    """(paragraph start, sentence span) for the sentences lying inside the passage."""
    found = []
    for offset, doc in paragraphs(index, passage.doc_id, passage.start, passage.end):
        for sentence in doc.sents:
            a, b = offset + sentence.start_char, offset + sentence.end_char
            # a passage may end one character before its sentence's closing mark
            if a >= passage.start - 1 and b <= passage.end + 1 and any(ch.isalnum() for ch in sentence.text):
                found.append((offset, sentence))
    return found


# id(index) -> (the index, weakly, its rarity function): Index is a mutable dataclass, so not hashable.
_RARITIES: dict[int, tuple[weakref.ref, Callable[[str], float]]] = {}


def rarity(index: Index) -> Callable[[str], float]:
    """lemma -> inverse document frequency over the index's chunks (BM25's stemmed terms)."""
    known = _RARITIES.get(id(index))
    if known is not None and known[0]() is index:
        return known[1]
    bm25 = index.bm25
    frequencies = np.diff(np.asarray(bm25.scores["indptr"]))
    documents = int(bm25.scores["num_docs"])
    vocabulary = bm25.vocab_dict
    stemmer = snowball_stemmer()

    @lru_cache(maxsize=65536)
    def idf(lemma: str) -> float:
        term = vocabulary.get(stemmer.stemWord(lemma))
        frequency = int(frequencies[term]) if term is not None and term < len(frequencies) else 0
        return smoothed_idf(frequency, documents)

    _RARITIES[id(index)] = (weakref.ref(index), idf)
    return idf
