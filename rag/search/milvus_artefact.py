"""The Milvus store as an ``Artefact`` of each generation: built by syncing the collection with the index.

Building a generation makes the collection hold exactly its chunks (``MilvusStore.sync``: rows of
removed or changed articles deleted, new ones inserted; unchanged rows stay). The generation keeps
``milvus/keys.npy`` (the row id of each chunk position) and ``milvus/store.json`` (the store as the
manifest records it, no secret); loading them connects to nothing until the first search.

A row's id is a stable 63-bit hash of what decides its vector and text: the embedder, the article id,
its content hash and the chunk's offsets. So an unchanged chunk keeps its row across builds, and a
changed article's chunks get new rows.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.search.backend import store_record
from rag.search.milvus_store import MilvusStore
from rag.settings import StoreChoice

if TYPE_CHECKING:
    from rag.search.store import Index

NAME = "milvus"
KEYS = "keys.npy"
RECORD = "store.json"


def chunk_keys(index: Index) -> np.ndarray:
    """The Milvus row id of each chunk of ``index``, in chunk order."""
    embedder = index.manifest.get("embedder", {})
    salt = f"{embedder.get('weights_sha256')}\0{embedder.get('passages', 'torch')}"
    keys = np.empty(len(index.chunks), dtype=np.int64)
    for position, chunk in enumerate(index.chunks):
        name = f"{salt}\0{chunk.doc_id}\0{index.documents[chunk.doc_id].content_hash}\0{chunk.start}\0{chunk.end}"
        digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
        keys[position] = int.from_bytes(digest, "big") >> 1  # 63 bits: Milvus ids are signed
    return keys


class MilvusArtefact:
    """Keeps a Milvus collection in step with each generation (see the module docstring)."""

    name = NAME

    def __init__(self, choice: StoreChoice, approximate_above: int):
        self.choice = choice
        self.approximate_above = approximate_above

    def build(self, index: Index, previous: Index | None) -> MilvusStore:
        store = MilvusStore(self.choice, index, chunk_keys(index), self.approximate_above)
        store.sync()
        return store

    def save(self, value: MilvusStore, path: Path) -> None:
        path.mkdir()
        np.save(path / KEYS, value.keys)
        (path / RECORD).write_text(json.dumps(store_record(self.choice) | {"rows": len(value.keys)}))

    def load(self, path: Path, index: Index) -> MilvusStore:
        keys = np.load(path / KEYS)
        if keys.shape != (len(index.chunks),):
            raise ValueError(f"{KEYS} holds {keys.shape} keys for {len(index.chunks)} chunks")
        return MilvusStore(self.choice, index, keys, self.approximate_above)
