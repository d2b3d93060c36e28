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

import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rag.embedding import Embedder

log = logging.getLogger(__name__)

MIN_AGREEMENT = 0.99999  # cosine between ONNX and torch vectors: float32 rounding only
_PROBES = (
    "Who signed the sanctions law?",
    "The ministry said on Tuesday that exports of wheat fell 12 percent in 2023, "
    "while prices rose to $5 billion — the highest since the war began in Kyiv.",
)


def cache_dir() -> Path:
    """Where exported graphs are kept."""
    return Path(os.environ.get("RAG_CACHE") or Path.home() / ".cache" / "rag-news")


def enabled() -> bool:
    """Whether the fast path may be tried (``RAG_ONNX_QUERY=0`` turns it off)."""
    return os.environ.get("RAG_ONNX_QUERY", "1").strip().lower() not in {"0", "false", "no", "off"}


def _export(embedder: Embedder, target: Path) -> None:
    """Writes the transformer (token ids -> token states) as an ONNX graph, atomically."""
    import warnings

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


class OnnxQueryEncoder:
    """Embeds one text at a time with onnxruntime; vectors equal the torch path's to float32 rounding."""

    def __init__(self, embedder: Embedder):
        import onnxruntime
        from tokenizers import Tokenizer

        path = cache_dir() / f"minilm-{embedder.weights_sha256[:16]}-fp32.onnx"
        if not path.is_file():
            log.info("exporting the query encoder to %s (once)", path)
            _export(embedder, path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = min(2, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        # Spinning threads burn the CPU between questions and stall when the cores are shared.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        # The model's own tokenizer file, cut at the model's input limit as sentence-transformers does.
        self.tokenizer = Tokenizer.from_file(str(embedder.path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(embedder.max_tokens)

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

    def agreement(self, embedder: Embedder) -> float:
        """Lowest cosine between this path and the torch path on the probe texts."""
        reference = embedder.encode(list(_PROBES), progress=False)
        return min(float(self.encode(text) @ reference[row]) for row, text in enumerate(_PROBES))


def load(embedder: Embedder) -> OnnxQueryEncoder | None:
    """The fast query encoder, or None (with a logged reason) when the torch path must be used."""
    if not enabled():
        return None
    try:
        encoder = OnnxQueryEncoder(embedder)
        agreement = encoder.agreement(embedder)
    except Exception as exc:  # any failure here only costs speed: fall back to torch
        log.warning("fast query encoder unavailable (%s: %s); using sentence-transformers", type(exc).__name__, exc)
        return None
    if agreement < MIN_AGREEMENT:
        log.warning("fast query encoder disagrees with the model (cosine %.6f); using sentence-transformers", agreement)
        return None
    return encoder
