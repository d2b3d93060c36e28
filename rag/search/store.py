"""What one generation of the index holds, and reading and writing it whole.

A generation folder holds ``manifest.json`` (embedder, tokenizer, chunk settings, corpus paths and
fingerprint, FAISS type, library versions, the size of every file), ``documents.jsonl`` (normalised
texts), ``chunks.jsonl`` (offsets), ``vectors.npy``, ``faiss.index``, ``bm25/``, one file or folder per
extra ``Artefact``, and ``corpus-files.json`` (size, modification time and hash of each article file
read, so that opening the index can tell an unchanged corpus without reading it). Where generations
live and how one becomes the live one is ``rag.search.generations``' business.

A damaged generation (a file missing, truncated or swapped, a manifest that does not parse) raises
IndexDamagedError, carrying the manifest when it is readable.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.errors import IndexDamagedError
from rag.ingest.stamps import FileStamp
from rag.records import Chunk, Document
from rag.search.generations import MANIFEST, commit, discard, new_staging, pinned_generation
from rag.search.structures import HNSW_EF_SEARCH, IVF_NPROBE, build_bm25, build_faiss
from rag.text import first_line, snowball_stemmer

FORMAT_VERSION = 2  # 2: the stored sentence analysis, chunks from one spaCy pass (issue 14)
STAMPS = "corpus-files.json"  # a cache about the corpus, not part of the index: left out of the file sizes


class Artefact(Protocol):
    """Extra data stored with each generation, built from the index at ingest (e.g. a sentence analysis).

    ``name`` is the file or folder it takes in the generation and its key in ``Index.artefacts``; the
    manifest lists the artefacts a generation holds, and an index lacking one that is asked for is
    rebuilt like a stale one. ``build`` may reuse what ``previous`` (the index being updated) holds.
    """

    name: str

    def build(self, index: Index, previous: Index | None) -> Any: ...

    def save(self, value: Any, path: Path) -> None: ...

    def load(self, path: Path, index: Index) -> Any: ...


@dataclass
class Index:
    """Documents, chunks and their search structures, with the manifest that describes them."""

    documents: dict[str, Document]
    chunks: list[Chunk]
    vectors: np.ndarray
    manifest: dict[str, Any]
    path: Path | None = None
    _faiss: Any = field(default=None, repr=False)
    _bm25: Any = field(default=None, repr=False)
    artefacts: dict[str, Any] = field(default_factory=dict, repr=False)
    corpus_files: tuple[FileStamp, ...] | None = field(default=None, repr=False)
    # Set by a build: where each newly parsed document's packed analysis lies (file, offset, length).
    new_analyses: dict[str, tuple[Path, int, int]] = field(default_factory=dict, repr=False)

    @property
    def faiss(self) -> Any:
        if self._faiss is None:
            self._faiss = build_faiss(self.vectors, self.manifest["faiss"]["type"])
        return self._faiss

    @property
    def bm25(self) -> Any:
        if self._bm25 is None:
            self._bm25 = build_bm25([c.text for c in self.chunks])
        return self._bm25

    @cached_property
    def stemmer(self) -> Any:
        return snowball_stemmer()

    def __len__(self) -> int:
        return len(self.chunks)

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """The chunks of one document, in order."""
        return [c for c in self.chunks if c.doc_id == doc_id]

    # -- persistence -----------------------------------------------------

    def save(self, index_dir: Path, artefacts: Sequence[Artefact] = ()) -> Path:
        """Writes a new generation and makes it the live one in one atomic step.

        The caller holds the writer lock (``writer_lock``); ``ingest`` and ``open_index`` do.
        """
        import faiss

        staging = new_staging(index_dir)
        try:
            with open(staging / "documents.jsonl", "w", encoding="utf-8") as out:
                for doc in self.documents.values():
                    out.write(json.dumps(doc.to_dict(), ensure_ascii=False) + "\n")
            with open(staging / "chunks.jsonl", "w", encoding="utf-8") as out:
                for chunk in self.chunks:
                    # The text is not stored twice: it is documents[doc_id].text[start:end].
                    out.write(json.dumps([chunk.doc_id, chunk.chunk_id, chunk.start, chunk.end]) + "\n")
            np.save(staging / "vectors.npy", self.vectors)
            faiss.write_index(self.faiss, str(staging / "faiss.index"))
            self.bm25.save(str(staging / "bm25"))
            for artefact in artefacts:
                artefact.save(self.artefacts[artefact.name], staging / artefact.name)
            # Sizes of the files, so a truncated or swapped file is noticed before it is parsed.
            self.manifest = {**self.manifest, "files": _file_sizes(staging)}
            if artefacts:
                self.manifest["artefacts"] = [a.name for a in artefacts]
            (staging / MANIFEST).write_text(json.dumps(self.manifest, indent=2))
            if self.corpus_files is not None:
                _write_stamps(staging, self.corpus_files)
            generation = commit(index_dir, staging)
        except BaseException:
            discard(staging)
            raise
        self.path = generation
        for artefact in artefacts:  # what the build made may point at its leftovers: read the saved form
            self.artefacts[artefact.name] = artefact.load(generation / artefact.name, self)
        return generation

    @classmethod
    def load(cls, index_dir: Path, artefacts: Sequence[Artefact] = ()) -> Index:
        """Reads the live generation of ``index_dir`` whole, pinned so that no build deletes it meanwhile.

        ``artefacts`` are read when the generation holds them (see ``Index.artefacts``). Raises
        IndexMissingError when there is no index, IndexDamagedError (with the manifest when it is
        readable) when any part is missing, unreadable or does not match the rest.
        """
        with pinned_generation(index_dir) as generation:
            return cls._read(index_dir, generation, artefacts)

    @classmethod
    def _read(cls, index_dir: Path, generation: Path, artefacts: Sequence[Artefact]) -> Index:
        import bm25s
        import faiss

        manifest = _read_manifest(index_dir, generation)

        def damaged(reason: str) -> IndexDamagedError:
            return IndexDamagedError(f"the index in {index_dir} is damaged ({reason})", manifest)

        for name, size in (manifest.get("files") or {}).items():
            path = generation / name
            if not path.is_file():
                raise damaged(f"{name} is missing")
            if path.stat().st_size != size:
                raise damaged(f"{name} is {path.stat().st_size:,} bytes, the manifest says {size:,}")
        # Whatever a damaged file makes the readers raise (FAISS, numpy, JSON, bm25s), it means damage.
        part = "documents.jsonl"
        try:
            documents = {}
            with open(generation / part, encoding="utf-8") as lines:
                for line in lines:
                    doc = Document(**json.loads(line))
                    documents[doc.id] = doc
            part = "chunks.jsonl"
            chunks = []
            with open(generation / part, encoding="utf-8") as lines:
                for line in lines:
                    doc_id, chunk_id, start, end = json.loads(line)
                    text = documents[doc_id].text
                    if not 0 <= start < end <= len(text):
                        raise ValueError(f"chunk {doc_id}#{chunk_id} lies outside its document")
                    chunks.append(Chunk(doc_id, chunk_id, start, end, text[start:end]))
            part = "vectors.npy"
            # IVF-PQ indexes are the large ones: their vectors are read from disk as needed (re-ranking).
            vectors = np.load(generation / part, mmap_mode="r" if manifest["faiss"].get("type") == "ivfpq" else None)
            part = "faiss.index"
            faiss_index = faiss.read_index(str(generation / part))
            part = "bm25"
            bm25 = bm25s.BM25.load(str(generation / part))
        except Exception as exc:
            raise damaged(f"{part} cannot be read: {first_line(exc)}") from None
        dimension = manifest["embedder"].get("dimension")
        if len(chunks) != manifest["chunks"]:
            raise damaged(f"chunks.jsonl holds {len(chunks)} chunks, the manifest says {manifest['chunks']}")
        if vectors.ndim != 2 or vectors.shape != (len(chunks), dimension or vectors.shape[1]):
            raise damaged(
                f"vectors.npy holds {vectors.shape} vectors for {len(chunks)} chunks of dimension {dimension}"
            )
        if faiss_index.ntotal != len(chunks) or faiss_index.d != vectors.shape[1]:
            raise damaged(
                f"faiss.index holds {faiss_index.ntotal} vectors of dimension {faiss_index.d}, "
                f"not {len(chunks)} of dimension {vectors.shape[1]}: it belongs to another index"
            )
        if bm25.scores.get("num_docs") != len(chunks):
            raise damaged(f"bm25 holds {bm25.scores.get('num_docs')} chunks, not {len(chunks)}")
        if isinstance(faiss_index, faiss.IndexFlat) and len(chunks):
            # Same count and dimension is not enough: the vectors themselves must be this index's.
            rows = sorted({0, len(chunks) - 1})
            if not all(np.allclose(faiss_index.reconstruct(i), vectors[i], atol=1e-6) for i in rows):
                raise damaged("faiss.index holds other vectors than vectors.npy: it belongs to another index")
        if hasattr(faiss_index, "nprobe"):
            faiss_index.nprobe = IVF_NPROBE  # search-time settings are not stored in the file
        if hasattr(faiss_index, "hnsw"):
            faiss_index.hnsw.efSearch = HNSW_EF_SEARCH
        index = cls(documents, chunks, vectors, manifest, generation, faiss_index, bm25)
        for artefact in artefacts:
            if artefact.name in manifest.get("artefacts", ()):
                try:
                    index.artefacts[artefact.name] = artefact.load(generation / artefact.name, index)
                except Exception as exc:
                    raise damaged(f"{artefact.name} cannot be read: {first_line(exc)}") from None
        index.corpus_files = _read_stamps(generation)
        return index

    def remember_corpus_files(self, stamps: Sequence[FileStamp]) -> None:
        """Records the corpus files this live index was found to match (after a full check of the corpus),
        so that the next opening decides from their sizes and times alone. Best effort: a folder that
        cannot be written only costs that check again next time."""
        self.corpus_files = tuple(stamps)
        if self.path is not None:
            with contextlib.suppress(OSError):
                _write_stamps(self.path, self.corpus_files)


def _file_sizes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def _write_stamps(folder: Path, stamps: Sequence[FileStamp]) -> None:
    partial = folder / f".{STAMPS}.{os.getpid()}"
    partial.write_text(json.dumps([s.to_list() for s in stamps]))
    os.replace(partial, folder / STAMPS)  # readers see the old list or the new one, never half


def _read_stamps(folder: Path) -> tuple[FileStamp, ...] | None:
    """The corpus files recorded with a generation; None when there is no readable record (older index)."""
    try:
        return tuple(FileStamp.from_list(item) for item in json.loads((folder / STAMPS).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def read_manifest(index_dir: Path) -> dict[str, Any]:
    """The live generation's manifest alone (cheap: for the corpus it names); errors as ``Index.load``."""
    with pinned_generation(index_dir) as generation:
        return _read_manifest(index_dir, generation)


def _read_manifest(index_dir: Path, generation: Path) -> dict[str, Any]:
    """The manifest of a generation, checked for the fields the index needs; IndexDamagedError otherwise."""
    try:
        manifest = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexDamagedError(
            f"the index in {index_dir} is damaged ({MANIFEST} cannot be read: {first_line(exc)})"
        ) from None
    problem = None
    if not isinstance(manifest, dict):
        problem = f"{MANIFEST} is not a JSON object"
    elif manifest.get("format") != FORMAT_VERSION:
        # Not damage but age: rebuilt from the corpus it names (``rag.search.index``), with this message.
        paths = manifest.get("corpus", {}).get("paths") if isinstance(manifest.get("corpus"), dict) else None
        raise IndexDamagedError(
            f"the index in {index_dir} has format {manifest.get('format')!r}, made by another version of rag "
            f"(this one reads format {FORMAT_VERSION})",
            manifest if isinstance(paths, list) and all(isinstance(p, str) for p in paths) else None,
        )
    elif (
        not isinstance(manifest.get("corpus"), dict)
        or not isinstance(manifest["corpus"].get("paths"), list)
        or not all(isinstance(p, str) for p in manifest["corpus"]["paths"])
    ):
        problem = f"{MANIFEST} does not name its corpus"
    elif (
        not isinstance(manifest.get("embedder"), dict)
        or not isinstance(manifest.get("chunks"), int)
        or not isinstance(manifest.get("faiss"), dict)
        or not isinstance(manifest.get("files", {}), dict)
    ):
        problem = f"{MANIFEST} lacks the embedder, chunk count, FAISS type or file sizes"
    if problem:
        raise IndexDamagedError(f"the index in {index_dir} is damaged ({problem})")
    return manifest
