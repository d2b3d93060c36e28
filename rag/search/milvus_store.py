"""An index's chunks in a Milvus collection: dense search there (and BM25 there, when chosen).

One row per chunk: ``id`` (a stable 63-bit key of the chunk, see ``rag.search.milvus_artefact``),
``doc_id``, ``text``, ``published`` (YYYYMMDD, 0 when undated, so ``published <= as_of`` keeps undated
articles), ``vector`` (FLOAT_VECTOR, inner product) and, when the lexical side is Milvus', ``sparse``
(made from ``text`` by Milvus' BM25 function with its ``english`` analyzer). The index folder keeps
documents, offsets and the manifest, so citations are unchanged; rows map back to chunk positions by key.

pymilvus is imported inside functions (``rag.search.milvus_connection``): the store is optional.
"""

from __future__ import annotations

import contextlib
import logging
import re
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import RagError
from rag.redaction import redact
from rag.search.backend import LocalBackend
from rag.search.milvus_connection import client_for, fix_for, is_lite
from rag.search.structures import IVF_NPROBE, ivf_lists
from rag.settings import StoreChoice
from rag.text import first_line
from rag.validation import as_date

if TYPE_CHECKING:
    from rag.search.store import Index

TOPK_LIMIT = 16_384  # Milvus' largest limit per search
# A strong search waits for the server's next time tick: 400 ms a search on a Milvus 2.3 standalone server,
# against 2 ms for a session one (docs/scale.md). Session sees this process's own writes, and an ingest
# in another process ends with a strong read, after which the server has applied them all.
SEARCH_CONSISTENCY = "Session"
BATCH = 2_000  # rows per insert or delete call

log = logging.getLogger(__name__)


class MilvusStore:
    """Ranks an index's chunks through a Milvus collection (a ``SearchBackend``); connects on first use.
    A dated search filters on ``published`` in the search itself."""

    def __init__(self, choice: StoreChoice, index: Index, keys: np.ndarray, approximate_above: int):
        self.choice = choice
        self.index = index
        self.keys = keys  # keys[position]: the row id of chunk ``position``
        self.approximate_above = approximate_above
        self._local = LocalBackend(index)
        order = np.argsort(keys, kind="stable")
        self._sorted_keys, self._positions = keys[order], order

    @property
    def client(self) -> Any:
        return client_for(self.choice)

    def dense(self, query: np.ndarray, n: int, as_of: date | None = None) -> list[tuple[int, float]]:
        """(chunk position, cosine) of the n nearest chunks, published by ``as_of`` when given."""
        vector = np.asarray(query, dtype=np.float32).reshape(-1).tolist()
        params = {"metric_type": "IP", "params": {"nprobe": IVF_NPROBE}}
        return self._search([vector], "vector", n, as_of, params)

    def lexical(self, question: str, n: int, as_of: date | None = None) -> list[tuple[int, float]]:
        """(chunk position, BM25 score): Milvus' BM25 when chosen, else the index's own bm25s."""
        if self.choice.lexical != "milvus":
            return self._local.lexical(question, n, as_of)
        return [(i, s) for i, s in self._search([question], "sparse", n, as_of, {"metric_type": "BM25"}) if s > 0]

    def _search(
        self, data: list[Any], field: str, n: int, as_of: date | None, params: dict[str, Any]
    ) -> list[tuple[int, float]]:
        n = min(n, len(self.index), TOPK_LIMIT)
        if n <= 0:
            return []
        day = f"published <= {as_of.year * 10_000 + as_of.month * 100 + as_of.day}" if as_of else ""
        try:
            hits = self.client.search(
                self.choice.collection,
                data=data,
                anns_field=field,
                limit=n,
                filter=day,
                search_params=params,
                consistency_level=SEARCH_CONSISTENCY,
            )[0]
        except RagError:
            raise
        except Exception as exc:
            raise self._unusable(exc) from None
        if not len(self._sorted_keys):
            return []
        ids = np.fromiter((hit["id"] for hit in hits), np.int64, len(hits))
        places = np.searchsorted(self._sorted_keys, ids).clip(0, len(self._sorted_keys) - 1)
        # A row this generation does not hold (a newer build's) is skipped: its chunk is not in this index.
        return [
            (int(self._positions[p]), float(hit["distance"]))
            for p, key, hit in zip(places, ids, hits)
            if self._sorted_keys[p] == key
        ]

    def _unusable(self, exc: Exception) -> RagError:
        return RagError(
            f"the Milvus collection {self.choice.collection} at {redact(self.choice.uri)} cannot be searched "
            f"({redact(first_line(exc))}): {fix_for(self.choice.uri)}"
        )

    # -- keeping the collection in step with the index ---------------------

    def sync(self) -> tuple[int, int]:
        """Makes the collection hold exactly this index's chunks: deletes the rows of chunks gone or
        changed, inserts the new ones (only those). Returns (inserted, deleted)."""
        try:
            self._ensure_collection()
            held = self._held_keys()
            wanted = set(self.keys.tolist())
            stale = sorted(held - wanted)
            for start in range(0, len(stale), BATCH):
                self.client.delete(self.choice.collection, ids=stale[start : start + BATCH])
            new = [p for p, key in enumerate(self.keys.tolist()) if key not in held]
            for start in range(0, len(new), BATCH):
                self.client.insert(self.choice.collection, self._rows(new[start : start + BATCH]))
            self._ensure_vector_index(len(self.keys))
            # A strong read returns once the server has applied every write above, so searches from any
            # process from now on see them without waiting themselves (see SEARCH_CONSISTENCY).
            self.client.query(
                self.choice.collection, filter="id >= 0", output_fields=["count(*)"], consistency_level="Strong"
            )
        except RagError:
            raise
        except Exception as exc:
            raise self._unusable(exc) from None
        log.info("Milvus %s: %d rows inserted, %d deleted", self.choice.collection, len(new), len(stale))
        return len(new), len(stale)

    def _rows(self, positions: list[int]) -> list[dict[str, Any]]:
        rows = []
        for p in positions:
            chunk = self.index.chunks[p]
            published = self.index.documents[chunk.doc_id].published
            day = as_date(published) if published else None
            rows.append(
                {
                    "id": int(self.keys[p]),
                    "doc_id": chunk.doc_id,
                    "text": chunk.text,
                    "published": day.year * 10_000 + day.month * 100 + day.day if day else 0,
                    "vector": np.asarray(self.index.vectors[p], dtype=np.float32).tolist(),
                }
            )
        return rows

    def _held_keys(self) -> set[int]:
        iterator = self.client.query_iterator(self.choice.collection, batch_size=10_000, output_fields=["id"])
        held: set[int] = set()
        try:
            while batch := iterator.next():
                held.update(row["id"] for row in batch)
        finally:
            iterator.close()
        return held

    def _ensure_collection(self) -> None:
        """Creates the collection, or re-creates one whose vector size or lexical side is not this store's."""
        client, name = self.client, self.choice.collection
        dimension = self.index.vectors.shape[1]
        if self.choice.lexical == "milvus":
            self._require_full_text()  # before anything is dropped: a refusal loses nothing
        if client.has_collection(name):
            fields = {f["name"]: f for f in client.describe_collection(name)["fields"]}
            fits = fields.get("vector", {}).get("params", {}).get("dim") == dimension and (
                ("sparse" in fields) == (self.choice.lexical == "milvus")
            )
            if fits:
                return
            log.warning("Milvus collection %s holds another layout: re-creating it", name)
            client.drop_collection(name)
        self._create_collection(dimension)

    def _create_collection(self, dimension: int) -> None:
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=65_535)
        schema.add_field("published", DataType.INT64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        params = self.client.prepare_index_params()
        params.add_index("vector", **_vector_index(self.choice.uri, len(self.keys), self.approximate_above))
        if self.choice.lexical == "milvus":
            schema.add_field(
                "text", DataType.VARCHAR, max_length=65_535, enable_analyzer=True, analyzer_params={"type": "english"}
            )
            schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(
                Function("bm25", FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"])
            )
            params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        else:
            schema.add_field("text", DataType.VARCHAR, max_length=65_535)
        # Strong by default, for sync's own reads of what it wrote; searches ask for SEARCH_CONSISTENCY.
        try:
            self.client.create_collection(
                self.choice.collection, schema=schema, index_params=params, consistency_level="Strong"
            )
        except Exception:
            # A collection without its index is never loaded, and every later search would fail on it.
            with contextlib.suppress(Exception):
                self.client.drop_collection(self.choice.collection)
            raise

    def _require_full_text(self) -> None:
        """RagError when the server predates Milvus 2.5, which brought the BM25 function."""
        if is_lite(self.choice.uri):
            return  # milvus-lite of the 2.5 line (the extra's pin) has it
        version = self.client.get_server_version()
        major_minor = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
        if len(major_minor) == 2 and major_minor < (2, 5):
            raise RagError(
                f"the Milvus server at {redact(self.choice.uri)} runs {version}, which has no BM25 full-text "
                "search (it came with Milvus 2.5): unset RAG_MILVUS_LEXICAL to keep the lexical side in the "
                "index, or upgrade the server"
            )

    def _ensure_vector_index(self, rows: int) -> None:
        """Re-builds the vector index when the collection has grown past (or shrunk below) its kind's range."""
        wanted = _vector_index(self.choice.uri, rows, self.approximate_above)
        client, name = self.client, self.choice.collection
        current = client.describe_index(name, "vector") or {}
        if current.get("index_type") == wanted["index_type"]:
            return
        client.release_collection(name)
        client.drop_index(name, "vector")
        params = client.prepare_index_params()
        params.add_index("vector", **wanted)
        client.create_index(name, params)
        client.load_collection(name)


def _vector_index(uri: str, rows: int, approximate_above: int) -> dict[str, Any]:
    """Exact (FLAT) search up to ``approximate_above`` rows, IVF_FLAT above, as the local FAISS index does.
    Milvus Lite searches FLAT whatever it is told, so it is told FLAT."""
    if is_lite(uri) or rows <= approximate_above:
        return {"index_type": "FLAT", "metric_type": "IP"}
    return {"index_type": "IVF_FLAT", "metric_type": "IP", "params": {"nlist": ivf_lists(rows)}}
