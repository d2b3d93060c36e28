"""The stored sentence analysis: spaCy's parse of every paragraph, kept with each generation.

An ``Artefact`` (``rag.search.store``) named ``analysis``: a folder holding ``parses.bin`` (one packed
record per document, ``rag.ingest.analysis.pack``: paragraph offsets, then a DocBin), ``offsets.npy``
(where each document's record starts and ends, in ``ids.json`` order) and ``ids.json``. Building it
copies records byte for byte: new documents' from the build's journal, unchanged documents' from the
previous generation, so an incremental ingest parses only what changed.

Loading opens nothing but the folder's names: the table is read on the first question, and a
document's record is decoded only when asked for, from a memory map (cold start stays fast; the
records of a large corpus are never all in memory). ``StoredAnalysis.paragraphs`` is the read API.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cachetools import LRUCache

from rag.ingest.analysis import Record
from rag.ingest.sentences import nlp
from rag.search.store import Index

NAME = "analysis"
PARSES, OFFSETS, IDS = "parses.bin", "offsets.npy", "ids.json"
CACHED_PARAGRAPHS = 1024  # paragraphs kept as Docs: a question's passages span a few dozen
CACHED_DOCUMENTS = 64  # records kept decompressed: a question's passages come from a handful of documents
COPY_BLOCK = 1 << 20


@dataclass(frozen=True)
class AnalysisPlan:
    """Where each document's record is to be copied from: (file, offset, length), length 0 for none."""

    sources: dict[str, tuple[Path, int, int]]


class AnalysisArtefact:
    """Builds, saves and loads the stored analysis of a generation (see the module docstring)."""

    name = NAME
    needs_parses = True  # the build runs spaCy's full pipeline and keeps each article's parse

    def build(self, index: Index, previous: Index | None) -> AnalysisPlan:
        old = previous.artefacts.get(NAME) if previous is not None else None
        sources: dict[str, tuple[Path, int, int]] = {}
        for doc_id in index.documents:
            if doc_id in index.new_analyses:
                sources[doc_id] = index.new_analyses[doc_id]
            elif isinstance(old, StoredAnalysis) and old.holds(doc_id):
                sources[doc_id] = old.source(doc_id)  # unchanged since the previous generation (same parse)
            else:
                sources[doc_id] = (Path(), 0, 0)  # an article that could not be cut: no paragraphs
        return AnalysisPlan(sources)

    def save(self, value: AnalysisPlan, path: Path) -> None:
        path.mkdir()
        ids = list(value.sources)
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        handles: dict[Path, Any] = {}
        with contextlib.ExitStack() as stack, open(path / PARSES, "wb") as out:
            for row, doc_id in enumerate(ids):
                source, start, length = value.sources[doc_id]
                if length:
                    if source not in handles:
                        handles[source] = stack.enter_context(open(source, "rb"))
                    _copy(handles[source], start, length, out, doc_id)
                offsets[row + 1] = offsets[row] + length
        np.save(path / OFFSETS, offsets)
        (path / IDS).write_text(json.dumps(ids, ensure_ascii=False))

    def load(self, path: Path, index: Index) -> StoredAnalysis:
        for name in (PARSES, OFFSETS, IDS):
            if not (path / name).is_file():
                raise FileNotFoundError(f"{NAME}/{name} is missing")
        return StoredAnalysis(path)


def _copy(source, start: int, length: int, out, doc_id: str) -> None:
    """Copies ``length`` bytes at ``start`` of ``source`` to ``out`` in blocks (records are never all in memory)."""
    source.seek(start)
    while length:
        block = source.read(min(length, COPY_BLOCK))
        if not block:
            raise ValueError(f"the analysis of {doc_id} is cut short in {source.name}")
        out.write(block)
        length -= len(block)


def _close(files: list[Any]) -> None:
    for handle in files:
        handle.close()


class StoredAnalysis:
    """Read access to a generation's stored analysis; safe to share between threads."""

    def __init__(self, path: Path):
        self.path = path
        # Opened now, read later: a build may delete this generation once no reader pins it, and open
        # files outlive that (the pin lasts only while ``Index.load`` reads).
        self._files = {name: open(path / name, "rb") for name in (PARSES, OFFSETS, IDS)}  # noqa: SIM115
        weakref.finalize(self, _close, list(self._files.values()))
        self._lock = threading.Lock()
        self._rows: dict[str, int] | None = None
        self._offsets: np.ndarray | None = None
        self._map: mmap.mmap | None = None
        self._decoded: LRUCache[tuple[str, int], Any] = LRUCache(CACHED_PARAGRAPHS)  # (doc, position) -> Doc
        self._records: LRUCache[str, Record | None] = LRUCache(CACHED_DOCUMENTS)  # None: no analysis stored

    def _table(self) -> tuple[dict[str, int], np.ndarray]:
        with self._lock:
            if self._rows is None or self._offsets is None:
                ids = json.loads(self._files[IDS].read().decode("utf-8"))
                offsets = np.load(self._files[OFFSETS])
                if len(offsets) != len(ids) + 1 or int(offsets[-1]) != os.fstat(self._files[PARSES].fileno()).st_size:
                    raise ValueError(f"{self.path} is damaged: its offsets do not match {PARSES}")
                self._rows, self._offsets = {doc_id: row for row, doc_id in enumerate(ids)}, offsets
            return self._rows, self._offsets

    def holds(self, doc_id: str) -> bool:
        """Whether a record (possibly empty) is stored for ``doc_id``."""
        return doc_id in self._table()[0]

    def source(self, doc_id: str) -> tuple[Path, int, int]:
        """(file, offset, length) of the document's record, for copying it into the next generation."""
        rows, offsets = self._table()
        row = rows[doc_id]
        return self.path / PARSES, int(offsets[row]), int(offsets[row + 1] - offsets[row])

    def _record(self, doc_id: str) -> memoryview:
        _, start, length = self.source(doc_id)
        with self._lock:
            if self._map is None and length:
                self._map = mmap.mmap(self._files[PARSES].fileno(), 0, access=mmap.ACCESS_READ)
            return memoryview(self._map)[start : start + length] if length and self._map else memoryview(b"")

    def _read(self, doc_id: str) -> Record | None:
        with self._lock:
            if doc_id in self._records:
                return self._records[doc_id]
        record = self._record(doc_id)
        read = Record.read(record) if len(record) else None
        with self._lock:
            self._records[doc_id] = read
        return read

    def _piece_offsets(self, doc_id: str) -> list[int]:
        read = self._read(doc_id)
        return read.offsets if read is not None else []

    def _pieces(self, doc_id: str, positions: list[int]) -> list[tuple[int, Any]]:
        """(offset, Doc) of the document's pieces at ``positions``, making Docs only of those not cached."""
        read = self._read(doc_id)
        if read is None:
            return []
        with self._lock:
            known = {i: self._decoded[(doc_id, i)] for i in positions if (doc_id, i) in self._decoded}
        missing = sorted(i for i in set(positions) if i not in known)
        if missing:
            docs = read.docs(nlp(full=True).vocab, missing)
            with self._lock:
                for i, doc in zip(missing, docs):
                    self._decoded[(doc_id, i)] = known[i] = doc
        return [(read.offsets[i], known[i]) for i in positions]

    def document(self, doc_id: str) -> list[tuple[int, Any]]:
        """Every (paragraph offset, spaCy Doc) of a document; KeyError when the index lacks it."""
        return self._pieces(doc_id, list(range(len(self._piece_offsets(doc_id)))))

    def paragraphs(self, doc_id: str, start: int, end: int) -> list[tuple[int, Any]]:
        """(paragraph start offset in the document text, parsed paragraph Doc) for every paragraph of the
        document overlapping [start, end) (the one holding ``start`` when the range is empty).

        ``doc.text == document.text[offset:offset + len(doc.text)]``; long paragraphs are the bounded pieces
        spaCy read (``rag.ingest.sentences.analysis_spans``). Only the paragraphs asked for are decoded, and
        they are cached (LRU).
        """
        end = max(end, start + 1)
        offsets = self._piece_offsets(doc_id)
        # A piece ends before the next begins: decode only those that may reach into the range.
        bounds = [*offsets[1:], float("inf")]
        near = [i for i, (a, b) in enumerate(zip(offsets, bounds)) if a < end and b > start]
        return [(offset, doc) for offset, doc in self._pieces(doc_id, near) if offset + _text_length(doc) > start]


def _text_length(doc) -> int:
    """``len(doc.text)`` without building the text (spaCy joins every token on each ``Doc.text``)."""
    return doc[-1].idx + len(doc[-1].text_with_ws) if len(doc) else 0
