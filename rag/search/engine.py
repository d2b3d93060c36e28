"""Where a build reads the corpus and cuts and embeds its articles: in this machine's processes
(``LocalEngine``, the default) or on a Ray cluster (``rag.search.ray_ingest.RayEngine``).

Either gives the same documents, chunks, vectors and analyses into the same resume journal; the rest of
the build (assembly, search structures, artefacts, the atomic swap) does not know which ran. The manifest
records which one built an index under ``"build"``, which no staleness check reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rag.ingest.parallel import Plan
from rag.ingest.reading import read_corpus
from rag.ingest.stamps import FileStamp
from rag.records import Document
from rag.search.indexing import index_articles
from rag.search.journal import Journal

if TYPE_CHECKING:
    from rag.search.embedding import Embedder


class BuildEngine(Protocol):
    """Reads a corpus, and cuts, analyses and embeds articles into a journal (``indexing.index_articles``)."""

    def read(self, paths: Sequence[Path], progress: bool | None) -> tuple[list[Document], list[FileStamp]]: ...

    def index(self, documents: Sequence[Document], plan: Plan, embedder: Embedder, journal: Journal, bar) -> None: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LocalEngine:
    """Parsing worker processes and embedding here (``rag.ingest.parallel``, ``rag.search.indexing``)."""

    def read(self, paths: Sequence[Path], progress: bool | None) -> tuple[list[Document], list[FileStamp]]:
        return read_corpus(paths, progress=progress)

    def index(self, documents: Sequence[Document], plan: Plan, embedder: Embedder, journal: Journal, bar) -> None:
        index_articles(documents, plan, embedder, journal, bar)

    def describe(self) -> dict[str, Any]:
        return {"engine": "local"}
