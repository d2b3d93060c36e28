"""The index folder's layout: generations, the CURRENT pointer, reader pins and the writer lock.

``index_dir/CURRENT`` names the live generation folder (``index_dir/gen-…/``). A build writes a new
generation in a hidden staging folder beside the live one (``new_staging``) and ``commit`` renames it
into place and replaces ``CURRENT`` in one atomic rename, so a build that fails half-way leaves the
previous index untouched and usable.

Concurrency: one build at a time per index folder (``index_dir/.lock``, a ``filelock`` lock that dies
with its process); a second build waits for it, up to ``Settings.lock_timeout``. Readers resolve
``CURRENT`` once and read the whole generation into memory while holding a shared ``flock`` on its
manifest (``pinned_generation``); a build removes an old generation only when it can take that lock
exclusively, so it never deletes a generation while someone reads it.

Nothing outside this module knows these names; ``rag.search.store`` says what a generation holds.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: generations are not pinned (see pinned_generation)
    fcntl = None  # type: ignore[assignment]

from rag.errors import IndexDamagedError, IndexMissingError, RagError
from rag.text import first_line

log = logging.getLogger(__name__)

CURRENT = "CURRENT"
LOCK = ".lock"
MANIFEST = "manifest.json"  # the file a reader pins (see pinned_generation)
RESUME = ".resume"  # articles embedded by a build that did not finish (rag.search.journal)
PIN_RETRIES = 5  # times a reader re-reads CURRENT when a build swapped generations under it


def new_staging(index_dir: Path) -> Path:
    """A new hidden folder in ``index_dir`` to write a generation into (the caller holds the writer lock)."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".building-", dir=index_dir))
    except OSError as exc:
        raise cannot_write(index_dir, exc) from None


def commit(index_dir: Path, staging: Path) -> Path:
    """Makes the finished ``staging`` folder the live generation and removes generations nobody reads.

    The rename of the pointer file onto ``CURRENT`` is the commit point: before it readers see the old
    generation, after it the new one.
    """
    generation = index_dir / f"gen-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    os.rename(staging, generation)
    pointer = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:6]}"
    pointer.write_text(generation.name + "\n")
    os.replace(pointer, index_dir / CURRENT)
    _remove_old_generations(index_dir, keep=generation.name)
    return generation


def resume_folder(index_dir: Path) -> Path:
    """Where a build keeps the articles it has embedded until it commits, so an interrupted build resumes.

    Only the holder of the writer lock touches it; ``_remove_old_generations`` leaves it alone.
    """
    return index_dir / RESUME


def remove_resume_folder(index_dir: Path) -> None:
    """Deletes the resume journal once the generation holding its articles is live."""
    shutil.rmtree(resume_folder(index_dir), ignore_errors=True)


def discard(staging: Path) -> None:
    """Removes a staging folder whose build failed."""
    shutil.rmtree(staging, ignore_errors=True)


def _read_current(index_dir: Path) -> str:
    """The name of the live generation, from ``CURRENT``."""
    try:
        return (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        if index_dir.is_dir() and any(p.name.startswith("gen-") for p in index_dir.iterdir()):
            raise IndexDamagedError(f"the index in {index_dir} is damaged ({CURRENT} is missing)") from None
        raise IndexMissingError(f"no index in {index_dir}: run `rag ingest PATHS` to build one") from None
    except (OSError, ValueError) as exc:
        raise IndexDamagedError(
            f"the index in {index_dir} is damaged ({CURRENT} cannot be read: {first_line(exc)})"
        ) from None


@contextmanager
def pinned_generation(index_dir: Path) -> Iterator[Path]:
    """The live generation folder, pinned for the block: no build deletes it while it is read.

    The pin is a shared ``flock`` on the generation's manifest (readers need no write access); a build
    removes an old generation only under an exclusive lock on the same file. When a build swapped
    generations between reading ``CURRENT`` and pinning, ``CURRENT`` is read again.
    """
    for _ in range(PIN_RETRIES):
        name = _read_current(index_dir)
        if not name or "/" in name or name.startswith("."):
            raise IndexDamagedError(f"the index in {index_dir} is damaged ({CURRENT} holds {name!r}, not a generation)")
        generation = index_dir / name
        pin = _pin(generation / MANIFEST)
        if pin is None:
            if _read_current(index_dir) != name:
                continue  # a build replaced it meanwhile: read the new one
            raise IndexDamagedError(f"the index in {index_dir} is damaged ({CURRENT} names {name}, which is missing)")
        try:
            yield generation
        finally:
            os.close(pin)
        return
    raise IndexDamagedError(f"the index in {index_dir} is damaged (its generation kept changing while it was read)")


def _pin(manifest: Path) -> int | None:
    """A file descriptor holding a shared lock on a generation's manifest, or None when it is gone."""
    try:
        fd = os.open(manifest, os.O_RDONLY)
    except FileNotFoundError:
        return None
    if fcntl is None:  # no flock on this system: nothing to pin with
        return fd
    fcntl.flock(fd, fcntl.LOCK_SH)  # waits while a build renames the generation away (a moment)
    try:
        still_there = os.path.samestat(os.fstat(fd), os.stat(manifest))
    except FileNotFoundError:
        still_there = False
    if not still_there:
        os.close(fd)
        return None
    return fd


def _take_for_removal(generation: Path) -> bool:
    """Moves an old generation aside for deletion, unless a reader has it pinned (then it stays)."""
    manifest = generation / MANIFEST
    try:
        fd = os.open(manifest, os.O_RDONLY)
    except FileNotFoundError:
        fd = None  # a generation without a manifest cannot be read, so nobody pins it
    try:
        if fd is not None and fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
        os.rename(generation, generation.with_name(f".removing-{generation.name}"))
        return True
    finally:
        if fd is not None:
            os.close(fd)


def _remove_old_generations(index_dir: Path, keep: str) -> None:
    """Deletes generations nobody reads and staging left by builds that died (the writer lock is held)."""
    for child in index_dir.iterdir():
        if not child.is_dir() or child.name == keep:
            continue
        if child.name.startswith("gen-"):
            if not _take_for_removal(child):
                log.debug("kept %s: a reader has it open", child)
                continue
            child = child.with_name(f".removing-{child.name}")
        elif not child.name.startswith((".building-", ".removing-")):
            continue
        shutil.rmtree(child, ignore_errors=True)


def cannot_write(index_dir: Path, exc: OSError) -> RagError:
    return RagError(
        f"cannot write to the index folder {index_dir} ({exc.strerror or exc}): give a writable "
        "folder with --index (or $RAG_INDEX), or use --no-rebuild to answer from the index as it is"
    )


@contextmanager
def writer_lock(index_dir: Path, timeout: float) -> Iterator[None]:
    """Holds the index folder's writer lock: one build at a time, across processes.

    A second build waits up to ``timeout`` seconds, then fails with a message naming the folder. The lock
    is released when its holder ends, however it ends.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(index_dir / LOCK)
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.warning(
                "another `rag ingest` is updating the index in %s: waiting for it (up to %g s)", index_dir, timeout
            )
            lock.acquire(timeout=timeout)
        # The lock file may exist in a folder that no longer takes new files: find out before building.
        tempfile.NamedTemporaryFile(dir=index_dir, prefix=".probe-").close()
    except Timeout:
        raise RagError(
            f"another `rag ingest` (or the app adding articles) is updating the index in {index_dir} "
            f"and has not finished within {timeout:g} s: try again when it has (waiting longer: "
            "RAG_LOCK_TIMEOUT=SECONDS)"
        ) from None
    except OSError as exc:
        if lock.is_locked:
            lock.release()
        raise cannot_write(index_dir, exc) from None
    try:
        yield
    finally:
        lock.release()
