"""Which files under the corpus paths are articles: folders are walked in a stable order, hidden names
and other types are left out, broken symbolic links are named."""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from rag.errors import CorpusError

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
JSONL_SUFFIXES = {".jsonl"}
SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES


def broken_link(path: Path) -> str | None:
    """Why a symbolic link cannot be read ("loops", "points to nothing"), or None when it can."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except OSError as exc:
        return "a symbolic link that loops" if exc.errno == errno.ELOOP else "a symbolic link that points to nothing"
    return None


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """The article files under the given paths, in a stable order."""
    for path in map(Path, paths):
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                # Hidden files and folders are not articles (uploads waiting to be indexed live in one).
                if any(part.startswith(".") for part in child.relative_to(path).parts):
                    continue
                if child.suffix.lower() not in SUFFIXES:
                    continue
                broken = broken_link(child)
                if broken:
                    log.warning("skipped %s: it is %s", child, broken)
                elif child.is_file():
                    yield child
        elif path.is_file():
            yield path
        elif broken_link(path):
            raise CorpusError(
                f"corpus path {path} is {broken_link(path)}: give a folder or files of .txt, .md, .html or .jsonl"
            )
        else:
            raise CorpusError(
                f"corpus path {path} does not exist: give a folder or files of .txt, .md, .html or .jsonl"
            )
