"""HTML views of answers, check reports and articles for the browser app.

Pure functions: records in, HTML strings out, so they are testable without a
browser. Every piece of corpus or user text goes through ``html.escape``
before it is placed in markup; highlights are built by escaping the text
before, inside and after each span separately, so offsets always refer to the
raw text and a ``<script>`` in an article is shown, never run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from rag.app.panels import irrelevant_html, reattributed_html, removed_html
from rag.records import Answer, CheckReport, Citation, Document, Evidence, Passage, SentenceVerdict

CONTEXT_CHARS = 200  # article text shown around a check's evidence span
VERDICT_LABELS = {
    "supported": "supported",
    "partially_supported": "partially supported",
    "unsupported": "unsupported",
    "uncited": "no citation",
}

# ---------------------------------------------------------------------------
# Highlighting


@dataclass(frozen=True)
class Span:
    """A span to mark, in the same coordinates as the text's offset."""

    start: int
    end: int
    id: str | None = None


def marked(text: str, spans: Iterable[Span] = (), offset: int = 0) -> str:
    """Escaped ``text`` with each span wrapped in ``<mark>``.

    ``offset`` is the position of ``text`` in its document, so spans use document offsets; spans are
    clipped to the text, and one overlapping an earlier span is dropped.

    Example: marked("a <b> c", [Span(2, 5)]) -> 'a <mark>&lt;b&gt;</mark> c'
    """
    pieces: list[str] = []
    position = 0
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        start, end = max(span.start - offset, position), min(span.end - offset, len(text))
        if start >= end:
            continue
        anchor = f' id="{escape(span.id)}"' if span.id else ""
        pieces += [escape(text[position:start]), f"<mark{anchor}>", escape(text[start:end]), "</mark>"]
        position = end
    pieces.append(escape(text[position:]))
    return "".join(pieces)


def emphasised(text: str, phrase: str | None) -> str:
    """Escaped ``text`` with the first occurrence of ``phrase`` in ``<strong>``.

    Only as whole words: a short answer that is no quote ("no" to a yes/no question) is not marked
    inside another word ("not").
    """
    found = re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text) if phrase else None
    if found is None:
        return escape(text)
    at, end = found.span()
    return f"{escape(text[:at])}<strong>{escape(text[at:end])}</strong>{escape(text[end:])}"


def _title(documents: Mapping[str, Document], doc_id: str) -> str:
    doc = documents.get(doc_id)
    return doc.title if doc is not None and doc.title else doc_id


# ---------------------------------------------------------------------------
# Answers


def _card_id(number: int) -> str:
    return f"rag-cite-{number}"


def citation_card(number: int, citation: Citation, passage: Passage | None, documents: Mapping[str, Document]) -> str:
    """One cited passage with the cited sentence marked, and the whole article with the span marked and anchored."""
    label = citation.passage_rank or number
    doc = documents.get(citation.doc_id)
    cited = Span(citation.start, citation.end)
    if passage is not None and passage.doc_id == citation.doc_id:
        body = marked(passage.text, [cited], passage.start)
    else:
        body = marked(citation.text, [Span(0, len(citation.text))])
    article = ""
    if doc is not None:
        anchor = f"rag-span-{number}"
        article = (
            '<details class="rag-article"><summary>Open the whole article at the cited span</summary>'
            f'<div class="rag-text">{marked(doc.text, [Span(citation.start, citation.end, anchor)])}</div></details>'
        )
    return (
        f'<div class="rag-card" id="{_card_id(number)}">'
        f"<h4>[{label}] {escape(_title(documents, citation.doc_id))} "
        f'<span class="rag-score">{escape(citation.doc_id)} · characters {citation.start}–{citation.end}</span></h4>'
        f'<div class="rag-text">{body}</div>{article}</div>'
    )


def passage_list(passages: Sequence[Passage], documents: Mapping[str, Document], cited: Sequence[Citation] = ()) -> str:
    """The retrieved passages with rank, score and title; cited sentences marked."""
    items = []
    for p in passages:
        spans = [Span(c.start, c.end) for c in cited if c.doc_id == p.doc_id and p.start <= c.start < p.end]
        items.append(
            f'<div class="rag-card rag-passage"><h4>[{p.rank}] {escape(_title(documents, p.doc_id))} '
            f'<span class="rag-score">score {p.score:.4f} · {escape(p.doc_id)} · characters {p.start}–{p.end}</span></h4>'
            f'<div class="rag-text">{marked(p.text, spans, p.start)}</div></div>'
        )
    return "".join(items) or "<p>No passage matches the question.</p>"


def streaming_html(events: Sequence[Mapping[str, Any]]) -> str:
    """The answer while a streaming answerer writes it: the sentences verified so far with their [n], and
    those removed so far."""
    kept = [e["sentence"] for e in events if e.get("kept") and e.get("sentence") is not None]
    removed = [e["removed"] for e in events if e.get("removed") is not None]
    changes = [e["reattributed"] for e in events if e.get("kept") and e.get("reattributed") is not None]
    aside = [e["irrelevant"] for e in events if e.get("irrelevant") is not None]
    sentences = " ".join(
        f'{escape(s.text)}<span class="rag-cite">{"".join(f"[{c.passage_rank}]" for c in s.citations)}</span>'
        for s in kept
    )
    return (
        f'<div class="rag-answer"><p class="rag-sentences">{sentences}</p><div class="rag-meta">the model is '
        f"writing; each sentence appears once the citation checker supports it…</div>"
        f"{reattributed_html(changes)}{irrelevant_html(aside)}{removed_html(removed)}</div>"
    )


def answer_html(answer: Answer, documents: Mapping[str, Document], seconds: float | None = None) -> str:
    """The whole Ask view: answer (or abstention), citation cards, retrieved passages, time taken."""
    took = f" in {seconds:.2f} s" if seconds is not None else ""
    meta = (
        f'<div class="rag-meta">answered by {escape(answer.answerer)}{took} · confidence {answer.score:.2f} · '
        f"{len(answer.passages)} passages</div>"
    )
    if answer.abstained:
        message = answer.message
        return (
            f'<div class="rag-answer"><div class="rag-abstain">{escape(message)}</div>{meta}'
            f"{irrelevant_html(answer.irrelevant)}{removed_html(answer.removed)}"
            f"<h3>Closest passages</h3>{passage_list(answer.passages, documents)}</div>"
        )
    citations = answer.citations
    number_of = {(c.doc_id, c.start, c.end): i for i, c in enumerate(citations, start=1)}
    by_rank = {p.rank: p for p in answer.passages}
    sentences = []
    for position, sentence in enumerate(answer.sentences):
        markers = "".join(
            f'<a class="rag-cite" href="#{_card_id(n)}" data-card="{_card_id(n)}" '
            f'title="{escape(_title(documents, c.doc_id))}">[{c.passage_rank or n}]</a>'
            for c in sentence.citations
            for n in [number_of[(c.doc_id, c.start, c.end)]]
        )
        text = emphasised(sentence.text, answer.short_answer) if position == 0 else escape(sentence.text)
        sentences.append(f"{text}{markers}")
    short = (
        f'<div class="rag-short">Short answer: <strong>{escape(answer.short_answer)}</strong></div>'
        if answer.short_answer
        else ""
    )
    cards = "".join(
        citation_card(n, c, by_rank.get(c.passage_rank or -1), documents) for n, c in enumerate(citations, start=1)
    )
    return (
        f'<div class="rag-answer">{short}<p class="rag-sentences">{" ".join(sentences)}</p>{meta}'
        f"{reattributed_html(answer.reattributed)}{irrelevant_html(answer.irrelevant)}{removed_html(answer.removed)}"
        f"<h3>Citations</h3>{cards}"
        f"<h3>Retrieved passages</h3>{passage_list(answer.passages, documents, citations)}</div>"
    )


# ---------------------------------------------------------------------------
# Check reports


def _evidence_in_context(evidence: Evidence, documents: Mapping[str, Document], label: str) -> str:
    doc = documents.get(evidence.doc_id)
    if doc is None:
        body = marked(evidence.text, [Span(0, len(evidence.text))])
    else:
        start = max(0, evidence.start - CONTEXT_CHARS)
        end = min(len(doc.text), evidence.end + CONTEXT_CHARS)
        body = ("…" if start else "") + marked(doc.text[start:end], [Span(evidence.start, evidence.end)], start)
        body += "…" if end < len(doc.text) else ""
    return (
        f"<div><em>{escape(label)}</em>: {escape(_title(documents, evidence.doc_id))} "
        f'<span class="rag-score">{escape(evidence.doc_id)} · characters {evidence.start}–{evidence.end}</span>'
        f'<div class="rag-text">{body}</div></div>'
    )


def verdict_html(verdict: SentenceVerdict, documents: Mapping[str, Document]) -> str:
    """One sentence of a check: badge coloured by verdict, score, reasons, supporting span in context."""
    kind = verdict.verdict if verdict.verdict in VERDICT_LABELS else "uncited"
    cited = " ".join(f"[{n}]" for n in verdict.cited)
    parts = [
        f'<div class="rag-verdict {kind}"><span class="rag-badge">{escape(VERDICT_LABELS[kind])}</span> '
        f'<span class="rag-score">score {verdict.score:.2f} {escape(cited)}</span>'
        f"<div>{escape(verdict.sentence)}</div>"
    ]
    if verdict.reasons:
        parts.append("<ul>" + "".join(f"<li>{escape(r)}</li>" for r in verdict.reasons) + "</ul>")
    if verdict.evidence is not None:
        label = "supporting span" if kind == "supported" else "closest cited span"
        parts.append(_evidence_in_context(verdict.evidence, documents, label))
    if verdict.proposed is not None:
        parts.append(_evidence_in_context(verdict.proposed, documents, "a passage that would support it"))
    parts.append("</div>")
    return "".join(parts)


def report_html(report: CheckReport, documents: Mapping[str, Document], seconds: float | None = None) -> str:
    """The Check view: a summary line and one coloured block per sentence."""
    counts: dict[str, int] = {}
    for v in report.verdicts:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    summary = ", ".join(f"{n} {VERDICT_LABELS.get(k, k)}" for k, n in counts.items())
    took = f" · {seconds:.2f} s" if seconds is not None else ""
    head = (
        f'<div class="{"rag-ok" if report.ok else "rag-error"}">{escape(summary)}</div>'
        f'<div class="rag-meta">citation recall {report.citation_recall:.2f} · '
        f"citation precision {report.citation_precision:.2f}{took}</div>"
    )
    return head + "".join(verdict_html(v, documents) for v in report.verdicts)


# ---------------------------------------------------------------------------
# Corpus


def articles_html(documents: Mapping[str, Document], chunk_counts: Mapping[str, int]) -> str:
    """A table of the articles (title, id, chunks), sorted by title."""
    rows = "".join(
        f"<tr><td>{escape(doc.title)}</td><td><code>{escape(doc.id)}</code></td><td>{chunk_counts.get(doc.id, 0)}</td></tr>"
        for doc in sorted(documents.values(), key=lambda d: (d.title.lower(), d.id))
    )
    return (
        f'<table class="rag-articles"><caption>{len(documents)} articles</caption>'
        f"<thead><tr><th>Title</th><th>Id</th><th>Chunks</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def message_html(text: str, ok: bool = True) -> str:
    """A one-line status message, escaped."""
    return f'<div class="{"rag-ok" if ok else "rag-error"}">{escape(text)}</div>'
