"""Stamps of corpus files: what a file was when it was read, to tell later whether it changed.

A stamp holds the file's size and modification time, taken before it was read, and the SHA-256 of the
bytes read. A file whose size and time are unchanged is taken as unchanged without reading it; one
whose stat changed is hashed and compared.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A file changed twice within one tick of the file system's clock keeps its modification time: a time
# this recent when the file is read is not trusted later, and the file is hashed instead ("racy git").
RECENT_NS = 2_000_000_000


@dataclass(frozen=True)
class FileStamp:
    """What a corpus file was when it was read: absolute path, size, modification time (-1: not to be
    trusted) and the SHA-256 of the bytes read."""

    path: str
    size: int
    mtime_ns: int
    sha256: str

    def to_list(self) -> list[Any]:
        return [self.path, self.size, self.mtime_ns, self.sha256]

    @classmethod
    def from_list(cls, item: list[Any]) -> FileStamp:
        path, size, mtime_ns, sha256 = item
        return cls(str(path), int(size), int(mtime_ns), str(sha256))

    @classmethod
    def of(cls, path: Path, stat: os.stat_result, data: bytes) -> FileStamp:
        """The stamp of ``data`` read from ``path``, whose ``stat`` was taken before reading."""
        mtime = stat.st_mtime_ns if time.time_ns() - stat.st_mtime_ns >= RECENT_NS else -1
        return cls(os.path.abspath(path), stat.st_size, mtime, hashlib.sha256(data).hexdigest())


def unchanged(files: Iterable[Path], stamps: Iterable[FileStamp]) -> bool:
    """Whether ``files`` are the files stamped: the same files, each with the same size and modification
    time, or else the same bytes (only such files are read and hashed)."""
    known = {s.path: s for s in stamps}
    seen: set[str] = set()
    for path in files:
        name = os.path.abspath(path)
        stamp = known.get(name)
        if stamp is None:
            return False
        seen.add(name)
        try:
            stat = path.stat()
            if stat.st_size == stamp.size and stat.st_mtime_ns == stamp.mtime_ns:
                continue
            if stat.st_size != stamp.size or hashlib.sha256(path.read_bytes()).hexdigest() != stamp.sha256:
                return False
        except OSError:
            return False
    return seen == set(known)
