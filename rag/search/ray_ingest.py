"""`rag ingest --ray`: reading, cutting and embedding articles as a Ray Data pipeline on a Ray cluster.

Why: the local build uses one machine's cores; a corpus of millions of articles wants many machines or
GPUs. The stages are the local build's own functions (``rag.search.ray_stages``), so the index is the
same: files are read and normalised by Ray tasks, articles are cut and parsed (one spaCy pass: chunks
and the stored analysis) by Ray tasks, and chunks are embedded by a pool of actors, each holding the
passage encoder (one GPU each when the cluster has GPUs). This process, the driver, keeps what the index
needs whole anyway: the documents, and the cut articles and vectors streaming back into the resume
journal, from which the usual build assembles, saves and swaps in the generation.

Ray is optional (``pip install 'rag-news[ray]'``) and imported only here, inside functions. Every node
must run the same rag-news and read the corpus at the same absolute paths (a shared file system).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import RagError
from rag.ingest.files import iter_files
from rag.ingest.parallel import Plan
from rag.ingest.reading import progress_bar, unique_documents
from rag.ingest.stamps import FileStamp
from rag.records import Document
from rag.search.journal import Journal
from rag.search.ray_stages import PassageEncoder, cut_batch, file_read, read_files
from rag.text import clip, first_line

if TYPE_CHECKING:
    from rag.search.embedding import Embedder

log = logging.getLogger(__name__)

RAY_MISSING = "Ray is not installed: pip install 'rag-news[ray]' (or 'ray[data]>=2.40,<3')"
DEFAULT_BATCH_SIZE = 32  # articles per embedding call: ~300 chunks, near the local build's window of 384
CUT_BATCH = 8  # articles per parsing task: a few news articles, like the local build's tasks
CONNECT_SECONDS = 5.0  # ray.init retries an unreachable cluster for minutes: a plain TCP probe first
_RAG_ERROR_LINE = re.compile(r"^rag\.errors\.RagError: (.+)$", re.MULTILINE)
_TERMINAL_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class RayOptions:
    """``address``: "auto" (``ray.init()``: $RAY_ADDRESS, a cluster started on this machine, else a new local
    one) or a cluster's HOST:PORT or ray://HOST:PORT; ``workers``: embedding actors (None: one per GPU, else
    one per two CPUs); ``batch_size``: articles per embedding call."""

    address: str = "auto"
    batch_size: int = DEFAULT_BATCH_SIZE
    workers: int | None = None


def _import_ray():
    try:
        import ray
        import ray.data  # the extra's part: with a bare `pip install ray` this fails (no pyarrow)
    except ImportError:
        raise RagError(RAY_MISSING) from None
    return ray


def _probe(address: str) -> None:
    """RagError naming ``address`` when nothing listens there."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RagError(f"--ray {address!r} is not auto, HOST:PORT or ray://HOST:PORT (see `ray status` on the head)")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        raise RagError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}): start one with `ray start --head` "
            "on the head node and give the address it prints, or use --ray auto for one on this machine"
        ) from None


class RayEngine:
    """The ``rag.search.engine.BuildEngine`` of a Ray cluster; ``ray_engine`` connects and disconnects it."""

    def __init__(self, ray: Any, options: RayOptions):
        self.ray = ray
        self.options = options
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        cpus = max(1, int(resources.get("CPU", 1)))
        self.workers = options.workers or self.gpus or max(1, cpus // 2)
        # On CPUs each actor embeds on its share of the cores, and Ray fuses the cutting into the same actors
        # (same resources); GPU actors reserve no CPU, which the cutting tasks take.
        self.threads = 1 if self.gpus else max(1, cpus // self.workers)
        logging.getLogger("ray.data").setLevel(logging.getLogger("ray").level)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the ingest's own bar counts articles
        context.print_on_execution_start = False

    def read(self, paths: Sequence[Path], progress: bool | None) -> tuple[list[Document], list[FileStamp]]:
        """Documents and stamps as ``reading.read_corpus`` gives them, the files read by Ray tasks."""
        files = list(iter_files(paths))
        if not files:
            return [], []
        rows = [{"number": n, "name": str(p), "location": os.path.abspath(p)} for n, p in enumerate(files)]
        dataset = self.ray.data.from_items(rows).map_batches(read_files, batch_size=1)
        done: dict[int, str] = {}
        with progress_bar(len(files), "reading articles", "file", progress) as bar:
            for batch in _batches(dataset):
                done.update(zip(map(int, batch["number"]), map(str, batch["read"])))
                bar.update(len(batch["number"]))
        reads = []
        for number in range(len(files)):
            read, warnings = file_read(done[number])
            for warning in warnings:
                log.warning("%s", warning)
            reads.append(read)
        return unique_documents(reads)

    def index(self, documents: Sequence[Document], plan: Plan, embedder: Embedder, journal: Journal, bar) -> None:
        """Cuts and embeds ``documents`` on the cluster, appending each finished batch to ``journal``."""
        if not documents:
            return
        hashes = {d.id: d.content_hash for d in documents}
        dataset = (
            self.ray.data.from_items([{"doc_id": d.id, "text": d.text} for d in documents])
            .map_batches(cut_batch, fn_kwargs={"plan": plan}, batch_size=CUT_BATCH, num_cpus=1)
            .map_batches(
                PassageEncoder,
                fn_constructor_kwargs={"passages": embedder.passages, "threads": self.threads, "gpu": self.gpus > 0},
                batch_size=self.options.batch_size,
                compute=self.ray.data.ActorPoolStrategy(size=self.workers),
                num_cpus=0 if self.gpus else 1,
                num_gpus=1 if self.gpus else 0,
            )
        )
        for batch in _batches(dataset):
            articles = [
                (
                    str(doc_id),
                    hashes[str(doc_id)],
                    tuple(map(tuple, json.loads(spans))),
                    bytes(record) or None,
                    error or None,
                )
                for doc_id, spans, record, error in zip(
                    batch["doc_id"], batch["spans"], batch["record"], batch["error"]
                )
            ]
            vectors = [np.frombuffer(bytes(v), dtype=np.float32) for v in batch["vectors"]]
            journal.append(articles, np.concatenate(vectors).reshape(-1, embedder.dimension))
            bar.update(len(articles))

    def describe(self) -> dict[str, Any]:
        return {
            "engine": "ray",
            "ray_version": self.ray.__version__,
            "workers": self.workers,
            "batch_size": self.options.batch_size,
            "gpus_per_worker": 1 if self.gpus else 0,
        }


def _batches(dataset) -> Iterator[dict[str, Any]]:
    """The dataset's batches as they finish; a failure on the cluster as one line (a RagError raised
    there as itself)."""
    try:
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
    except Exception as exc:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, RagError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise RagError(str(cause)) from None
        # An actor that fails while it is created (its encoder refused) reaches here as ActorDiedError,
        # which keeps its cause only as the text of a traceback, coloured for a terminal.
        text = _TERMINAL_COLOUR.sub("", str(exc))
        raised = _RAG_ERROR_LINE.findall(text)
        if raised:
            raise RagError(raised[-1].strip()) from None
        raise RagError(f"the ingest failed on the Ray cluster: {clip(text, 160)}") from None


@contextmanager
def ray_engine(options: RayOptions) -> Iterator[RayEngine]:
    """A ``RayEngine`` on the cluster ``options.address`` names; a Ray already started here (a test's, a
    notebook's) is used as it is and left running, one this call started is shut down after."""
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        address = options.address if options.address != "auto" else os.environ.get("RAY_ADDRESS", "").strip()
        address = address or "auto"
        if address != "auto":
            _probe(address)
        if not log.isEnabledFor(logging.DEBUG):
            # Ray's C++ notices (connection retries, actors' restart policy) only with -v; Ray still says
            # in one line that it read this variable.
            os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
        try:
            ray.init(
                address=None if options.address == "auto" else options.address,
                include_dashboard=False,  # a new local instance needs none (a cluster keeps its own)
                log_to_driver=False,  # the workers' warnings come back as data (ray_stages), errors as exceptions
                # Ray's own notices (token authentication, the executor's progress) only with -v.
                logging_level=logging.DEBUG if log.isEnabledFor(logging.DEBUG) else logging.ERROR,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RagError(
                f"cannot start or join the Ray cluster at {address}: {first_line(exc)} "
                "(`ray status` on the head node shows its address)"
            ) from None
    try:
        yield RayEngine(ray, options)
    finally:
        if started:
            ray.shutdown()
