"""Building an index from documents: chunking, embedding (reusing the vectors of unchanged articles),
the search structures, extra artefacts and the manifest that describes the result."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import RagError
from rag.ingest.chunking import chunk_document
from rag.ingest.reading import corpus_fingerprint, progress_bar
from rag.ingest.stamps import FileStamp
from rag.records import Chunk, Document
from rag.search.store import FORMAT_VERSION, Artefact, Index
from rag.search.structures import IVF_NPROBE, ivf_lists
from rag.settings import TOKENIZER_NAME, ChunkSettings, Settings
from rag.text import first_line

if TYPE_CHECKING:
    from rag.search.embedding import Embedder

log = logging.getLogger(__name__)

CORPUS_CHANGED = "the corpus has changed since it was built"


def _versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for package in ("faiss-cpu", "sentence-transformers", "torch", "bm25s", "tiktoken", "spacy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


def make_manifest(
    documents: Iterable[Document],
    n_chunks: int,
    embedder: Embedder,
    chunking: ChunkSettings,
    corpus_paths: Iterable[Path],
    approximate: bool,
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
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
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
    artefacts: Sequence[Artefact] = (),
    corpus_files: Sequence[FileStamp] | None = None,
) -> tuple[Index, BuildReport]:
    """Chunks and embeds ``documents``, reusing the vectors of articles unchanged since ``previous``.

    Each of ``artefacts`` is then built from the new index (``Index.artefacts[name]``); ``corpus_files``
    are the stamps of the files the documents were read from, kept so that opening can skip reading them.
    """
    started = time.perf_counter()
    if not documents:
        raise RagError("the corpus has no readable articles: add .txt, .md, .html or .jsonl files")
    reusable = previous is not None and _same_vectors(previous.manifest, embedder, settings.chunking)
    old_docs = previous.documents if previous is not None else {}
    old_chunks: dict[str, list[tuple[Chunk, np.ndarray]]] = {}
    if reusable and previous is not None:
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
            except Exception as exc:
                # Kept without passages, so the corpus still matches the index; the next build retries it.
                log.warning(
                    "skipped %s (%s): it could not be cut into passages: %s", doc.id, doc.source, first_line(exc)
                )
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
    rows = [v for v in vectors if v is not None]
    assert len(rows) == len(vectors), "every chunk has its vector by now"
    matrix = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, embedder.dimension), np.float32)

    approximate = len(chunks) > settings.approximate_above
    manifest = make_manifest(documents, len(chunks), embedder, settings.chunking, corpus_paths, approximate)
    index = Index({d.id: d for d in documents}, chunks, matrix, manifest)
    index.faiss, index.bm25  # noqa: B018  (build both now, inside the timed build)
    for artefact in artefacts:
        index.artefacts[artefact.name] = artefact.build(index, previous)
    index.corpus_files = tuple(corpus_files) if corpus_files is not None else None
    new_ids = {d.id for d in documents}
    report = BuildReport(
        documents=len(documents),
        chunks=len(chunks),
        embedded_chunks=len(to_embed),
        reused_documents=reused,
        added=tuple(sorted(new_ids - set(old_docs))),
        changed=tuple(
            sorted(d.id for d in documents if d.id in old_docs and old_docs[d.id].content_hash != d.content_hash)
        ),
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


def mismatch(
    manifest: dict[str, Any],
    embedder: Embedder,
    settings: Settings,
    documents: list[Document] | None,
    artefacts: Sequence[Artefact] = (),
) -> str | None:
    """Why an index built under ``manifest`` does not fit the current settings and corpus, or None.

    ``documents`` None: the corpus is not compared (see ``rag.search.index.open_index``).
    """
    if manifest.get("embedder", {}).get("weights_sha256") != embedder.weights_sha256:
        return "it was built with other embedding weights"
    if manifest.get("tokenizer") != TOKENIZER_NAME:
        return f"it was built with the tokenizer {manifest.get('tokenizer')}"
    if manifest.get("chunking") != settings.chunking.to_dict():
        return f"it was built with chunk settings {manifest.get('chunking')}, not {settings.chunking.to_dict()}"
    lacking = [a.name for a in artefacts if a.name not in manifest.get("artefacts", ())]
    if lacking:
        return f"it lacks {', '.join(lacking)}"
    if documents is not None and manifest["corpus"]["fingerprint"] != corpus_fingerprint(documents):
        return CORPUS_CHANGED
    return None
