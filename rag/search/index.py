"""Opening and updating the index of a corpus: what the CLI and the app call.

``open_index`` gives the index for the configured corpus, built or updated (incrementally) when it is
missing, stale or damaged; ``ingest`` rebuilds it on request. Whether the corpus changed is decided
from the article files' paths, sizes and modification times first (recorded with each generation),
hashing only files whose size or time changed, and reading the corpus only when one did.

The index is never rebuilt from articles it was not built from: a damaged index is rebuilt only from
the corpus its own manifest names (or the configured one); without a readable manifest the fix is
`rag ingest PATHS`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rag.errors import IndexDamagedError, IndexMismatchError, IndexMissingError, RagError
from rag.ingest.reading import corpus_fingerprint, corpus_unchanged, read_corpus
from rag.ingest.stamps import FileStamp
from rag.records import Document
from rag.search.analysis_store import AnalysisArtefact
from rag.search.build import CORPUS_CHANGED, BuildReport, build_index, mismatch
from rag.search.embedding import Embedder, default_embedder
from rag.search.engine import BuildEngine, LocalEngine
from rag.search.generations import remove_resume_folder, resume_folder, writer_lock
from rag.search.milvus_artefact import MilvusArtefact
from rag.search.store import Artefact, Index, read_manifest
from rag.settings import Settings

log = logging.getLogger(__name__)

# What every index holds beyond chunks, vectors and BM25 unless a caller asks otherwise: the answer
# reader's stored sentence analysis.
STANDARD_ARTEFACTS: tuple[Artefact, ...] = (AnalysisArtefact(),)


def artefacts_for(settings: Settings) -> tuple[Artefact, ...]:
    """The standard artefacts, and the Milvus store's when the settings choose it."""
    if settings.store.kind == "milvus":
        return (*STANDARD_ARTEFACTS, MilvusArtefact(settings.store, settings.approximate_above))
    return STANDARD_ARTEFACTS


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
        manifest, damage = read_manifest(settings.index_dir), None
    except IndexMissingError:
        manifest, damage = None, None
    except IndexDamagedError as exc:
        manifest, damage = None, exc
    return _corpus_for(settings, manifest, damage)


def _corpus_for(
    settings: Settings, manifest: dict[str, Any] | None, damage: IndexDamagedError | None
) -> tuple[Path, ...]:
    if settings.corpus:
        return settings.corpus
    if manifest is not None:
        return manifest_corpus(manifest)
    if damage is not None:
        raise RagError(
            f"{damage}: it does not say which articles it was built from; run `rag ingest PATHS` "
            "with your article folders or files to rebuild it"
        )
    return (Path("seeds"),)


def _inspect(
    index_dir: Path, artefacts: Sequence[Artefact]
) -> tuple[Index | None, dict[str, Any] | None, IndexDamagedError | None]:
    """(the index, its manifest, why it is unusable): (None, None, None) when the folder holds no index."""
    try:
        index = Index.load(index_dir, artefacts)
    except IndexMissingError:
        return None, None, None
    except IndexDamagedError as damage:
        return None, damage.manifest, damage
    return index, index.manifest, None


def ingest(
    settings: Settings,
    embedder: Embedder | None = None,
    progress: bool | None = None,
    extra: Iterable[Document] = (),
    artefacts: Sequence[Artefact] | None = None,
    engine: BuildEngine | None = None,
) -> tuple[Index, BuildReport]:
    """Builds or updates the index for the configured corpus (see ``configured_corpus``) and makes it live.

    ``extra`` documents are indexed with the corpus (replacing any with the same id) without being read
    from it: an upload being added, whose file moves into the corpus once the index holding it is live.
    ``artefacts`` are built and stored with the new generation. A damaged index is rebuilt from the
    corpus its manifest names; one that cannot name it is an error naming `rag ingest PATHS`.
    An ingest that is interrupted resumes from the articles it had embedded (``rag.search.journal``).
    ``engine`` reads, cuts and embeds (``rag.search.engine``: here by default, or on a Ray cluster).
    """
    artefacts = artefacts_for(settings) if artefacts is None else artefacts
    engine = engine or LocalEngine()
    with writer_lock(settings.index_dir, settings.lock_timeout):
        previous, manifest, damage = _inspect(settings.index_dir, artefacts)
        paths = _corpus_for(settings, manifest, damage)
        if damage is not None:
            log.warning("%s: rebuilding it from %s", damage, ", ".join(map(str, paths)))
        documents, stamps = engine.read(paths, progress)  # first: its progress bar is the first thing shown
        if extra:
            documents = list({**{d.id: d for d in documents}, **{d.id: d for d in extra}}.values())
        return _build_and_save(
            documents, embedder or default_embedder(), settings, previous, paths, progress, artefacts, stamps, engine
        )


def _build_and_save(
    documents: list[Document],
    embedder: Embedder,
    settings: Settings,
    previous: Index | None,
    paths: Iterable[Path],
    progress: bool | None,
    artefacts: Sequence[Artefact],
    stamps: Sequence[FileStamp],
    engine: BuildEngine | None = None,
) -> tuple[Index, BuildReport]:
    """``build_index`` then ``Index.save``; the caller holds the writer lock.

    The resume journal outlives a build that fails or is interrupted, and goes once the index is live.
    """
    resume = resume_folder(settings.index_dir)
    index, report = build_index(
        documents, embedder, settings, previous, paths, progress, artefacts, stamps, resume, engine
    )
    path = index.save(settings.index_dir, artefacts)
    remove_resume_folder(settings.index_dir)
    return index, replace(report, path=path)


def open_index(
    settings: Settings,
    embedder: Embedder | None = None,
    rebuild: bool = True,
    progress: bool | None = None,
    artefacts: Sequence[Artefact] | None = None,
) -> Index:
    """The index for the configured corpus, rebuilt (incrementally) when it is missing, stale or damaged.

    A damaged index is rebuilt only from its own corpus (its manifest) or the configured one, never
    from a default. With ``rebuild=False`` anything but a usable index raises an error naming the fix.
    An index lacking one of ``artefacts`` (by default ``artefacts_for(settings)``) is stale.
    """
    artefacts = artefacts_for(settings) if artefacts is None else artefacts
    embedder = embedder or default_embedder()
    index, manifest, damage = _inspect(settings.index_dir, artefacts)
    documents: list[Document] | None = None
    stamps: list[FileStamp] = []
    if damage is not None:
        fix = "rag ingest" if settings.corpus or manifest is not None else "rag ingest PATHS"
        if not rebuild:
            raise IndexDamagedError(f"{damage}: run `{fix}` to rebuild it", manifest)
        paths = _corpus_for(settings, manifest, damage)
        missing = [p for p in paths if not p.exists()]
        if missing:
            raise RagError(
                f"{damage}, and its articles are gone ({', '.join(map(str, missing))}): "
                "run `rag ingest PATHS` with your article folders or files to rebuild it"
            )
        log.warning("%s: rebuilding it from %s", damage, ", ".join(map(str, paths)))
    elif index is not None:
        paths = settings.corpus or manifest_corpus(index.manifest)
        present = all(p.exists() for p in paths)  # articles gone: answer from the index as it is
        reason = mismatch(index.manifest, embedder, settings, None, artefacts)
        if reason is None and present:
            documents, stamps = _changed_corpus(index, paths)
            if documents is not None:
                reason = CORPUS_CHANGED
        if reason is None:
            return index
        if not rebuild or not present:
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
            documents, stamps = read_corpus(paths, progress=progress)
        index, report = _build_and_save(
            documents, embedder, replace(settings, corpus=paths), index, paths, progress, artefacts, stamps
        )
    log.warning("index updated: %s", report.summary())
    return index


def _changed_corpus(index: Index, paths: Sequence[Path]) -> tuple[list[Document] | None, list[FileStamp]]:
    """(the corpus's documents and file stamps, when it differs from the index's; else None and []).

    Cheap when nothing changed: the files' stamps recorded with the index decide without reading
    them. Otherwise the corpus is read and compared by content, and when it turns out the same (files
    touched, an upload moved into the corpus) the new stamps are recorded for next time.
    """
    if index.corpus_files is not None and corpus_unchanged(paths, index.corpus_files):
        return None, []
    documents, stamps = read_corpus(paths)
    if index.manifest["corpus"]["fingerprint"] != corpus_fingerprint(documents):
        return documents, stamps
    index.remember_corpus_files(stamps)
    return None, []
