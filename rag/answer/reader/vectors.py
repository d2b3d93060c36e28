"""Meaning features of candidates: how close a candidate is to the question and to the asked-for type.

Candidates are short (a name, a number, a phrase) and a question has hundreds of them, too many for
the transformer at question time; they get *static* vectors instead: the mean of the bundled MiniLM's
own input word-piece vectors (no download, a table lookup). The expected type ("law", "person") is
compared with fixed descriptions of the entity labels through the full model, once per type phrase.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

import numpy as np
from safetensors.numpy import load_file

from rag.answer.reader.spans import LABELS

if TYPE_CHECKING:
    from rag.search.embedding import Embedder

LABEL_DESCRIPTIONS = {
    "PERSON": "a person: a man or a woman", "NORP": "a nationality, religious or political group",
    "FAC": "a building, airport, highway or bridge", "ORG": "a company, organization, agency, institution or team",
    "GPE": "a country, city or state", "LOC": "a location, region, mountain or river",
    "PRODUCT": "a product, vehicle, device or object", "EVENT": "an event, storm, war or tournament",
    "WORK_OF_ART": "the title of a book, film, song or show", "LAW": "a law, act or bill", "LANGUAGE": "a language",
    "DATE": "a date, day, month or year", "TIME": "a time of day or a duration in hours", "PERCENT": "a percentage",
    "MONEY": "an amount of money, a price or a cost", "QUANTITY": "a measurement: distance, weight or size",
    "ORDINAL": "a rank: first, second, third", "CARDINAL": "a number or count",
    "NP": "a thing, object, idea or activity", "PROPN": "a name", "NUM": "a number", "WORD": "a thing or quality",
}  # fmt: skip
WORD_VECTORS_KEY = "embeddings.word_embeddings.weight"


class StaticVectors:
    """Unit vectors of short texts: the mean of the model's input word-piece vectors."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder

    @cached_property
    def _table(self) -> np.ndarray:
        weights = load_file(str(self.embedder.path / "model.safetensors"))
        key = next(k for k in weights if k.endswith(WORD_VECTORS_KEY))
        return np.asarray(weights[key], dtype=np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        """One unit row per text (zeros for a text without word pieces)."""
        table = self._table
        out = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
        pieces = [e.ids for e in self.embedder._word_pieces.encode_batch(texts, add_special_tokens=False)]
        rows = np.flatnonzero([len(ids) for ids in pieces])
        if not len(rows):
            return out
        counts = np.array([len(pieces[r]) for r in rows])
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        # every text's pieces in one lookup, summed per text (one numpy call, not one per text)
        means = np.add.reduceat(table[np.concatenate([pieces[r] for r in rows])], starts, axis=0) / counts[:, None]
        norms = np.linalg.norm(means, axis=1, keepdims=True)
        out[rows] = means / np.where(norms > 0, norms, 1.0)
        return out


class TypeMatcher:
    """How well each entity label fits a question's expected type (cosine, full model)."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder

    @cached_property
    def _labels(self) -> np.ndarray:
        return self.embedder.encode([LABEL_DESCRIPTIONS[label] for label in LABELS], progress=False)

    @lru_cache(maxsize=1024)  # noqa: B019 - one matcher per embedder, living as long as the process
    def label_fit(self, type_phrase: str) -> dict[str, float]:
        vector = self.embedder.encode_cached([type_phrase])[0]
        return dict(zip(LABELS, (float(s) for s in self._labels @ vector)))
