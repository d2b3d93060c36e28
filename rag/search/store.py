"""The index on disk: FAISS vectors, BM25 terms, chunks, documents and a manifest.

Layout: ``index_dir/CURRENT`` names the live generation folder
(``index_dir/gen-…/``). A build writes a new generation beside the live one and
then replaces ``CURRENT`` in one atomic rename, so a build that fails half-way
leaves the previous index untouched and usable.

Concurrency: one build at a time per index folder (``index_dir/.lock``, a
``filelock`` lock that dies with its process); a second build waits for it, up
to ``Settings.lock_timeout``. Readers resolve ``CURRENT`` once and read the whole
generation into memory while holding a shared ``flock`` on its manifest; a build
removes an old generation only when it can take that lock exclusively, so it
never deletes a generation while someone reads it.

A damaged index (a file missing, truncated or swapped, a manifest that does not
parse) is rebuilt only from the corpus its own manifest names, never from a
default; without a readable manifest the fix is `rag ingest PATHS`.
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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

try:
    import fcntl
except ImportError:  # not POSIX: generations are not pinned (see pinned_generation)
    fcntl = None

from rag.ingest.chunking import chunk_document
from rag.ingest.reading import corpus_fingerprint, load_corpus, progress_bar
from rag.errors import IndexDamagedError, IndexMismatchError, IndexMissingError, RagError
from rag.records import Chunk, Document
from rag.settings import TOKENIZER_NAME, ChunkSettings, Settings

if TYPE_CHECKING:
    from rag.search.embedding import Embedder

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CURRENT = "CURRENT"
LOCK = ".lock"
MANIFEST = "manifest.json"
PIN_RETRIES = 5  # times a reader re-reads CURRENT when a build swapped generations under it
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
        """Writes a new generation and makes it the live one in one atomic step.

        The caller holds the writer lock (``writer_lock``); ``ingest`` and ``open_index`` do.
        """
        import faiss

        generation = index_dir / f"gen-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        try:
            index_dir.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".building-", dir=index_dir))
        except OSError as exc:
            raise _cannot_write(index_dir, exc) from None
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
            # Sizes of the files, so a truncated or swapped file is noticed before it is parsed.
            self.manifest = {**self.manifest, "files": _file_sizes(staging)}
            (staging / MANIFEST).write_text(json.dumps(self.manifest, indent=2))
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
        """Reads the live generation of ``index_dir`` whole, pinned so that no build deletes it meanwhile.

        Raises IndexMissingError when there is no index, IndexDamagedError (with the manifest when it is
        readable) when any part is missing, unreadable or does not match the rest.
        """
        with pinned_generation(index_dir) as generation:
            return cls._read(index_dir, generation)

    @classmethod
    def _read(cls, index_dir: Path, generation: Path) -> Index:
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
            vectors = np.load(generation / part)
            part = "faiss.index"
            faiss_index = faiss.read_index(str(generation / part))
            part = "bm25"
            bm25 = bm25s.BM25.load(str(generation / part))
        except Exception as exc:  # noqa: BLE001
            raise damaged(f"{part} cannot be read: {_first_line(exc)}") from None
        dimension = manifest["embedder"].get("dimension")
        if len(chunks) != manifest["chunks"]:
            raise damaged(f"chunks.jsonl holds {len(chunks)} chunks, the manifest says {manifest['chunks']}")
        if vectors.ndim != 2 or vectors.shape != (len(chunks), dimension or vectors.shape[1]):
            raise damaged(f"vectors.npy holds {vectors.shape} vectors for {len(chunks)} chunks of dimension {dimension}")
        if faiss_index.ntotal != len(chunks) or faiss_index.d != vectors.shape[1]:
            raise damaged(f"faiss.index holds {faiss_index.ntotal} vectors of dimension {faiss_index.d}, "
                          f"not {len(chunks)} of dimension {vectors.shape[1]}: it belongs to another index")
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
        return cls(documents, chunks, vectors, manifest, generation, faiss_index, bm25)


def _first_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _file_sizes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def _read_manifest(index_dir: Path, generation: Path) -> dict[str, Any]:
    """The manifest of a generation, checked for the fields the index needs; IndexDamagedError otherwise."""
    try:
        manifest = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexDamagedError(f"the index in {index_dir} is damaged ({MANIFEST} cannot be read: {_first_line(exc)})") from None
    problem = None
    if not isinstance(manifest, dict):
        problem = f"{MANIFEST} is not a JSON object"
    elif manifest.get("format") != FORMAT_VERSION:
        problem = f"it has format {manifest.get('format')!r}, not {FORMAT_VERSION}"
    elif not isinstance(manifest.get("corpus"), dict) or not isinstance(manifest["corpus"].get("paths"), list) \
            or not all(isinstance(p, str) for p in manifest["corpus"]["paths"]):
        problem = f"{MANIFEST} does not name its corpus"
    elif not isinstance(manifest.get("embedder"), dict) or not isinstance(manifest.get("chunks"), int) \
            or not isinstance(manifest.get("faiss"), dict) or not isinstance(manifest.get("files", {}), dict):
        problem = f"{MANIFEST} lacks the embedder, chunk count, FAISS type or file sizes"
    if problem:
        raise IndexDamagedError(f"the index in {index_dir} is damaged ({problem})")
    return manifest


def _read_current(index_dir: Path) -> str:
    """The name of the live generation, from ``CURRENT``."""
    try:
        return (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        if index_dir.is_dir() and any(p.name.startswith("gen-") for p in index_dir.iterdir()):
            raise IndexDamagedError(f"the index in {index_dir} is damaged ({CURRENT} is missing)") from None
        raise IndexMissingError(f"no index in {index_dir}: run `rag ingest PATHS` to build one") from None
    except (OSError, ValueError) as exc:
        raise IndexDamagedError(f"the index in {index_dir} is damaged ({CURRENT} cannot be read: {_first_line(exc)})") from None


@contextmanager
def pinned_generation(index_dir: Path) -> Iterator[Path]:
    """The live generation folder, pinned for the block: no build deletes it while it is read.

    The pin is a shared ``flock`` on the generation's manifest (readers need no write access); a build
    removes an old generation only under an exclusive lock on the same file. When a build swapped
    generations between reading ``CURRENT`` and pinning, ``CURRENT`` is read again.
    """
    for _ in range(PIN_RETRIES):
        name = _read_current(index_dir)
        if not name or "/" in name or name.startswith("."):
            raise IndexDamagedError(f"the index in {index_dir} is damaged ({CURRENT} holds {name!r}, not a generation)")
        generation = index_dir / name
        pin = _pin(generation / MANIFEST)
        if pin is None:
            if _read_current(index_dir) != name:
                continue  # a build replaced it meanwhile: read the new one
            raise IndexDamagedError(f"the index in {index_dir} is damaged ({CURRENT} names {name}, which is missing)")
        try:
            yield generation
        finally:
            os.close(pin)
        return
    raise IndexDamagedError(f"the index in {index_dir} is damaged (its generation kept changing while it was read)")


def _pin(manifest: Path) -> int | None:
    """A file descriptor holding a shared lock on a generation's manifest, or None when it is gone."""
    try:
        fd = os.open(manifest, os.O_RDONLY)
    except FileNotFoundError:
        return None
    if fcntl is None:  # no flock on this system: nothing to pin with
        return fd
    fcntl.flock(fd, fcntl.LOCK_SH)  # waits while a build renames the generation away (a moment)
    try:
        still_there = os.path.samestat(os.fstat(fd), os.stat(manifest))
    except FileNotFoundError:
        still_there = False
    if not still_there:
        os.close(fd)
        return None
    return fd


def _take_for_removal(generation: Path) -> bool:
    """Moves an old generation aside for deletion, unless a reader has it pinned (then it stays)."""
    manifest = generation / MANIFEST
    try:
        fd = os.open(manifest, os.O_RDONLY)
    except FileNotFoundError:
        fd = None  # a generation without a manifest cannot be read, so nobody pins it
    try:
        if fd is not None and fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
        os.rename(generation, generation.with_name(f".removing-{generation.name}"))
        return True
    finally:
        if fd is not None:
            os.close(fd)


def _remove_old_generations(index_dir: Path, keep: str) -> None:
    """Deletes generations nobody reads and staging left by builds that died (the writer lock is held)."""
    for child in index_dir.iterdir():
        if not child.is_dir() or child.name == keep:
            continue
        if child.name.startswith("gen-"):
            if not _take_for_removal(child):
                log.debug("kept %s: a reader has it open", child)
                continue
            child = child.with_name(f".removing-{child.name}")
        elif not child.name.startswith((".building-", ".removing-")):
            continue
        shutil.rmtree(child, ignore_errors=True)


def _cannot_write(index_dir: Path, exc: OSError) -> RagError:
    return RagError(f"cannot write to the index folder {index_dir} ({exc.strerror or exc}): give a writable "
                    "folder with --index (or $RAG_INDEX), or use --no-rebuild to answer from the index as it is")


@contextmanager
def writer_lock(index_dir: Path, timeout: float) -> Iterator[None]:
    """Holds the index folder's writer lock: one build at a time, across processes.

    A second build waits up to ``timeout`` seconds, then fails with a message naming the folder. The lock
    is released when its holder ends, however it ends.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(index_dir / LOCK)
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.warning("another `rag ingest` is updating the index in %s: waiting for it (up to %g s)", index_dir, timeout)
            lock.acquire(timeout=timeout)
        # The lock file may exist in a folder that no longer takes new files: find out before building.
        tempfile.NamedTemporaryFile(dir=index_dir, prefix=".probe-").close()
    except Timeout:
        raise RagError(f"another `rag ingest` (or the app adding articles) is updating the index in {index_dir} "
                       f"and has not finished within {timeout:g} s: try again when it has (waiting longer: "
                       "RAG_LOCK_TIMEOUT=SECONDS)") from None
    except OSError as exc:
        if lock.is_locked:
            lock.release()
        raise _cannot_write(index_dir, exc) from None
    try:
        yield
    finally:
        lock.release()


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
            # Absolute: a relative path would name another folder when read from elsewhere.
            "paths": [os.path.abspath(p) for p in corpus_paths],
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
    skipped: tuple[str, ...] = ()  # articles that could not be cut into passages (indexed without any)

    def summary(self) -> str:
        skipped = f", skipped {len(self.skipped)} (see the warnings)" if self.skipped else ""
        return (
            f"{self.documents} articles, {self.chunks} chunks ({self.embedded_chunks} embedded, "
            f"{self.reused_documents} articles reused); added {len(self.added)}, changed {len(self.changed)}, "
            f"removed {len(self.removed)}{skipped}; {self.seconds:.1f} s"
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

    def reuses(doc: Document) -> bool:
        old = old_docs.get(doc.id)
        return reusable and old is not None and old.content_hash == doc.content_hash and doc.id in old_chunks

    chunks: list[Chunk] = []
    vectors: list[np.ndarray | None] = []
    to_embed: list[int] = []
    reused, skipped = 0, []
    to_cut = sum(len(doc.text) for doc in documents if not reuses(doc))
    with progress_bar(to_cut, "cutting articles into passages", "char", progress) as bar:
        for doc in documents:
            if reuses(doc):
                reused += 1
                for chunk, vector in old_chunks[doc.id]:
                    chunks.append(chunk)
                    vectors.append(vector)
                continue
            done = [0]

            def note(characters: int, done=done) -> None:
                done[0] += characters
                bar.update(characters)

            try:
                cut = chunk_document(doc, settings.chunking, fits=embedder.fits, on_progress=note)
            except Exception as exc:  # noqa: BLE001  (one unreadable article must not stop the whole build)
                # Kept without passages, so the corpus still matches the index; the next build retries it.
                log.warning("skipped %s (%s): it could not be cut into passages: %s", doc.id, doc.source, _first_line(exc))
                skipped.append(doc.id)
                bar.update(len(doc.text) - done[0])
                continue
            for chunk in cut:
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
        skipped=tuple(skipped),
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


def manifest_corpus(manifest: dict[str, Any]) -> tuple[Path, ...]:
    """The corpus paths an index's manifest names (made absolute when built: see ``make_manifest``)."""
    return tuple(Path(p) for p in manifest["corpus"]["paths"])


def configured_corpus(settings: Settings) -> tuple[Path, ...]:
    """The corpus to index: the configured one, else the one the index in ``settings.index_dir`` was built
    from, else seeds/ when that folder holds no index at all.

    Raises RagError naming `rag ingest PATHS` when the folder holds an index whose manifest cannot say
    which articles it was built from: guessing would replace the user's index with another corpus.
    """
    if settings.corpus:
        return settings.corpus
    try:
        with pinned_generation(settings.index_dir) as generation:
            manifest, damage = _read_manifest(settings.index_dir, generation), None
    except IndexMissingError:
        manifest, damage = None, None
    except IndexDamagedError as exc:
        manifest, damage = None, exc
    return _corpus_for(settings, manifest, damage)


def _corpus_for(settings: Settings, manifest: dict[str, Any] | None, damage: IndexDamagedError | None) -> tuple[Path, ...]:
    if settings.corpus:
        return settings.corpus
    if manifest is not None:
        return manifest_corpus(manifest)
    if damage is not None:
        raise RagError(f"{damage}: it does not say which articles it was built from; run `rag ingest PATHS` "
                       "with your article folders or files to rebuild it")
    return (Path("seeds"),)


def _inspect(index_dir: Path) -> tuple[Index | None, dict[str, Any] | None, IndexDamagedError | None]:
    """(the index, its manifest, why it is unusable): (None, None, None) when the folder holds no index."""
    try:
        index = Index.load(index_dir)
    except IndexMissingError:
        return None, None, None
    except IndexDamagedError as damage:
        return None, damage.manifest, damage
    return index, index.manifest, None


def ingest(
    settings: Settings, embedder: Embedder | None = None, progress: bool | None = None,
    extra: Iterable[Document] = (),
) -> tuple[Index, BuildReport]:
    """Builds or updates the index for the configured corpus (see ``configured_corpus``) and makes it live.

    ``extra`` documents are indexed with the corpus (replacing any with the same id) without being read
    from it: an upload being added, whose file moves into the corpus once the index holding it is live.
    A damaged index is rebuilt from the corpus its manifest names; one that cannot name it is an error
    naming `rag ingest PATHS`.
    """
    from rag.search.embedding import default_embedder

    with writer_lock(settings.index_dir, settings.lock_timeout):
        previous, manifest, damage = _inspect(settings.index_dir)
        paths = _corpus_for(settings, manifest, damage)
        if damage is not None:
            log.warning("%s: rebuilding it from %s", damage, ", ".join(map(str, paths)))
        documents = load_corpus(paths, progress=progress)  # first: its progress bar is the first thing shown
        if extra:
            documents = list({**{d.id: d for d in documents}, **{d.id: d for d in extra}}.values())
        return _build_and_save(documents, embedder or default_embedder(), settings, previous, paths, progress)


def _build_and_save(documents: list[Document], embedder: Embedder, settings: Settings, previous: Index | None,
                    paths: Iterable[Path], progress: bool | None) -> tuple[Index, BuildReport]:
    """``build_index`` then ``Index.save``; the caller holds the writer lock."""
    index, report = build_index(documents, embedder, settings, previous, paths, progress)
    path = index.save(settings.index_dir)
    return index, replace(report, path=path)


def open_index(settings: Settings, embedder: Embedder | None = None, rebuild: bool = True, progress: bool | None = None) -> Index:
    """The index for the configured corpus, rebuilt (incrementally) when it is missing, stale or damaged.

    A damaged index is rebuilt only from its own corpus (its manifest) or the configured one, never
    from a default. With ``rebuild=False`` anything but a usable index raises an error naming the fix.
    """
    from rag.search.embedding import default_embedder

    embedder = embedder or default_embedder()
    index, manifest, damage = _inspect(settings.index_dir)
    documents = None
    if damage is not None:
        fix = "rag ingest" if settings.corpus or manifest is not None else "rag ingest PATHS"
        if not rebuild:
            raise IndexDamagedError(f"{damage}: run `{fix}` to rebuild it", manifest)
        paths = _corpus_for(settings, manifest, damage)
        missing = [p for p in paths if not p.exists()]
        if missing:
            raise RagError(f"{damage}, and its articles are gone ({', '.join(map(str, missing))}): "
                           "run `rag ingest PATHS` with your article folders or files to rebuild it")
        log.warning("%s: rebuilding it from %s", damage, ", ".join(map(str, paths)))
    elif index is not None:
        paths = settings.corpus or manifest_corpus(index.manifest)
        documents = load_corpus(paths) if all(p.exists() for p in paths) else None
        reason = mismatch(index.manifest, embedder, settings, documents)
        if reason is None:
            return index
        if not rebuild or documents is None:
            raise IndexMismatchError(
                f"the index in {settings.index_dir} does not fit: {reason}; run `rag ingest` to rebuild it"
            )
        log.warning("the index in %s is stale (%s): updating it", settings.index_dir, reason)
    else:
        paths = _corpus_for(settings, None, None)
        if not rebuild or not all(p.exists() for p in paths):
            raise IndexMissingError(f"no index in {settings.index_dir}: run `rag ingest PATHS` to build one")
    with writer_lock(settings.index_dir, settings.lock_timeout):
        if documents is None:
            documents = load_corpus(paths, progress=progress)
        index, report = _build_and_save(documents, embedder, replace(settings, corpus=paths), index, paths, progress)
    log.warning("index updated: %s", report.summary())
    return index
