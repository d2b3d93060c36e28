"""Connecting to Milvus: a Milvus Lite file or a server, one shared client per URI, errors as one line.

pymilvus is imported only here, inside functions: the store is an optional extra (``.[milvus]``).
A server's token comes from RAG_MILVUS_TOKEN; it is registered with ``rag.redaction`` and never
written anywhere.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import logging
import os
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

from rag.errors import RagError
from rag.redaction import redact, register_secret
from rag.settings import StoreChoice, env_positive
from rag.text import first_line

TOKEN_ENV = "RAG_MILVUS_TOKEN"
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def is_lite(uri: str) -> bool:
    """Whether the URI is a Milvus Lite file (a path) rather than a server (http, https, tcp…)."""
    return "://" not in uri


def fix_for(uri: str) -> str:
    """What the user can do when the store at ``uri`` cannot be used."""
    if is_lite(uri):
        return (
            "if the file is damaged, move it aside and run `rag ingest` to refill it from the index; "
            "Milvus Lite serves one process at a time, so also stop any other `rag` using it"
        )
    return (
        f"start the server or correct --store / RAG_STORE (a token goes in {TOKEN_ENV}); "
        "if it lost the collection, `rag ingest` refills it from the index"
    )


def client_for(choice: StoreChoice) -> Any:
    """The (shared) MilvusClient of the store; RagError naming the URI and the fix when it cannot connect."""
    with _clients_lock:
        if choice.uri in _clients:
            return _clients[choice.uri]
        pymilvus = _import_pymilvus()
        token = os.environ.get(TOKEN_ENV, "")
        register_secret(token)
        timeout = env_positive("RAG_MILVUS_TIMEOUT", 10.0)
        try:
            with _quiet():
                client = pymilvus.MilvusClient(uri=choice.uri, token=token, timeout=timeout)
        except Exception as exc:
            what = "Milvus Lite file" if is_lite(choice.uri) else "Milvus server at"
            raise RagError(
                f"cannot open the {what} {redact(choice.uri)} ({redact(first_line(exc))}): {fix_for(choice.uri)}"
            ) from None
        _clients[choice.uri] = client
        return client


def _import_pymilvus() -> Any:
    try:
        _provide_pkg_resources()
        import pymilvus
    except ImportError:
        raise RagError("the Milvus store needs pymilvus and milvus-lite: pip install 'rag-news[milvus]'") from None
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # its own handler prints every failed attempt
    return pymilvus


def _provide_pkg_resources() -> None:
    """milvus-lite 2.5 reads its version through ``pkg_resources``, which setuptools 81+ no longer ships:
    a two-name stand-in over importlib.metadata lets it import."""
    if "pkg_resources" not in sys.modules and importlib.util.find_spec("pkg_resources") is None:
        shim = types.ModuleType("pkg_resources")

        class DistributionNotFound(Exception):
            pass

        def get_distribution(name: str) -> Any:
            try:
                return types.SimpleNamespace(version=importlib.metadata.version(name))
            except importlib.metadata.PackageNotFoundError:
                raise DistributionNotFound(name) from None

        shim.DistributionNotFound = DistributionNotFound  # type: ignore[attr-defined]
        shim.get_distribution = get_distribution  # type: ignore[attr-defined]
        sys.modules.setdefault("pkg_resources", shim)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """milvus-lite logs its failures at ERROR on the root logger; the RagError that follows says it once."""
    logging.disable(logging.ERROR)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def close_clients() -> None:
    """Closes every shared client and stops the Milvus Lite servers (their files are then free for
    another process: closing a client alone leaves the server running)."""
    with _clients_lock:
        for uri, client in _clients.items():
            with contextlib.suppress(Exception):
                client.close()
            if is_lite(uri):
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(uri)
        _clients.clear()
