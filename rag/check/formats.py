"""Reading answers to check, in three formats, into sentences with located evidence.

(a) our answer JSON (``rag.records.Answer.to_dict()``);
(b) Markdown or plain text with ``[n]`` markers, ending with a numbered source list whose
    entries name a document id and a quote or a character span, e.g.
    ``[1] 000_bbbc7011c7c84b3f: "Cairo bought 76 percent of its arms"`` or ``[2] doc-7 [120:245]``;
(c) JSON ``{"answer": str, "citations": [{"doc_id": str, "quote": str}]}`` where ``[n]`` in the
    answer names ``citations[n-1]`` (no markers at all: every sentence cites every quote).

Quotes are located in the corpus exactly, then ignoring whitespace, curly/straight quote
differences and Unicode form (NFC/NFD), and mapped back to exact offsets of the document text.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.budget import check_time_budget
from rag.errors import RagError
from rag.ingest.sentences import sentence_spans
from rag.records import CitedSentence, Evidence
from rag.text import clip, locate_quote

if TYPE_CHECKING:
    from rag.search.store import Index

MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_LEADING_MARKERS = re.compile(r"^\s*((?:\[\d+(?:\s*[,;]\s*\d+)*\]\s*)+)")
_ENTRY = re.compile(r"^\s*(?:[-*]\s*)?(?:\[(\d+)\]|(\d+)[.):]|\((\d+)\))\s*(.+?)\s*$")
_HEADING = re.compile(
    r"^\s*(?:#+\s*)?\**\s*(?:sources?|references?|citations?|notes|bibliography)\s*\**\s*:?\s*$", re.I
)
_SPAN = re.compile(r"^\[?\s*(\d+)\s*(?::|-|–|\.\.)\s*(\d+)\s*\]?$")
_QUOTE_CHARS = {'"': '"', "“": "”", "”": "”", "'": "'", "‘": "’", "«": "»", "„": "“"}


@dataclass(frozen=True)
class SourceRef:
    """One entry of a source list: a document and either a quote or a span."""

    label: int
    doc_id: str
    quote: str = ""
    span: tuple[int, int] | None = None


def resolve(ref: SourceRef, index: Index) -> Evidence | str:
    """The Evidence a source entry points at, or a one-line reason why it points nowhere."""
    documents = index.documents
    if ref.doc_id and ref.doc_id not in documents:
        return f"source [{ref.label}] names document '{ref.doc_id}', which is not in the index"
    if ref.span is not None:
        text = documents[ref.doc_id].text
        start, end = ref.span
        if not 0 <= start < end <= len(text):
            return (
                f"source [{ref.label}] span {start}:{end} is outside document '{ref.doc_id}' ({len(text)} characters)"
            )
        return Evidence(ref.doc_id, start, end, text[start:end])
    if not ref.quote.strip():
        return f"source [{ref.label}] gives neither a quote nor a span"
    candidates = [ref.doc_id] if ref.doc_id else list(documents)
    for doc_id in candidates:
        check_time_budget()  # a quote without a document id is looked for in every article
        text = documents[doc_id].text
        found = locate_quote(text, ref.quote)
        if found:
            return Evidence(doc_id, found[0], found[1], text[found[0] : found[1]])
    where = f"document '{ref.doc_id}'" if ref.doc_id else "the corpus"
    return f'source [{ref.label}] quote not found in {where}: "{clip(ref.quote, 60)}"'


# ---------------------------------------------------------------------------
# Sentences with [n] markers


def _labels(markers: Iterable[str]) -> tuple[int, ...]:
    return tuple(int(n) for m in markers for n in re.split(r"\s*[,;]\s*", m.strip()))


def split_marked(text: str) -> list[tuple[str, tuple[int, ...]]]:
    """Sentences of ``text`` with their [n] labels, markers removed.

    A marker that opens a sentence belongs to the sentence before it ("... 2019. [1] Then ...").
    """
    result: list[tuple[str, tuple[int, ...]]] = []
    for start, end in sentence_spans(text):
        piece = text[start:end]
        leading = _LEADING_MARKERS.match(piece)
        if leading and result:
            result[-1] = (result[-1][0], result[-1][1] + _labels(MARKER.findall(leading.group(1))))
            piece = piece[leading.end() :]
        labels = _labels(MARKER.findall(piece))
        clean = " ".join(MARKER.sub(" ", piece).split())
        clean = re.sub(r"\s+([.,;:!?])", r"\1", clean)
        if not any(ch.isalnum() for ch in clean):
            if result:
                result[-1] = (result[-1][0], result[-1][1] + labels)
            continue
        result.append((clean, labels))
    return [(s, tuple(dict.fromkeys(labels))) for s, labels in result]


def _cited_sentences(
    sentences: list[tuple[str, tuple[int, ...]]], sources: dict[int, Evidence | str], every: bool = False
) -> list[CitedSentence]:
    items = []
    for text, labels in sentences:
        if every and not labels:
            labels = tuple(sorted(sources))
        cited, problems = [], []
        for label in labels:
            target = sources.get(label)
            if target is None:
                problems.append(f"citation [{label}] is out of range: there are {len(sources)} sources")
            elif isinstance(target, str):
                problems.append(target)
            else:
                cited.append(target)
        items.append(CitedSentence(text, tuple(cited), labels, tuple(problems)))
    return items


# ---------------------------------------------------------------------------
# The three formats


def sentences_from_record(answer: dict[str, Any], index: Index) -> list[CitedSentence]:
    """Format (a): our own answer JSON; citation labels are the passages' ranks."""
    sentences = answer.get("sentences")
    if not isinstance(sentences, list):
        raise RagError("the answer JSON has no 'sentences' list: give the output of `rag ask --json`")
    n_passages = len(answer.get("passages") or [])
    items = []
    for number, sentence in enumerate(sentences, start=1):
        if not isinstance(sentence, dict) or not isinstance(sentence.get("text"), str):
            raise RagError(f"sentence {number} of the answer JSON has no 'text': give the output of `rag ask --json`")
        cited: list[Evidence] = []
        labels: list[int] = []
        problems: list[str] = []
        for position, citation in enumerate(sentence.get("citations") or [], start=1):
            if not isinstance(citation, dict):
                raise RagError(
                    f"citation {position} of sentence {number} is not an object with doc_id, start, end, text"
                )
            label = citation.get("passage_rank") or position
            if isinstance(label, bool) or not isinstance(label, int):
                raise RagError(
                    f"citation {position} of sentence {number} has passage_rank {label!r}: it must be "
                    "the whole number of a passage (1, 2, …) or null"
                )
            labels.append(label)
            if n_passages and not 1 <= label <= n_passages:
                problems.append(f"citation [{label}] is out of range: there are {n_passages} passages")
                continue
            target = _record_citation(citation, label, index)
            if isinstance(target, str):
                problems.append(target)
            else:
                cited.append(target)
        items.append(CitedSentence(sentence["text"], tuple(cited), tuple(labels), tuple(problems)))
    if not items:
        raise RagError("the answer JSON has no sentences to check")
    return items


def _record_citation(citation: dict[str, Any], label: int, index: Index) -> Evidence | str:
    doc_id, text = citation.get("doc_id"), citation.get("text") or ""
    start, end = citation.get("start"), citation.get("end")
    doc = index.documents.get(str(doc_id))
    if doc is None:
        return f"citation [{label}] names document '{doc_id}', which is not in the index"
    if isinstance(start, int) and isinstance(end, int) and doc.text[start:end] == text and text:
        return Evidence(doc.id, start, end, text)
    # Offsets from another index version: fall back to finding the quoted text.
    return resolve(SourceRef(int(label), doc.id, quote=text), index)


def sentences_from_quotes(answer: dict[str, Any], index: Index) -> list[CitedSentence]:
    """Format (c): ``{"answer": str, "citations": [{"doc_id": str, "quote": str}]}``."""
    text, citations = answer.get("answer"), answer.get("citations", [])
    if not isinstance(text, str) or not text.strip():
        raise RagError('the JSON has no \'answer\' text: give {"answer": str, "citations": [{"doc_id", "quote"}]}')
    if not isinstance(citations, list):
        raise RagError('\'citations\' must be a list of {"doc_id": str, "quote": str}')
    sources: dict[int, Evidence | str] = {}
    for label, citation in enumerate(citations, start=1):
        if not isinstance(citation, dict) or not isinstance(citation.get("quote"), str):
            raise RagError(f'citation {label} has no \'quote\': each citation is {{"doc_id": str, "quote": str}}')
        sources[label] = resolve(SourceRef(label, str(citation.get("doc_id") or ""), citation["quote"]), index)
    sentences = split_marked(text)
    if not sentences:
        raise RagError("the answer has no sentences to check")
    every = not any(labels for _, labels in sentences)
    return _cited_sentences(sentences, sources, every=every)


def parse_source_entry(label: int, body: str) -> SourceRef:
    """One source-list entry: ``DOC_ID: "quote"``, ``DOC_ID [start:end]`` or ``DOC_ID quote``."""
    match = re.match(r"^([^\s\"“”‘’'«:,]+)[\s:,–—-]*(.*)$", body)
    if not match:
        return SourceRef(label, "", body)
    doc_id, rest = match.group(1), match.group(2).strip()
    span = _SPAN.match(rest)
    if span:
        return SourceRef(label, doc_id, span=(int(span.group(1)), int(span.group(2))))
    if rest[:1] in _QUOTE_CHARS:
        closing = _QUOTE_CHARS[rest[0]]
        last = max(rest.rfind(closing), rest.rfind('"') if closing != "'" else -1)
        rest = rest[1:last] if last > 0 else rest[1:]
    return SourceRef(label, doc_id, rest.strip())


def sentences_from_text(raw: str, index: Index) -> list[CitedSentence]:
    """Format (b): text with [n] markers followed by a numbered source list."""
    lines = raw.splitlines()
    entries: dict[int, str] = {}
    cut = len(lines)
    for position in range(len(lines) - 1, -1, -1):
        line = lines[position]
        entry = _ENTRY.match(line)
        if not line.strip():
            continue
        if entry is None:
            break
        label = int(entry.group(1) or entry.group(2) or entry.group(3))
        entries.setdefault(label, entry.group(4))
        cut = position
    if cut > 0 and _HEADING.match(lines[cut - 1]):
        cut -= 1
    if not entries:
        raise RagError('no numbered source list at the end of the text: add lines like [1] DOC_ID "quoted text"')
    answer = "\n".join(lines[:cut]).strip()
    sentences = split_marked(answer)
    if not sentences:
        raise RagError("the text has a source list but no answer sentences before it")
    sources = {label: resolve(parse_source_entry(label, body), index) for label, body in sorted(entries.items())}
    return _cited_sentences(sentences, sources)


def parse_check_input(raw: str, index: Index) -> list[CitedSentence]:
    """Sentences with located evidence from any of the three formats (detected from the content)."""
    stripped = raw.strip()
    if not stripped:
        raise RagError("the input is empty: give an answer JSON, or text with [n] markers and a source list")
    if stripped[0] in "{[":
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise RagError(f"the input looks like JSON but does not parse ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(data, dict):
            raise RagError('the JSON must be an object: our answer JSON or {"answer": str, "citations": [...]}')
        if "sentences" in data:
            return sentences_from_record(data, index)
        if "answer" in data:
            return sentences_from_quotes(data, index)
        raise RagError(
            "the JSON has neither 'sentences' nor 'answer': give our answer JSON or {\"answer\", \"citations\"}"
        )
    return sentences_from_text(raw, index)


def read_input(source: str) -> str:
    """The text of FILE, or of standard input for '-'."""
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    if not path.is_file():
        raise RagError(f"no file {source}: give a file to check, or '-' to read standard input")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise RagError(f"{source} is not UTF-8 text: save it as UTF-8") from None
