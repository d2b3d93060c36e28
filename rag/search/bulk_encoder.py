"""Embedding passages in bulk with onnxruntime: the query path's float32 graph, or its int8 quantisation.

Why: through sentence-transformers the model spends most of an index build in torch's per-operator
overhead and in padding. onnxruntime runs the same float32 graph (``rag.search.query_encoder`` exports
and verifies it) faster, and batches here are cut from passages sorted by their word-piece count, so a
batch pads only to its own longest text. The int8 graph is ``onnxruntime.quantization.quantize_dynamic``
applied to that float32 graph (MatMul weights per channel); it is derived locally from the hash-checked
weights, never downloaded. Its vectors are compared with the float32 graph's on probe texts before use:
questions are still embedded in float32, so passage vectors must agree with them (``MIN_INT8_AGREEMENT``).

The int8 graph reads one text per call. Dynamic quantisation scales activations by the largest value in
the whole input tensor, so in a batch a passage's vector would depend on its neighbours (and an
incremental build would disagree with a fresh one); alone, it depends on its own words only. One text
at a time pads nothing and measured as fast as sorted batches on two cores (bench/README.md, (g)).
bench/README.md has the speed and retrieval figures that chose the default.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import RagError
from rag.search.query_encoder import ModelSource, OnnxQueryEncoder, cache_dir, cpu_session

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8")
CPU = ("CPUExecutionProvider",)
# Cosine between int8 and float32 passage vectors on the probes; measured 0.989 lowest, 0.995 on average
# over dev-2023 passages, and retrieval held (bench/README.md). Below this the quantised graph is refused.
MIN_INT8_AGREEMENT = 0.98
BATCH_TEXTS = 32
BATCH_TOKENS = 32 * 256  # word pieces in one padded batch: long passages go fewer at a time
_PROBES = (
    "Who signed the sanctions law?",
    "The ministry said on Tuesday that exports of wheat fell 12 percent in 2023, while prices rose to "
    "$5 billion — the highest since the war began in Kyiv. Officials in Ankara declined to comment.",
    "Buffalo Bills safety Damar Hamlin is making a comeback, according to University of Cincinnati "
    "Medical Center physicians, who said he was breathing on his own.",
)


def _quantise(source: Path, target: Path) -> None:
    """Writes the int8 graph of ``source`` to ``target`` atomically (dynamic quantisation of MatMul weights)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    handle, partial = tempfile.mkstemp(prefix=".quantise-", suffix=".onnx", dir=target.parent)
    os.close(handle)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs advice on the root logger, which the CLI would print
    try:
        quantize_dynamic(
            source,
            partial,
            weight_type=QuantType.QInt8,
            per_channel=True,  # one scale per output column: per-tensor scales cost 0.05 of cosine here
            op_types_to_quantize=["MatMul"],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        os.replace(partial, target)
    finally:
        root.setLevel(level)
        if os.path.exists(partial):
            os.unlink(partial)


class OnnxBulkEncoder:
    """Unit vectors for many passages at once, in length-sorted batches, on ``threads`` CPU threads (or the
    first of ``providers`` onnxruntime offers: a Ray ingest's GPU actors ask for CUDA)."""

    def __init__(
        self, source: ModelSource, precision: str = "int8", threads: int | None = None, providers: tuple[str, ...] = CPU
    ):
        from tokenizers import Tokenizer

        if precision not in PRECISIONS:
            raise RagError(f"unknown passage encoder precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
        self.precision = precision
        float32 = OnnxQueryEncoder(source)  # exports the float32 graph once, as the query path does
        path = float32.path
        if precision == "int8":
            path = cache_dir() / f"minilm-{source.weights_sha256[:16]}-int8.onnx"
            if not path.is_file():
                log.info("quantising the passage encoder to %s (once)", path)
                _quantise(float32.path, path)
        self.session: Any = cpu_session(path, threads, providers, lean=True)
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(source.path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(source.max_tokens)  # as sentence-transformers cuts
        self.path = path
        self._float32 = float32

    def agreement(self) -> float:
        """Lowest cosine between this graph's vectors and the float32 query path's on the probe texts."""
        mine = self.encode(list(_PROBES))
        reference = self._float32.encode_batch(list(_PROBES))
        return float(np.min(np.sum(mine * reference, axis=1)))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit vectors (float32, one row per text): masked mean of token states, L2-normalised."""
        vectors = np.zeros((len(texts), self.session.get_outputs()[0].shape[-1] or 384), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(texts) if texts else []
        if self.precision == "int8":  # batch-independent vectors: see the module's docstring
            for i, encoding in enumerate(encodings):
                vectors[i] = self._encode_group([encoding.ids])[0]
            return vectors
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        start = 0
        while start < len(order):
            # The longest text of a sorted run comes last, so the run's padded size is known as it grows.
            end = start + 1
            while (
                end < len(order)
                and end - start < BATCH_TEXTS
                and (end - start + 1) * len(encodings[order[end]].ids) <= BATCH_TOKENS
            ):
                end += 1
            group = order[start:end]
            vectors[group] = self._encode_group([encodings[i].ids for i in group])
            start = end
        return vectors

    def _encode_group(self, rows: list[list[int]]) -> np.ndarray:
        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for row, pieces in enumerate(rows):
            ids[row, : len(pieces)] = pieces
            mask[row, : len(pieces)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        states = self.session.run(None, {k: v for k, v in feeds.items() if k in self.inputs})[0]
        summed = (states * mask[:, :, None]).sum(axis=1)
        means = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        return (means / np.linalg.norm(means, axis=1, keepdims=True)).astype(np.float32)


def load(
    source: ModelSource, precision: str, threads: int | None = None, providers: tuple[str, ...] = CPU
) -> OnnxBulkEncoder:
    """The bulk encoder of ``precision``; RagError when it cannot be built or does not agree with float32."""
    try:
        encoder = OnnxBulkEncoder(source, precision, threads, providers)
        agreement = encoder.agreement()
    except RagError:
        raise
    except Exception as exc:
        raise RagError(
            f"the {precision} passage encoder cannot be built ({type(exc).__name__}: {exc}); "
            "set RAG_PASSAGE_ENCODER=torch to embed with sentence-transformers"
        ) from None
    floor = MIN_INT8_AGREEMENT if precision == "int8" else 0.99999
    if agreement < floor:
        raise RagError(
            f"the {precision} passage encoder disagrees with the model (cosine {agreement:.4f} < {floor}); "
            "set RAG_PASSAGE_ENCODER=torch to embed with sentence-transformers"
        )
    return encoder
