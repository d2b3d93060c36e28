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

from rag.ingest.analysis import unpack
from rag.ingest.sentences import nlp
from rag.search.store import Index

NAME = "analysis"
PARSES, OFFSETS, IDS = "parses.bin", "offsets.npy", "ids.json"
CACHED_DOCUMENTS = 64  # decoded documents kept: a question's passages come from a handful
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
        self._decoded: LRUCache[str, list[tuple[int, Any]]] = LRUCache(CACHED_DOCUMENTS)

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

    def document(self, doc_id: str) -> list[tuple[int, Any]]:
        """Every (paragraph offset, spaCy Doc) of a document; KeyError when the index lacks it."""
        with self._lock:
            cached = self._decoded.get(doc_id)
        if cached is not None:
            return cached
        record = self._record(doc_id)
        decoded = unpack(record, nlp(full=True).vocab) if len(record) else []
        with self._lock:
            self._decoded[doc_id] = decoded
        return decoded

    def paragraphs(self, doc_id: str, start: int, end: int) -> list[tuple[int, Any]]:
        """(paragraph start offset in the document text, parsed paragraph Doc) for every paragraph of the
        document overlapping [start, end) (the one holding ``start`` when the range is empty).

        ``doc.text == document.text[offset:offset + len(doc.text)]``; long paragraphs are the bounded pieces
        spaCy read (``rag.ingest.sentences.analysis_spans``). Decoded documents are cached (LRU).
        """
        end = max(end, start + 1)
        return [
            (offset, doc) for offset, doc in self.document(doc_id) if offset < end and offset + len(doc.text) > start
        ]
