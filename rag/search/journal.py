"""What a build has embedded so far, kept on disk so that an interrupted build resumes where it stopped.

A build appends each batch of finished articles to the journal folder (``generations.resume_folder``):
their vectors to ``vectors.f32`` (raw float32 rows), their packed analyses to ``analysis.bin``, then one
line per article to ``articles.jsonl`` (id, content hash, chunk spans, where its rows and record lie).
Data is flushed to disk before the lines that point at it, so after Ctrl+C, a kill or a power cut the
journal holds whole articles only: a torn last line, and bytes no line points at, are cut off when it is
opened again. The journal is never an index: readers never see it, and the build that finishes
commits a generation, then removes the journal.

A journal made under other settings (embedder, passage encoder, chunk sizes, analysis) is discarded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FORMAT = 1
KEY = "settings.json"
ARTICLES = "articles.jsonl"
VECTORS = "vectors.f32"
RECORDS = "analysis.bin"


@dataclass(frozen=True)
class Entry:
    """One article in the journal: its chunk spans, its vector rows and its analysis record's place."""

    doc_id: str
    content_hash: str
    spans: tuple[tuple[int, int], ...]
    first_row: int
    record_offset: int
    record_length: int  # 0: no analysis stored
    error: str | None = None  # why it could not be cut (kept without chunks)


class Journal:
    """The resume journal of one index folder; the caller holds the writer lock."""

    def __init__(self, folder: Path, key: dict[str, Any], dimension: int):
        self.folder = folder
        self.dimension = dimension
        self.entries: dict[str, Entry] = {}
        key = {"format": FORMAT, **key}
        folder.mkdir(parents=True, exist_ok=True)
        try:
            same = json.loads((folder / KEY).read_text()) == key
        except (OSError, ValueError):
            same = False
        if not same:
            self._clear(key)
        else:
            self._recover()
        # Open for the whole build, appended to batch by batch; ``close`` ends them.
        self._vectors = open(folder / VECTORS, "ab")  # noqa: SIM115
        self._records = open(folder / RECORDS, "ab")  # noqa: SIM115
        self._articles = open(folder / ARTICLES, "ab")  # noqa: SIM115
        self.rows = self._vectors.tell() // (4 * dimension)

    def _clear(self, key: dict[str, Any]) -> None:
        for name in (ARTICLES, VECTORS, RECORDS):
            (self.folder / name).unlink(missing_ok=True)
        partial = self.folder / f".{KEY}.partial"
        partial.write_text(json.dumps(key))
        os.replace(partial, self.folder / KEY)

    def _recover(self) -> None:
        """Reads the whole articles the journal holds and cuts off anything after the last of them."""
        rows = os.path.getsize(self.folder / VECTORS) // (4 * self.dimension) if (self.folder / VECTORS).exists() else 0
        records = os.path.getsize(self.folder / RECORDS) if (self.folder / RECORDS).exists() else 0
        kept_bytes, kept_rows, kept_records = 0, 0, 0
        path = self.folder / ARTICLES
        with open(path, "ab+") as lines:
            lines.seek(0)
            for line in lines:
                try:
                    doc_id, content_hash, spans, first_row, offset, length, error = json.loads(line)
                    entry = Entry(doc_id, content_hash, tuple(map(tuple, spans)), first_row, offset, length, error)
                except (ValueError, TypeError):
                    break  # a line torn by an interruption: this and anything after it is lost work
                if not line.endswith(b"\n") or first_row + len(spans) > rows or offset + length > records:
                    break
                self.entries[doc_id] = entry
                kept_bytes += len(line)
                kept_rows = max(kept_rows, first_row + len(spans))
                kept_records = max(kept_records, offset + length)
            lines.truncate(kept_bytes)
        for name, size in ((VECTORS, kept_rows * 4 * self.dimension), (RECORDS, kept_records)):
            with open(self.folder / name, "ab") as data:
                data.truncate(size)
        if self.entries:
            log.warning("resuming an interrupted build: %d articles were already embedded", len(self.entries))

    def done(self, doc_id: str, content_hash: str) -> Entry | None:
        """The journal's entry for this version of an article, if it was finished."""
        entry = self.entries.get(doc_id)
        return entry if entry is not None and entry.content_hash == content_hash else None

    def append(
        self,
        articles: list[tuple[str, str, tuple[tuple[int, int], ...], bytes | None, str | None]],
        vectors: np.ndarray,
    ) -> None:
        """Records finished articles (id, content hash, chunk spans, packed analysis, error) durably.

        ``vectors`` holds their chunks' rows in the same order.
        """
        assert vectors.shape == (sum(len(a[2]) for a in articles), self.dimension), "one row per chunk"
        self._vectors.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        offsets = []
        for *_, record, _ in articles:
            offsets.append(self._records.tell())
            if record:
                self._records.write(record)
        for data in (self._vectors, self._records):
            data.flush()
            os.fsync(data.fileno())
        row = self.rows
        for (doc_id, content_hash, spans, record, error), offset in zip(articles, offsets):
            entry = Entry(doc_id, content_hash, spans, row, offset, len(record or b""), error)
            self._articles.write(
                (json.dumps([doc_id, content_hash, spans, row, offset, entry.record_length, error]) + "\n").encode()
            )
            self.entries[doc_id] = entry
            row += len(spans)
        self._articles.flush()
        os.fsync(self._articles.fileno())
        self.rows = row

    def vectors(self) -> np.ndarray:
        """Every row written so far, memory-mapped (read-only)."""
        if self.rows == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.memmap(self.folder / VECTORS, dtype=np.float32, mode="r", shape=(self.rows, self.dimension))

    @property
    def records_path(self) -> Path:
        return self.folder / RECORDS

    def close(self) -> None:
        for handle in (self._vectors, self._records, self._articles):
            handle.close()

    def remove(self) -> None:
        """Deletes the journal once its articles live in a committed generation."""
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)
