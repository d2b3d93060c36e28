"""Loading articles from disk into Documents with normalised text.

Accepts folders or files of ``.txt``, ``.md``, ``.html``/``.htm`` and ``.jsonl``
(one article a line: id, title, text, optional url and published). Hard-wrapped
text is joined back into paragraphs; all offsets elsewhere refer to the
normalised text produced here.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rag.errors import CorpusError
from rag.records import Document

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
JSONL_SUFFIXES = {".jsonl"}
SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_SENTENCE_END = re.compile(r"[.!?:;…][\"'”’)\]]*$")
_MD_HEADING = re.compile(r"^#{1,6}\s+")
PROGRESS_FROM = 1_000_000  # bytes or characters of work from which a progress bar is shown unasked


def content_hash(text: str) -> str:
    """A stable hash of a document's normalised text (used to skip re-embedding)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------
# Normalisation of plain text


def _clean_line(line: str) -> str:
    return _SPACES.sub(" ", line).strip()


def _blocks(lines: list[str]) -> list[list[str]]:
    """Groups of consecutive non-blank lines."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if line:
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _wrap_width(lines: list[str]) -> int | None:
    """The column at which the text was hard-wrapped, or None when it was not.

    A hard-wrapped text has many lines that end close to one common width;
    free-flowing text has one paragraph a line with widely varying lengths.
    """
    lengths = [len(line) for line in lines if line]
    if len(lengths) < 4:
        return None
    width = sorted(lengths)[int(0.9 * (len(lengths) - 1))]
    if width > 200:
        return None
    near_width = sum(1 for n in lengths if n >= 0.7 * width)
    # A wrapper breaks lines mid-sentence; one-paragraph-a-line text ends lines at sentence ends.
    mid_sentence = sum(1 for line in lines if line and not _SENTENCE_END.search(line))
    if width < 40 or near_width < 0.5 * len(lengths) or mid_sentence < 0.4 * len(lengths):
        return None
    return width


def _join_wrapped(lines: list[str]) -> str:
    """Joins the lines of one paragraph; a line ending in '-' joins without a space, keeping the hyphen."""
    text = lines[0]
    for line in lines[1:]:
        text = text + line if text.endswith("-") else text + " " + line
    return text


def _is_headline(block: list[str]) -> bool:
    words = " ".join(block).split()
    if not 2 <= len(words) <= 30 or len(block) > 3:
        return False
    if _SENTENCE_END.search(block[-1]):
        return False
    capitalised = sum(1 for w in words if w[:1].isupper() or not w[:1].isalpha())
    return capitalised >= 0.6 * len(words)


def _paragraphs(raw: str) -> tuple[str | None, list[str]]:
    """Splits raw text into (headline or None, paragraphs), joining hard-wrapped lines."""
    lines = [_clean_line(line) for line in raw.splitlines()]
    blocks = _blocks(lines)
    if not blocks:
        return None, []
    width = _wrap_width(lines)
    headline = None
    if _is_headline(blocks[0]) and (len(blocks[0]) > 1 or len(blocks) > 1):
        headline = " ".join(blocks[0])
        blocks = blocks[1:]
    paragraphs: list[str] = []
    for block in blocks:
        if width is None:
            paragraphs.extend(block)  # one paragraph a line
            continue
        current = [block[0]]
        for line in block[1:]:
            previous = current[-1]
            next_word = line.split(" ", 1)[0]
            # A wrapper breaks a line only when the next word would not fit; a short line
            # ending a sentence is a paragraph end.
            wrapped = len(previous) + 1 + len(next_word) > width * 0.85 or not _SENTENCE_END.search(previous)
            if wrapped:
                current.append(line)
            else:
                paragraphs.append(_join_wrapped(current))
                current = [line]
        paragraphs.append(_join_wrapped(current))
    return headline, paragraphs


def normalise_text(raw: str) -> tuple[str | None, str]:
    """Returns (headline or None, normalised text) for a plain-text article.

    Paragraphs are separated by a blank line; a recognised headline is kept as
    the first paragraph so it can be cited like any other text.
    """
    headline, paragraphs = _paragraphs(raw)
    parts = ([headline] if headline else []) + paragraphs
    return headline, "\n\n".join(parts)


def _fallback_title(text: str, doc_id: str) -> str:
    first = text.split("\n", 1)[0].strip()
    if not first:
        return doc_id
    words = first.split()
    return " ".join(words[:12]) + (" …" if len(words) > 12 else "")


# ---------------------------------------------------------------------------
# Readers, one per format


def _decode(path: Path) -> str:
    data = path.read_bytes()
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
        title=title or _fallback_title(text, doc_id),
        text=text,
        source=source,
        content_hash=content_hash(text + "\x00" + (title or "")),
        **meta,
    )


def _read_text(path: Path) -> Iterator[Document]:
    raw = _decode(path)
    if path.suffix.lower() in {".md", ".markdown"}:
        raw = "\n".join(_MD_HEADING.sub("", line) for line in raw.splitlines())
    headline, text = normalise_text(raw)
    yield _document(path.stem, headline, text, str(path))


_BLOCK_TAGS = ["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "blockquote", "pre", "figcaption", "td", "th", "dd", "dt"]


def _read_html(path: Path) -> Iterator[Document]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(path), "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "nav", "footer", "aside", "form"]):
        tag.decompose()
    root = soup.find("article") or soup.body or soup
    paragraphs = []
    for element in root.find_all(_BLOCK_TAGS):
        if element.find(_BLOCK_TAGS):
            continue  # its inner blocks are visited on their own
        text = _clean_line(element.get_text(""))
        if text:
            paragraphs.append(text)
    if not paragraphs:  # a page without block markup: fall back to its visible text
        paragraphs = [_clean_line(line) for line in root.get_text("\n").splitlines() if line.strip()]
    heading = soup.find("h1")
    title = _clean_line(heading.get_text("")) if heading else None
    if not title and soup.title and soup.title.string:
        title = _clean_line(soup.title.string)
    yield _document(path.stem, title, "\n\n".join(paragraphs), str(path))


def _read_jsonl(path: Path, on_progress: Callable[[int], object] | None = None) -> Iterator[Document]:
    for number, line in enumerate(_decode(path).splitlines(), start=1):
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
                _clean_line(title) if isinstance(title, str) and title.strip() else None,
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


def _broken_link(path: Path) -> str | None:
    """Why a symbolic link cannot be read ("loops", "points to nothing"), or None when it can."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except OSError as exc:
        return "a symbolic link that loops" if exc.errno == errno.ELOOP else "a symbolic link that points to nothing"
    return None


def _reader(path: Path):
    suffix = path.suffix.lower()
    if suffix in HTML_SUFFIXES:
        return _read_html
    if suffix in JSONL_SUFFIXES:
        return _read_jsonl
    return _read_text


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
                broken = _broken_link(child)
                if broken:
                    log.warning("skipped %s: it is %s", child, broken)
                elif child.is_file():
                    yield child
        elif path.is_file():
            yield path
        elif _broken_link(path):
            raise CorpusError(f"corpus path {path} is {_broken_link(path)}: give a folder or files of .txt, .md, .html or .jsonl")
        else:
            raise CorpusError(f"corpus path {path} does not exist: give a folder or files of .txt, .md, .html or .jsonl")


def load_document(path: str | Path, on_progress: Callable[[int], object] | None = None) -> list[Document]:
    """Reads one file into Documents; raises ValueError with the reason when it cannot be used.

    ``on_progress`` is called with the characters read so far, line by line, in a .jsonl file.
    """
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"has an unsupported type '{path.suffix}' (use .txt, .md, .html or .jsonl)")
    if path.suffix.lower() in JSONL_SUFFIXES:
        return list(_read_jsonl(path, on_progress))
    return list(_reader(path)(path))


def load_corpus(paths: Iterable[str | Path], progress: bool | None = None) -> list[Document]:
    """Reads every article under ``paths``; unusable files are skipped with a warning naming them.

    ``progress``: a bar over the bytes read (None: only for a corpus of a megabyte or more).
    """
    documents: dict[str, Document] = {}
    files = list(iter_files(paths))
    sizes = [_size(path) for path in files]
    with progress_bar(sum(sizes), "reading articles", "B", progress) as bar:
        for path, size in zip(files, sizes):
            read = [0]

            def note(amount: int, read=read, size=size) -> None:
                amount = min(amount, size - read[0])
                read[0] += amount
                bar.update(amount)

            try:
                loaded = load_document(path, on_progress=note)
            except (ValueError, OSError) as exc:
                log.warning("skipped %s: the file %s", path, exc)
                loaded = []
            bar.update(size - read[0])
            for doc in loaded:
                if doc.id in documents:
                    log.warning("skipped %s: document id '%s' is already used by %s", doc.source, doc.id, documents[doc.id].source)
                    continue
                documents[doc.id] = doc
    return list(documents.values())


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
    with tqdm(total=total, desc=what, unit=unit, unit_scale=True, disable=not visible, mininterval=0.5, delay=delay) as bar:
        yield bar


def corpus_fingerprint(documents: Iterable[Document]) -> str:
    """One hash over all document ids and contents: equal fingerprints mean an equal corpus."""
    digest = hashlib.sha256()
    for doc in sorted(documents, key=lambda d: d.id):
        digest.update(f"{doc.id}\x00{doc.content_hash}\n".encode())
    return digest.hexdigest()[:16]

