"""Reading articles from disk into Documents with normalised text, and stamping the files read.

Accepts folders or files of ``.txt``, ``.md``, ``.html``/``.htm`` and ``.jsonl``
(one article a line: id, title, text, optional url and published). Text is
normalised by ``rag.ingest.normalising``; all offsets elsewhere refer to it.
Each file read gets a ``FileStamp`` (size, modification time, hash of its bytes)
so that a later run can tell an unchanged corpus without reading it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.ingest.files import HTML_SUFFIXES, JSONL_SUFFIXES, SUFFIXES, iter_files
from rag.ingest.normalising import clean_line, fallback_title, normalise_text
from rag.ingest.stamps import FileStamp, unchanged
from rag.records import Document

log = logging.getLogger(__name__)

_MD_HEADING = re.compile(r"^#{1,6}\s+")
PROGRESS_FROM = 1_000_000  # bytes or characters of work from which a progress bar is shown unasked


def content_hash(text: str) -> str:
    """A stable hash of a document's normalised text (used to skip re-embedding)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------
# Readers, one per format


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise ValueError("looks binary (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise ValueError("is empty")
    return text


def _document(doc_id: str, title: str | None, text: str, source: str, **meta: str | None) -> Document:
    if not text.strip():
        raise ValueError("has no text")
    return Document(
        id=doc_id,
        title=title or fallback_title(text, doc_id),
        text=text,
        source=source,
        content_hash=content_hash(text + "\x00" + (title or "")),
        **meta,
    )


def _read_text(path: Path, data: bytes) -> Iterator[Document]:
    raw = _decode(data)
    if path.suffix.lower() in {".md", ".markdown"}:
        raw = "\n".join(_MD_HEADING.sub("", line) for line in raw.splitlines())
    headline, text = normalise_text(raw)
    yield _document(path.stem, headline, text, str(path))


_BLOCK_TAGS = ["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "blockquote", "pre", "figcaption", "td", "th", "dd", "dt"]


def _read_html(path: Path, data: bytes) -> Iterator[Document]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(data), "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "nav", "footer", "aside", "form"]):
        tag.decompose()
    root = soup.find("article") or soup.body or soup
    paragraphs = []
    for element in root.find_all(_BLOCK_TAGS):
        if element.find(_BLOCK_TAGS):
            continue  # its inner blocks are visited on their own
        text = clean_line(element.get_text(""))
        if text:
            paragraphs.append(text)
    if not paragraphs:  # a page without block markup: fall back to its visible text
        paragraphs = [clean_line(line) for line in root.get_text("\n").splitlines() if line.strip()]
    heading = soup.find("h1")
    title = clean_line(heading.get_text("")) if heading else None
    if not title and soup.title and soup.title.string:
        title = clean_line(soup.title.string)
    yield _document(path.stem, title, "\n\n".join(paragraphs), str(path))


def _read_jsonl(path: Path, data: bytes, on_progress: Callable[[int], object] | None = None) -> Iterator[Document]:
    for number, line in enumerate(_decode(data).splitlines(), start=1):
        if on_progress is not None:
            on_progress(len(line) + 1)
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            doc_id, text = _record_id(record["id"]), record["text"]
            if not isinstance(text, str):
                raise TypeError("'text' is not a string")
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            log.warning("skipped %s line %d: not an article record (%s)", path, number, exc)
            continue
        title = record.get("title")
        _, normalised = normalise_text(text)
        try:
            yield _document(
                doc_id,
                clean_line(title) if isinstance(title, str) and title.strip() else None,
                normalised,
                f"{path}:{number}",
                url=record.get("url"),
                published=record.get("published") or record.get("date"),
            )
        except ValueError as exc:
            log.warning("skipped %s line %d: the article %s", path, number, exc)


def _record_id(value: object) -> str:
    """A jsonl article's id as text: a non-empty string or a number; TypeError for anything else (null)."""
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"'id' must be a non-empty string or a number, not {json.dumps(value)}")


def _reader(path: Path):
    suffix = path.suffix.lower()
    if suffix in HTML_SUFFIXES:
        return _read_html
    if suffix in JSONL_SUFFIXES:
        return _read_jsonl
    return _read_text


def load_document(path: str | Path, on_progress: Callable[[int], object] | None = None) -> list[Document]:
    """Reads one file into Documents; raises ValueError with the reason when it cannot be used.

    ``on_progress`` is called with the characters read so far, line by line, in a .jsonl file.
    """
    path = Path(path)
    return _documents_of(path, path.read_bytes(), on_progress)


def _documents_of(path: Path, data: bytes, on_progress: Callable[[int], object] | None = None) -> list[Document]:
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"has an unsupported type '{path.suffix}' (use .txt, .md, .html or .jsonl)")
    if path.suffix.lower() in JSONL_SUFFIXES:
        return list(_read_jsonl(path, data, on_progress))
    return list(_reader(path)(path, data))


def load_corpus(paths: Iterable[str | Path], progress: bool | None = None) -> list[Document]:
    """Reads every article under ``paths``; unusable files are skipped with a warning naming them.

    ``progress``: a bar over the bytes read (None: only for a corpus of a megabyte or more).
    """
    return read_corpus(paths, progress)[0]


def read_corpus(paths: Iterable[str | Path], progress: bool | None = None) -> tuple[list[Document], list[FileStamp]]:
    """``load_corpus``, with the stamp of every file read (those skipped as unusable included)."""
    files = list(iter_files(paths))
    sizes = [_size(path) for path in files]
    reads = []
    with progress_bar(sum(sizes), "reading articles", "B", progress) as bar:
        for path, size in zip(files, sizes):
            read = [0]

            def note(amount: int, read=read, size=size) -> None:
                amount = min(amount, size - read[0])
                read[0] += amount
                bar.update(amount)

            reads.append(read_file(path, on_progress=note))
            bar.update(size - read[0])
    return unique_documents(reads)


@dataclass(frozen=True)
class FileRead:
    """One article file read: its documents, its stamp (None when it could not be read), why it was skipped."""

    documents: list[Document]
    stamp: FileStamp | None
    problem: str | None = None


def read_file(path: Path, location: Path | None = None, on_progress: Callable[[int], object] | None = None) -> FileRead:
    """Reads ``path`` (from ``location`` when given: the same file under another name, as a cluster node sees it)."""
    location = location or path
    stamp = None
    try:
        stat = location.stat()  # before reading: a change while it is read shows next time
        data = location.read_bytes()
        stamp = FileStamp.of(location, stat, data)
        return FileRead(_documents_of(path, data, on_progress=on_progress), stamp)
    except (ValueError, OSError) as exc:
        return FileRead([], stamp, f"skipped {path}: the file {exc}")


def unique_documents(reads: Iterable[FileRead]) -> tuple[list[Document], list[FileStamp]]:
    """The documents and stamps of files read in corpus order; an id already used is skipped with a warning."""
    documents: dict[str, Document] = {}
    stamps: list[FileStamp] = []
    for read in reads:
        if read.stamp is not None:
            stamps.append(read.stamp)
        if read.problem:
            log.warning("%s", read.problem)
        for doc in read.documents:
            if doc.id in documents:
                log.warning(
                    "skipped %s: document id '%s' is already used by %s", doc.source, doc.id, documents[doc.id].source
                )
                continue
            documents[doc.id] = doc
    return list(documents.values()), stamps


def corpus_unchanged(paths: Iterable[str | Path], stamps: Iterable[FileStamp]) -> bool:
    """Whether the article files under ``paths`` are those stamped (see ``rag.ingest.stamps.unchanged``)."""
    return unchanged(iter_files(paths), stamps)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@contextmanager
def progress_bar(total: int, what: str, unit: str, show: bool | None) -> Iterator[Any]:
    """A tqdm bar over ``total`` units (characters, bytes) on stderr.

    ``show`` None shows it only for a million units or more, and only once the work has taken a second:
    small corpora (and the quick corpus check before answering) finish before a bar would help.
    """
    from tqdm import tqdm

    visible = show if show is not None else total >= PROGRESS_FROM
    delay = 0.0 if show else 1.0
    with tqdm(
        total=total, desc=what, unit=unit, unit_scale=True, disable=not visible, mininterval=0.5, delay=delay
    ) as bar:
        yield bar


def corpus_fingerprint(documents: Iterable[Document]) -> str:
    """One hash over all document ids and contents: equal fingerprints mean an equal corpus."""
    digest = hashlib.sha256()
    for doc in sorted(documents, key=lambda d: d.id):
        digest.update(f"{doc.id}\x00{doc.content_hash}\n".encode())
    return digest.hexdigest()[:16]
