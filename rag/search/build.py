"""Building an index from documents: chunking, embedding (reusing the vectors of unchanged articles),
the search structures, extra artefacts and the manifest that describes the result."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import RagError
from rag.ingest import analysis
from rag.ingest.parallel import Plan, WordPieceLimit
from rag.ingest.reading import corpus_fingerprint
from rag.ingest.stamps import FileStamp
from rag.records import Chunk, Document
from rag.search.backend import LOCAL_STORE, store_name, store_record
from rag.search.engine import BuildEngine, LocalEngine
from rag.search.indexing import article_bar
from rag.search.journal import Journal
from rag.search.store import FORMAT_VERSION, Artefact, Index
from rag.search.structures import IVF_NPROBE, PQ_BITS, faiss_kind, ivf_lists, pq_subquantisers
from rag.settings import TOKENIZER_NAME, Settings

if TYPE_CHECKING:
    from rag.search.embedding import Embedder

log = logging.getLogger(__name__)

CORPUS_CHANGED = "the corpus has changed since it was built"


def _versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for package in ("faiss-cpu", "sentence-transformers", "torch", "onnxruntime", "bm25s", "tiktoken", "spacy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


def make_manifest(
    documents: Iterable[Document],
    n_chunks: int,
    embedder: Embedder,
    settings: Settings,
    corpus_paths: Iterable[Path],
    kind: str,
    store_analysis: bool = False,
) -> dict[str, Any]:
    """The manifest recorded with an index; ``mismatch`` compares against it."""
    documents = list(documents)
    return {
        "format": FORMAT_VERSION,
        "embedder": embedder.describe(),
        "tokenizer": TOKENIZER_NAME,
        "chunking": settings.chunking.to_dict(),
        "sentences": settings.analysis.to_dict(),
        "corpus": {
            # Absolute: a relative path would name another folder when read from elsewhere.
            "paths": [os.path.abspath(p) for p in corpus_paths],
            "fingerprint": corpus_fingerprint(documents),
            "documents": len(documents),
        },
        "chunks": n_chunks,
        "faiss": _faiss_record(kind, n_chunks, embedder.dimension),
        "store": store_record(settings.store),
        "versions": _versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    } | ({"analysis": analysis.describe(settings.analysis)} if store_analysis else {})


def _faiss_record(kind: str, n_chunks: int, dimension: int) -> dict[str, Any]:
    """The manifest's description of the FAISS index (``structures.faiss_kind``)."""
    if kind == "flat":
        return {"type": "flat", "metric": "inner_product"}
    record = {"type": kind, "metric": "inner_product", "lists": ivf_lists(n_chunks), "nprobe": IVF_NPROBE}
    if kind == "ivfpq":
        record |= {"subquantisers": pq_subquantisers(dimension), "bits": PQ_BITS}
    return record


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
    resumed: int = 0  # articles an interrupted build had already embedded

    def summary(self) -> str:
        skipped = f", skipped {len(self.skipped)} (see the warnings)" if self.skipped else ""
        resumed = f", {self.resumed} resumed" if self.resumed else ""
        return (
            f"{self.documents} articles, {self.chunks} chunks ({self.embedded_chunks} embedded, "
            f"{self.reused_documents} articles reused{resumed}); added {len(self.added)}, changed {len(self.changed)}, "
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
    resume: Path | None = None,
    engine: BuildEngine | None = None,
) -> tuple[Index, BuildReport]:
    """Chunks, analyses and embeds ``documents``, reusing articles unchanged since ``previous``.

    Work goes through a resume journal in ``resume`` (``generations.resume_folder``; a temporary folder
    when None): articles it already holds from an interrupted build are not done again. The journal
    stays until the caller has committed the index (``Journal.remove``). Each of ``artefacts`` is then
    built from the new index (``Index.artefacts[name]``); ``corpus_files`` are the stamps of the files the
    documents were read from, kept so that opening can skip reading them. ``engine`` cuts and embeds the
    articles (``rag.search.engine``; default: here).
    """
    engine = engine or LocalEngine()
    started = time.perf_counter()
    if not documents:
        raise RagError("the corpus has no readable articles: add .txt, .md, .html or .jsonl files")
    store_analysis = any(getattr(a, "needs_parses", False) for a in artefacts)
    reusable = previous is not None and _same_vectors(previous.manifest, embedder, settings, store_analysis)
    if previous is not None and not reusable:  # every article is embedded again: say why
        reason = _differs(previous.manifest, embedder, settings) or "its sentence analysis was made differently"
        log.warning("nothing of the previous index can be reused (%s): every article is indexed again", reason)
    old_docs = previous.documents if previous is not None else {}
    old_rows: dict[str, list[int]] = {}
    if reusable and previous is not None:
        for position, chunk in enumerate(previous.chunks):
            old_rows.setdefault(chunk.doc_id, []).append(position)

    def reuses(doc: Document) -> bool:
        old = old_docs.get(doc.id)
        return reusable and old is not None and old.content_hash == doc.content_hash and doc.id in old_rows

    plan = Plan(
        settings.chunking,
        settings.analysis,
        store_analysis,
        WordPieceLimit(str(embedder.path / "tokenizer.json"), embedder.max_tokens),
    )
    key = {
        "embedder": embedder.describe(),
        "chunking": settings.chunking.to_dict(),
        "analysis": settings.analysis.to_dict(),
        "store_analysis": store_analysis,
    }
    folder = resume or Path(tempfile.mkdtemp(prefix="rag-build-"))
    journal = Journal(folder, key, embedder.dimension)
    with contextlib.closing(journal):
        todo = [d for d in documents if not reuses(d) and journal.done(d.id, d.content_hash) is None]
        with article_bar(len(documents), len(documents) - len(todo), progress) as bar:
            engine.index(todo, plan, embedder, journal, bar)
        old_rows = {d.id: old_rows[d.id] for d in documents if reuses(d)}
        index = _assemble(documents, embedder, settings, previous, old_rows, journal, corpus_paths, store_analysis)
        index.manifest["build"] = engine.describe()  # how, not what: no staleness check reads it
        index.faiss, index.bm25  # noqa: B018  (build both now, inside the timed build)
        for artefact in artefacts:
            index.artefacts[artefact.name] = artefact.build(index, previous)
    if resume is None:  # a journal of its own: gone with the index (its analyses are read when saving)
        weakref.finalize(index, shutil.rmtree, folder, True)
    index.corpus_files = tuple(corpus_files) if corpus_files is not None else None
    new_ids = {d.id for d in documents}
    skipped = [d.id for d in documents if (e := journal.done(d.id, d.content_hash)) is not None and e.error]
    for doc_id in skipped:
        # Kept without passages, so the corpus still matches the index; the next build retries it.
        log.warning(
            "skipped %s (%s): it could not be cut into passages: %s",
            doc_id,
            index.documents[doc_id].source,
            journal.entries[doc_id].error,
        )
    report = BuildReport(
        documents=len(documents),
        chunks=len(index.chunks),
        embedded_chunks=sum(len(journal.entries[d.id].spans) for d in todo if d.id in journal.entries),
        reused_documents=len(old_rows),
        added=tuple(sorted(new_ids - set(old_docs))),
        changed=tuple(
            sorted(d.id for d in documents if d.id in old_docs and old_docs[d.id].content_hash != d.content_hash)
        ),
        removed=tuple(sorted(set(old_docs) - new_ids)),
        seconds=time.perf_counter() - started,
        skipped=tuple(skipped),
        resumed=len(documents) - len(todo) - len(old_rows),
    )
    return index, report


def _assemble(
    documents: list[Document],
    embedder: Embedder,
    settings: Settings,
    previous: Index | None,
    old_rows: dict[str, list[int]],
    journal: Journal,
    corpus_paths: Iterable[Path],
    store_analysis: bool,
) -> Index:
    """The index of ``documents`` in corpus order: reused articles from ``previous`` (``old_rows`` names
    their chunk positions), the others from the journal. Vectors are copied once into the final matrix."""
    fresh = journal.vectors()
    total = sum(len(old_rows[d.id]) if d.id in old_rows else len(journal.entries[d.id].spans) for d in documents)
    matrix = np.empty((total, embedder.dimension), dtype=np.float32)
    chunks: list[Chunk] = []
    records: dict[str, tuple[Path, int, int]] = {}
    for doc in documents:
        row = len(chunks)
        if doc.id in old_rows and previous is not None:
            positions = old_rows[doc.id]
            chunks += [previous.chunks[p] for p in positions]
            matrix[row : len(chunks)] = previous.vectors[positions]
            continue
        entry = journal.entries[doc.id]
        chunks += [Chunk(doc.id, n, s, e, doc.text[s:e]) for n, (s, e) in enumerate(entry.spans)]
        matrix[row : len(chunks)] = fresh[entry.first_row : entry.first_row + len(entry.spans)]
        if entry.record_length:
            records[doc.id] = (journal.records_path, entry.record_offset, entry.record_length)
    kind = faiss_kind(len(chunks), settings.approximate_above, settings.compress_above)
    manifest = make_manifest(documents, len(chunks), embedder, settings, corpus_paths, kind, store_analysis)
    index = Index({d.id: d for d in documents}, chunks, matrix, manifest)
    index.new_analyses = records
    return index


def _same_vectors(manifest: dict[str, Any], embedder: Embedder, settings: Settings, store_analysis: bool) -> bool:
    """Whether the chunks, vectors (and stored analyses) of an index built under ``manifest`` can be reused."""
    return _differs(manifest, embedder, settings) is None and (
        not store_analysis or manifest.get("analysis") == analysis.describe(settings.analysis)
    )


def _differs(manifest: dict[str, Any], embedder: Embedder, settings: Settings) -> str | None:
    """What in ``manifest`` makes its chunks or vectors differ from what the current settings make."""
    built = manifest.get("embedder", {})
    if built.get("weights_sha256") != embedder.weights_sha256:
        return "it was built with other embedding weights"
    if built.get("passages", "torch") != embedder.passages:
        return f"its passages were embedded by {built.get('passages', 'torch')}, not {embedder.passages}"
    if manifest.get("tokenizer") != TOKENIZER_NAME:
        return f"it was built with the tokenizer {manifest.get('tokenizer')}"
    if manifest.get("chunking") != settings.chunking.to_dict():
        return f"it was built with chunk settings {manifest.get('chunking')}, not {settings.chunking.to_dict()}"
    sentences = manifest.get("sentences", {"sentence_boundaries": "parser"})
    if sentences != settings.analysis.to_dict():
        return f"its sentences came from {sentences}, not {settings.analysis.to_dict()}"
    return None


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
    differs = _differs(manifest, embedder, settings)
    if differs:
        return differs
    if any(getattr(a, "needs_parses", False) for a in artefacts) and manifest.get("analysis") != analysis.describe(
        settings.analysis
    ):
        return f"its sentence analysis is {manifest.get('analysis')}, not {analysis.describe(settings.analysis)}"
    built = manifest.get("store", LOCAL_STORE)  # indexes from before the choice of store were local
    if built != store_record(settings.store):
        return f"it was built for the store {store_name(built)}, not {store_name(store_record(settings.store))}"
    lacking = [a.name for a in artefacts if a.name not in manifest.get("artefacts", ())]
    if lacking:
        return f"it lacks {', '.join(lacking)}"
    if documents is not None and manifest["corpus"]["fingerprint"] != corpus_fingerprint(documents):
        return CORPUS_CHANGED
    return None
