"""A fast path for embedding one question: the bundled model exported to ONNX and run by onnxruntime.

Why: through sentence-transformers one short question costs ~25 ms on two cores,
almost all of it torch's per-operator overhead, which alone breaks the 20 ms
search budget; onnxruntime runs the same float32 graph in a few milliseconds.

The graph is exported once, locally, from the bundled weights with
``torch.onnx`` (nothing is downloaded) and cached under ``$RAG_CACHE`` (default
``~/.cache/rag-news``), named by the weights' SHA-256. Before it is used, its
vectors are compared with the torch path on probe texts; any failure (package
missing, export error, disagreement) leaves the caller on the torch path.
``RAG_ONNX_QUERY=0`` switches the fast path off.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.search.onnx_graph import lean_graph

log = logging.getLogger(__name__)

MIN_AGREEMENT = 0.99999  # cosine between ONNX and torch vectors: float32 rounding only
_PROBES = (
    "Who signed the sanctions law?",
    "The ministry said on Tuesday that exports of wheat fell 12 percent in 2023, "
    "while prices rose to $5 billion — the highest since the war began in Kyiv.",
)


class ModelSource(Protocol):
    """What the fast path needs of the embedder (``rag.search.embedding.Embedder``): its files, its weights'
    hash and input limit, and its sentence-transformers model to export from and compare with."""

    path: Path
    weights_sha256: str

    @property
    def max_tokens(self) -> int: ...

    @property
    def model(self) -> Any: ...

    def encode_with_model(self, texts: list[str], progress: bool | None = None) -> np.ndarray: ...


def cache_dir() -> Path:
    """Where exported graphs are kept."""
    return Path(os.environ.get("RAG_CACHE") or Path.home() / ".cache" / "rag-news")


def enabled() -> bool:
    """Whether the fast path may be tried (``RAG_ONNX_QUERY=0`` turns it off)."""
    return os.environ.get("RAG_ONNX_QUERY", "1").strip().lower() not in {"0", "false", "no", "off"}


def _export(embedder: ModelSource, target: Path) -> None:
    """Writes the transformer (token ids -> token states) as an ONNX graph, atomically."""
    import torch

    transformer = embedder.model[0].auto_model.eval()

    class _States(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = embedder.model.tokenizer(["a short sample question"], return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=".export-", suffix=".onnx", dir=target.parent)
    os.close(handle)
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shapes; agreement is checked after loading
            torch.onnx.export(
                _States(transformer),
                tuple(sample[name] for name in names),
                partial,
                input_names=names,
                output_names=["token_states"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "token_states"]},
                opset_version=17,
                dynamo=False,  # the TorchScript exporter needs only the `onnx` package
            )
        os.replace(partial, target)  # concurrent processes may race: the last complete file wins
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def cpu_session(
    path: Path, threads: int | None = None, providers: tuple[str, ...] = ("CPUExecutionProvider",), lean: bool = False
):
    """An onnxruntime session on ``threads`` threads (default: up to 2), quiet, without spinning threads;
    ``lean``: without torch's attention guards (``rag.search.onnx_graph``; worth it for long inputs)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    # Spinning threads burn the CPU between questions and stall when the cores are shared.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    graph = lean_graph(path) if lean else str(path)
    return onnxruntime.InferenceSession(graph, options, providers=list(providers))


class OnnxQueryEncoder:
    """Embeds one text at a time with onnxruntime; vectors equal the torch path's to float32 rounding."""

    def __init__(self, embedder: ModelSource):
        from tokenizers import Tokenizer

        path = cache_dir() / f"minilm-{embedder.weights_sha256[:16]}-fp32.onnx"
        if not path.is_file():
            log.info("exporting the query encoder to %s (once)", path)
            _export(embedder, path)
        self.session = cpu_session(path)
        self.inputs = {i.name for i in self.session.get_inputs()}
        # The model's own tokenizer file, cut at the model's input limit as sentence-transformers does.
        self.tokenizer = Tokenizer.from_file(str(embedder.path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(embedder.max_tokens)
        # A second tokenizer pads batches to their longest text (a tokenizer's settings are shared state).
        self.batch_tokenizer = Tokenizer.from_file(str(embedder.path / "tokenizer.json"))
        self.batch_tokenizer.enable_truncation(embedder.max_tokens)
        self.batch_tokenizer.enable_padding()
        self.path = path

    def encode(self, text: str) -> np.ndarray:
        """One unit vector (float32): mean of the token states, then L2-normalised."""
        encoding = self.tokenizer.encode(text)
        ids = np.asarray([encoding.ids], dtype=np.int64)
        feeds = {
            "input_ids": ids,
            "attention_mask": np.ones_like(ids),  # one unpadded text: every token counts
            "token_type_ids": np.zeros_like(ids),
        }
        states = self.session.run(None, {k: v for k, v in feeds.items() if k in self.inputs})[0]
        vector = states[0].mean(axis=0)
        return (vector / np.linalg.norm(vector)).astype(np.float32)

    def encode_batch(self, texts: list[str], batch: int = 16) -> np.ndarray:
        """Unit vectors of several texts: masked mean of the token states, batches of similar length."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        rows: dict[int, np.ndarray] = {}
        for first in range(0, len(order), batch):
            group = order[first : first + batch]
            encodings = self.batch_tokenizer.encode_batch([texts[i] for i in group])
            ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            states = self.session.run(None, {k: v for k, v in feeds.items() if k in self.inputs})[0]
            summed = (states * mask[:, :, None]).sum(axis=1)
            means = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            means /= np.linalg.norm(means, axis=1, keepdims=True)
            rows.update(zip(group, means.astype(np.float32)))
        return np.stack([rows[i] for i in range(len(texts))])

    def agreement(self, embedder: ModelSource) -> float:
        """Lowest cosine between this path (one by one and batched) and sentence-transformers on the probe texts."""
        reference = embedder.encode_with_model(list(_PROBES), progress=False)
        batched = self.encode_batch(list(_PROBES))
        single = min(float(self.encode(text) @ reference[row]) for row, text in enumerate(_PROBES))
        return min(single, float(np.min(np.sum(batched * reference, axis=1))))

    def _verified_marker(self) -> Path:
        return self.path.with_suffix(".verified.json")

    def verified_before(self) -> float | None:
        """The agreement measured when this graph was last checked with this onnxruntime, if it was."""
        import onnxruntime

        try:
            record = json.loads(self._verified_marker().read_text())
        except (OSError, ValueError):
            return None
        if record.get("onnxruntime") != onnxruntime.__version__ or record.get("probes") != len(_PROBES):
            return None
        return float(record.get("agreement", 0.0))

    def remember_verified(self, agreement: float) -> None:
        import onnxruntime

        record = {"onnxruntime": onnxruntime.__version__, "probes": len(_PROBES), "agreement": agreement}
        try:
            partial = self._verified_marker().with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps(record))
            os.replace(partial, self._verified_marker())
        except OSError as exc:  # a read-only cache only costs a re-check next time
            log.info("could not record the verification of %s: %s", self.path, exc)


def load(embedder: ModelSource) -> OnnxQueryEncoder | None:
    """The fast query encoder, or None (with a logged reason) when the torch path must be used."""
    if not enabled():
        return None
    try:
        encoder = OnnxQueryEncoder(embedder)
        # Checking against sentence-transformers imports torch (seconds); once per graph and runtime is enough.
        agreement = encoder.verified_before()
        if agreement is None or agreement < MIN_AGREEMENT:
            agreement = encoder.agreement(embedder)
            if agreement >= MIN_AGREEMENT:
                encoder.remember_verified(agreement)
    except Exception as exc:  # any failure here only costs speed: fall back to torch
        log.warning("fast query encoder unavailable (%s: %s); using sentence-transformers", type(exc).__name__, exc)
        return None
    if agreement < MIN_AGREEMENT:
        log.warning("fast query encoder disagrees with the model (cosine %.6f); using sentence-transformers", agreement)
        return None
    return encoder
