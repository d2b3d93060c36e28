"""Cutting documents into overlapping chunks of whole sentences, sized in tiktoken tokens.

Each chunk is a run of consecutive sentences of one document, at most
``max_tokens`` long, overlapping the previous chunk by up to ``overlap_tokens``
of whole sentences, so every sentence that fits in a chunk lies wholly inside
at least one. A sentence longer than a chunk is cut at word boundaries.
``chunk.text == doc.text[chunk.start:chunk.end]`` always holds.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from functools import lru_cache

from rag.ingest.sentences import sentence_spans
from rag.records import Chunk, Document
from rag.settings import TOKENIZER_NAME, ChunkSettings

_WORD = re.compile(r"\S+")


@lru_cache(maxsize=1)
def encoding():
    """The bundled, hash-checked cl100k tokenizer (no download)."""
    import tiktoken

    return tiktoken.get_encoding(TOKENIZER_NAME)


def count_tokens(text: str) -> int:
    """Number of cl100k tokens in ``text``."""
    return len(encoding().encode_ordinary(text))


def _split_long(text: str, start: int, end: int, max_tokens: int) -> list[tuple[int, int]]:
    """Cuts the span [start, end) at word boundaries into pieces of at most max_tokens."""
    pieces: list[tuple[int, int]] = []
    piece_start, piece_end, used = None, start, 0
    for word in _WORD.finditer(text, start, end):
        cost = count_tokens(" " + word.group())
        if piece_start is not None and used + cost > max_tokens:
            pieces.append((piece_start, piece_end))
            piece_start, used = None, 0
        if piece_start is None:
            piece_start = word.start()
        piece_end, used = word.end(), used + cost
    if piece_start is not None:
        pieces.append((piece_start, piece_end))
    return pieces


def _units(
    text: str, max_tokens: int, fits: Callable[[str], bool] | None, sentences: Iterable[tuple[int, int]]
) -> list[tuple[int, int, int]]:
    """(start, end, tokens) of each sentence, long sentences cut into pieces that fit."""
    units = []
    pending = deque((start, end, max_tokens) for start, end in sentences)
    while pending:
        start, end, limit = pending.popleft()
        tokens = count_tokens(text[start:end])
        if tokens <= limit and (fits is None or fits(text[start:end]) or limit <= 8):
            units.append((start, end, tokens))
            continue
        if tokens <= limit:  # within our size but not the embedder's: cut finer
            limit = max(8, limit // 2)
        pieces = _split_long(text, start, end, limit)
        if len(pieces) == 1:
            units.append((start, end, tokens))  # a single word: nothing left to cut
            continue
        pending.extendleft(reversed([(s, e, limit) for s, e in pieces]))
    return units


def chunk_document(
    doc: Document,
    settings: ChunkSettings = ChunkSettings(),
    fits: Callable[[str], bool] | None = None,
    on_progress: Callable[[int], object] | None = None,
    sentences: Iterable[tuple[int, int]] | None = None,
) -> list[Chunk]:
    """Cuts ``doc`` into chunks.

    Args:
        doc: the document; offsets refer to ``doc.text``.
        settings: chunk size and overlap in tiktoken tokens.
        fits: optional check that a chunk fits the embedder's own input limit;
            a chunk that does not is shortened by whole sentences.
        on_progress: called with the number of characters read as sentence analysis goes
            (they add up to ``len(doc.text)``), for a progress bar on long documents.
        sentences: the sentence spans of ``doc.text`` when already known (``rag.ingest.analysis`` parses
            once for sentences and the stored analysis); found with ``sentence_spans`` otherwise.
    """
    if settings.overlap_tokens >= settings.max_tokens:
        raise ValueError("chunk overlap must be smaller than the chunk size")
    text = doc.text
    if sentences is None:
        sentences = sentence_spans(text, on_progress)
    units = _units(text, settings.max_tokens, fits, sentences)
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j, used = i, 0
        while j < len(units) and (j == i or used + units[j][2] <= settings.max_tokens):
            used += units[j][2]
            j += 1
        # Sentence token counts do not add up exactly to the count of their concatenation.
        while j - 1 > i and (
            count_tokens(text[units[i][0] : units[j - 1][1]]) > settings.max_tokens
            or (fits is not None and not fits(text[units[i][0] : units[j - 1][1]]))
        ):
            j -= 1
        start, end = units[i][0], units[j - 1][1]
        chunks.append(Chunk(doc_id=doc.id, chunk_id=len(chunks), start=start, end=end, text=text[start:end]))
        if j >= len(units):
            break
        # Step back over whole sentences worth at most overlap_tokens, always moving forward.
        k, overlap = j, 0
        while k - 1 > i and overlap + units[k - 1][2] <= settings.overlap_tokens:
            k -= 1
            overlap += units[k][2]
        i = k
    return chunks
