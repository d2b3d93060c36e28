"""The stages of `rag ingest --ray`, run in the Ray cluster's worker processes: reading article files,
cutting articles into chunks (with the stored analysis), embedding the chunks.

Each stage is the local build's own function (``reading.read_file``, ``parallel.cut_articles``, the
embedder's passage encoder) applied to a batch of rows; rows carry plain columns (strings, bytes, JSON)
because Ray Data moves them as Arrow tables, and the driver rebuilds the records
(``rag.search.ray_ingest``). Nothing here imports Ray: the stages are ordinary callables.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import RagError
from rag.ingest.parallel import Plan, WordPieceLimit, cut_articles
from rag.ingest.reading import FileRead, read_file
from rag.ingest.stamps import FileStamp
from rag.records import Document
from rag.search import bulk_encoder
from rag.search.embedding import Embedder, model_path

Batch = dict[str, Any]  # a Ray Data batch: column name -> values


class _Collected(logging.Handler):
    """The messages of warnings logged while it is attached."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _warnings() -> Iterator[list[str]]:
    """Collects what the reader warns about (skipped .jsonl lines), to be logged by the driver, not lost
    in a worker's log."""
    handler = _Collected()
    logger = logging.getLogger("rag")
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def read_files(batch: Batch) -> Batch:
    """Reads files: ``number`` (corpus order), ``name`` (as the user gave it), ``location`` (absolute)."""
    reads = []
    for name, location in zip(batch["name"], batch["location"]):
        with _warnings() as warnings:
            read = read_file(Path(str(name)), Path(str(location)))
        reads.append(
            json.dumps(
                {
                    "documents": [d.to_dict() for d in read.documents],
                    "stamp": read.stamp.to_list() if read.stamp else None,
                    "warnings": [*warnings, *([read.problem] if read.problem else [])],
                }
            )
        )
    return {"number": list(batch["number"]), "read": reads}


def file_read(row: str) -> tuple[FileRead, list[str]]:
    """A ``read_files`` result back as the reader's record, with the warnings to log (problem included)."""
    data = json.loads(row)
    stamp = FileStamp.from_list(data["stamp"]) if data["stamp"] else None
    return FileRead([Document(**d) for d in data["documents"]], stamp), data["warnings"]


@lru_cache(maxsize=4)
def _here(plan: Plan) -> Plan:
    """``plan`` with the embedder's word-piece limit read from this node's copy of the model."""
    if plan.fits is None:
        return plan
    return replace(plan, fits=WordPieceLimit(str(model_path() / "tokenizer.json"), plan.fits.max_tokens))


def cut_batch(batch: Batch, plan: Plan) -> Batch:
    """Chunk spans (JSON), packed analysis (bytes, empty when none) and error of each article (doc_id, text)."""
    cuts = cut_articles([(str(i), str(t)) for i, t in zip(batch["doc_id"], batch["text"])], _here(plan))
    return {
        "doc_id": [c.doc_id for c in cuts],
        "text": list(batch["text"]),
        "spans": [json.dumps(c.spans) for c in cuts],
        "record": [c.record or b"" for c in cuts],
        "error": [c.error or "" for c in cuts],
    }


class PassageEncoder:
    """A Ray Data actor: embeds the chunks of a batch of cut articles with the product's passage encoder.

    Rows leave without their text; ``vectors`` holds each article's rows as float32 bytes.
    """

    def __init__(self, passages: str, threads: int, gpu: bool):
        self.embedder = Embedder(passages=passages)  # checks the weights' hash, as the driver's did
        self.threads = threads
        self.encode = self._encoder(gpu)

    def _encoder(self, gpu: bool):
        if not gpu:
            return lambda texts: self.embedder.encode_passages(texts, threads=self.threads)
        if self.embedder.passages == "torch":
            import torch

            if not torch.cuda.is_available():
                raise RagError(
                    "a GPU was given to the embedding actor, but this node's torch has no CUDA: "
                    "install a CUDA build of torch on the GPU nodes"
                )
            self.embedder.model.to("cuda")
            return lambda texts: self.embedder.encode_with_model(texts, progress=False)
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise RagError(
                "a GPU was given to the embedding actor, but this node's onnxruntime has no CUDA: "
                "pip install onnxruntime-gpu on the GPU nodes"
            )
        precision = self.embedder.passages.removeprefix("onnx-")
        if precision == "int8":  # one text per call (batch-independent vectors) would leave a GPU idle
            raise RagError(
                "int8 passage vectors are a CPU path: set RAG_PASSAGE_ENCODER=onnx-fp32 to embed on the "
                "cluster's GPUs (the whole index then uses float32 passage vectors)"
            )
        encoder = bulk_encoder.load(
            self.embedder, precision, self.threads, ("CUDAExecutionProvider", "CPUExecutionProvider")
        )  # load compares its vectors with the CPU float32 graph's before it is used
        return encoder.encode

    def __call__(self, batch: Batch) -> Batch:
        spans = [json.loads(s) for s in batch["spans"]]
        texts = [str(text)[s:e] for text, article in zip(batch["text"], spans) for s, e in article]
        vectors = np.asarray(self.encode(texts), dtype=np.float32).reshape(len(texts), -1)
        rows, start = [], 0
        for article in spans:
            rows.append(vectors[start : start + len(article)].tobytes())
            start += len(article)
        return {key: list(batch[key]) for key in ("doc_id", "spans", "record", "error")} | {"vectors": rows}
