"""The index on disk: FAISS vectors, BM25 terms, chunks, documents and a manifest.

Layout: ``index_dir/CURRENT`` names the live generation folder
(``index_dir/gen-…/``). A build writes a new generation beside the live one and
then replaces ``CURRENT`` in one atomic rename, so a build that fails half-way
leaves the previous index untouched and usable.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.chunking import chunk_document
from rag.corpus import corpus_fingerprint, load_corpus
from rag.errors import IndexMismatchError, IndexMissingError, RagError
from rag.records import Chunk, Document
from rag.settings import TOKENIZER_NAME, ChunkSettings, Settings

if TYPE_CHECKING:
    from rag.embedding import Embedder

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CURRENT = "CURRENT"
# Approximate search is an inverted file (IVF) over exact vectors: on two cores it builds
# in minutes where HNSW takes far longer for 1M chunks, and it meets the latency and recall
# targets (bench/README.md). nlist = IVF_LISTS_PER_SQRT * sqrt(chunks), the usual 4-16 sqrt(N).
IVF_LISTS_PER_SQRT = 4
IVF_NPROBE = 64  # lists visited per query
IVF_TRAIN_PER_LIST = 40  # k-means needs >= 39 points a list; more only slows the build
# Older indexes may hold HNSW graphs; they still load and search with this setting.
HNSW_EF_SEARCH = 128


# ---------------------------------------------------------------------------
# Search structures


def ivf_lists(n: int) -> int:
    """Number of IVF lists for n vectors: ~4 sqrt(n), never fewer than training can support."""
    return max(1, min(int(IVF_LISTS_PER_SQRT * n**0.5), n // IVF_TRAIN_PER_LIST))


def build_faiss(vectors: np.ndarray, approximate: bool):
    """An inner-product FAISS index over unit vectors: exact (flat) or approximate (IVF)."""
    import faiss

    dimension = vectors.shape[1]
    # Inner product equals cosine similarity on unit vectors.
    if approximate and len(vectors):
        lists = ivf_lists(len(vectors))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, lists, faiss.METRIC_INNER_PRODUCT)
        # A fixed seed keeps rebuilds of the same vectors identical.
        rng = np.random.default_rng(0)
        sample = rng.choice(len(vectors), min(len(vectors), lists * IVF_TRAIN_PER_LIST), replace=False)
        index.train(vectors[np.sort(sample)])
        index.nprobe = IVF_NPROBE
    else:
        index = faiss.IndexFlatIP(dimension)
    if len(vectors):
        index.add(vectors)
    return index


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def bm25_tokens(texts: list[str], stemmer=None) -> list[list[str]]:
    """Lower-cased, stop-word-free, stemmed terms of each text, as BM25 sees them."""
    import bm25s

    return bm25s.tokenize(
        texts, stopwords="en", stemmer=stemmer or _stemmer(), return_ids=False, show_progress=False
    )


def build_bm25(texts: list[str]):
    """A bm25s retriever over the chunk texts (row i is chunk i)."""
    import bm25s

    # bm25s sets its own logger to DEBUG, which would print build chatter through any root handler.
    logging.getLogger("bm25s").setLevel(logging.WARNING)

    retriever = bm25s.BM25()
    if texts:
        retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), show_progress=False), show_progress=False)
    return retriever


# ---------------------------------------------------------------------------
# The index


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

    @property
    def faiss(self):
        if self._faiss is None:
            self._faiss = build_faiss(self.vectors, self.manifest["faiss"]["type"] != "flat")
        return self._faiss

    @property
    def bm25(self):
        if self._bm25 is None:
            self._bm25 = build_bm25([c.text for c in self.chunks])
        return self._bm25

    @cached_property
    def stemmer(self):
        return _stemmer()

    def __len__(self) -> int:
        return len(self.chunks)

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """The chunks of one document, in order."""
        return [c for c in self.chunks if c.doc_id == doc_id]

    # -- persistence -----------------------------------------------------

    def save(self, index_dir: Path) -> Path:
        """Writes a new generation and makes it the live one in one atomic step."""
        import faiss

        index_dir.mkdir(parents=True, exist_ok=True)
        generation = index_dir / f"gen-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=index_dir))
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
            (staging / "manifest.json").write_text(json.dumps(self.manifest, indent=2))
            os.rename(staging, generation)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        pointer = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:6]}"
        pointer.write_text(generation.name + "\n")
        os.replace(pointer, index_dir / CURRENT)  # the commit point
        _remove_old_generations(index_dir, keep=generation.name)
        self.path = generation
        return generation

    @classmethod
    def load(cls, index_dir: Path) -> Index:
        """Reads the live generation of ``index_dir``."""
        import bm25s
        import faiss

        pointer = index_dir / CURRENT
        if not pointer.is_file():
            raise IndexMissingError(f"no index in {index_dir}: run `rag ingest` to build one")
        generation = index_dir / pointer.read_text().strip()
        try:
            manifest = json.loads((generation / "manifest.json").read_text())
            documents = {}
            with open(generation / "documents.jsonl", encoding="utf-8") as lines:
                for line in lines:
                    doc = Document(**json.loads(line))
                    documents[doc.id] = doc
            chunks = []
            with open(generation / "chunks.jsonl", encoding="utf-8") as lines:
                for line in lines:
                    doc_id, chunk_id, start, end = json.loads(line)
                    chunks.append(Chunk(doc_id, chunk_id, start, end, documents[doc_id].text[start:end]))
            vectors = np.load(generation / "vectors.npy")
            faiss_index = faiss.read_index(str(generation / "faiss.index"))
            if hasattr(faiss_index, "nprobe"):
                faiss_index.nprobe = IVF_NPROBE  # search-time settings are not stored in the file
            if hasattr(faiss_index, "hnsw"):
                faiss_index.hnsw.efSearch = HNSW_EF_SEARCH
            bm25 = bm25s.BM25.load(str(generation / "bm25"))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise RagError(f"the index in {index_dir} is damaged ({exc}): run `rag ingest` to rebuild it") from None
        if manifest.get("format") != FORMAT_VERSION:
            raise IndexMismatchError(f"the index in {index_dir} has an old format: run `rag ingest` to rebuild it")
        return cls(documents, chunks, vectors, manifest, generation, faiss_index, bm25)


def _remove_old_generations(index_dir: Path, keep: str) -> None:
    for child in index_dir.iterdir():
        if child.is_dir() and child.name != keep and (child.name.startswith("gen-") or child.name.startswith(".building-")):
            shutil.rmtree(child, ignore_errors=True)


# ---------------------------------------------------------------------------
# Building


def _versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for package in ("faiss-cpu", "sentence-transformers", "torch", "bm25s", "tiktoken", "spacy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def make_manifest(
    documents: Iterable[Document], n_chunks: int, embedder: Embedder, chunking: ChunkSettings,
    corpus_paths: Iterable[Path], approximate: bool,
) -> dict[str, Any]:
    """The manifest recorded with an index; ``check_manifest`` compares against it."""
    documents = list(documents)
    return {
        "format": FORMAT_VERSION,
        "embedder": embedder.describe(),
        "tokenizer": TOKENIZER_NAME,
        "chunking": chunking.to_dict(),
        "corpus": {
            "paths": [str(p) for p in corpus_paths],
            "fingerprint": corpus_fingerprint(documents),
            "documents": len(documents),
        },
        "chunks": n_chunks,
        "faiss": (
            {"type": "ivf", "metric": "inner_product", "lists": ivf_lists(n_chunks), "nprobe": IVF_NPROBE}
            if approximate
            else {"type": "flat", "metric": "inner_product"}
        ),
        "versions": _versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


@dataclass(frozen=True)
class BuildReport:
    """What a build did, for the CLI's summary."""

    documents: int
    chunks: int
    embedded_chunks: int
    reused_documents: int
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    seconds: float
    path: Path | None = None

    def summary(self) -> str:
        return (
            f"{self.documents} articles, {self.chunks} chunks ({self.embedded_chunks} embedded, "
            f"{self.reused_documents} articles reused); added {len(self.added)}, changed {len(self.changed)}, "
            f"removed {len(self.removed)}; {self.seconds:.1f} s"
        )


def build_index(
    documents: list[Document],
    embedder: Embedder,
    settings: Settings,
    previous: Index | None = None,
    corpus_paths: Iterable[Path] = (),
    progress: bool | None = None,
) -> tuple[Index, BuildReport]:
    """Chunks and embeds ``documents``, reusing the vectors of articles unchanged since ``previous``."""
    started = time.perf_counter()
    if not documents:
        raise RagError("the corpus has no readable articles: add .txt, .md, .html or .jsonl files")
    reusable = previous is not None and _same_vectors(previous.manifest, embedder, settings.chunking)
    old_docs = previous.documents if previous is not None else {}
    old_chunks: dict[str, list[tuple[Chunk, np.ndarray]]] = {}
    if reusable:
        for position, chunk in enumerate(previous.chunks):
            old_chunks.setdefault(chunk.doc_id, []).append((chunk, previous.vectors[position]))

    chunks: list[Chunk] = []
    vectors: list[np.ndarray | None] = []
    to_embed: list[int] = []
    reused = 0
    for doc in documents:
        old = old_docs.get(doc.id)
        if reusable and old is not None and old.content_hash == doc.content_hash and doc.id in old_chunks:
            reused += 1
            for chunk, vector in old_chunks[doc.id]:
                chunks.append(chunk)
                vectors.append(vector)
            continue
        for chunk in chunk_document(doc, settings.chunking, fits=embedder.fits):
            to_embed.append(len(chunks))
            chunks.append(chunk)
            vectors.append(None)
    fresh = embedder.encode([chunks[i].text for i in to_embed], progress=progress)
    for row, position in enumerate(to_embed):
        vectors[position] = fresh[row]
    matrix = np.vstack(vectors).astype(np.float32) if vectors else np.zeros((0, embedder.dimension), np.float32)

    approximate = len(chunks) > settings.approximate_above
    manifest = make_manifest(documents, len(chunks), embedder, settings.chunking, corpus_paths, approximate)
    index = Index({d.id: d for d in documents}, chunks, matrix, manifest)
    index.faiss, index.bm25  # noqa: B018  (build both now, inside the timed build)
    new_ids = {d.id for d in documents}
    report = BuildReport(
        documents=len(documents),
        chunks=len(chunks),
        embedded_chunks=len(to_embed),
        reused_documents=reused,
        added=tuple(sorted(new_ids - set(old_docs))),
        changed=tuple(sorted(d.id for d in documents if d.id in old_docs and old_docs[d.id].content_hash != d.content_hash)),
        removed=tuple(sorted(set(old_docs) - new_ids)),
        seconds=time.perf_counter() - started,
    )
    return index, report


def _same_vectors(manifest: dict[str, Any], embedder: Embedder, chunking: ChunkSettings) -> bool:
    """Whether vectors in an index built under ``manifest`` can be reused now."""
    return (
        manifest.get("embedder", {}).get("weights_sha256") == embedder.weights_sha256
        and manifest.get("tokenizer") == TOKENIZER_NAME
        and manifest.get("chunking") == chunking.to_dict()
    )


def mismatch(manifest: dict[str, Any], embedder: Embedder, settings: Settings, documents: list[Document] | None) -> str | None:
    """Why an index built under ``manifest`` does not fit the current settings and corpus, or None."""
    if manifest.get("embedder", {}).get("weights_sha256") != embedder.weights_sha256:
        return "it was built with other embedding weights"
    if manifest.get("tokenizer") != TOKENIZER_NAME:
        return f"it was built with the tokenizer {manifest.get('tokenizer')}"
    if manifest.get("chunking") != settings.chunking.to_dict():
        return f"it was built with chunk settings {manifest.get('chunking')}, not {settings.chunking.to_dict()}"
    if documents is not None and manifest["corpus"]["fingerprint"] != corpus_fingerprint(documents):
        return "the corpus has changed since it was built"
    return None


def corpus_paths_for(settings: Settings, manifest: dict[str, Any] | None) -> tuple[Path, ...]:
    """The configured corpus: explicit settings first, then what the index was built from, then seeds/."""
    if settings.corpus:
        return settings.corpus
    if manifest and manifest.get("corpus", {}).get("paths"):
        return tuple(Path(p) for p in manifest["corpus"]["paths"])
    return (Path("seeds"),)


def ingest(
    settings: Settings, embedder: Embedder | None = None, progress: bool | None = None
) -> tuple[Index, BuildReport]:
    """Builds or updates the index for the configured corpus and makes it live."""
    from rag.embedding import default_embedder

    embedder = embedder or default_embedder()
    previous = _load_if_usable(settings.index_dir)
    paths = corpus_paths_for(settings, previous.manifest if previous else None)
    documents = load_corpus(paths)
    index, report = build_index(documents, embedder, settings, previous, paths, progress)
    path = index.save(settings.index_dir)
    return index, BuildReport(**{**report.__dict__, "path": path})


def _load_if_usable(index_dir: Path) -> Index | None:
    try:
        return Index.load(index_dir)
    except RagError as exc:
        if not isinstance(exc, IndexMissingError):
            log.warning("%s; building a new one", exc)
        return None


def open_index(settings: Settings, embedder: Embedder | None = None, rebuild: bool = True, progress: bool | None = None) -> Index:
    """The index for the configured corpus, rebuilt (incrementally) when it is missing or stale.

    With ``rebuild=False`` a stale or mismatched index raises an error naming the fix instead.
    """
    from rag.embedding import default_embedder

    embedder = embedder or default_embedder()
    index = _load_if_usable(settings.index_dir)
    paths = corpus_paths_for(settings, index.manifest if index else None)
    documents = load_corpus(paths) if all(p.exists() for p in paths) else None
    if index is not None:
        reason = mismatch(index.manifest, embedder, settings, documents)
        if reason is None:
            return index
        if not rebuild or documents is None:
            raise IndexMismatchError(
                f"the index in {settings.index_dir} does not fit: {reason}; run `rag ingest` to rebuild it"
            )
        log.warning("the index in %s is stale (%s): updating it", settings.index_dir, reason)
    elif not rebuild or documents is None:
        raise IndexMissingError(f"no index in {settings.index_dir}: run `rag ingest PATHS` to build one")
    index, report = build_index(documents, embedder, settings, index, paths, progress)
    index.save(settings.index_dir)
    log.warning("index updated: %s", report.summary())
    return index
