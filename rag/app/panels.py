"""The panels under a generated answer that show what its verification did: citations corrected,
sentences listed apart as no answer, sentences removed as unsupported.

Pure functions: records in, escaped HTML out (``rag.app.views`` places them).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from rag.records import IrrelevantSentence, Reattribution, RemovedSentence


def _panel(kind: str, summary: str, items: list[str], opened: bool = True) -> str:
    """A collapsible list; ``items`` are HTML already escaped."""
    if not items:
        return ""
    return (
        f'<details class="rag-{kind}"{" open" if opened else ""}><summary>{escape(summary)}</summary>'
        f"<ul>{''.join(f'<li>{item}</li>' for item in items)}</ul></details>"
    )


def _note(text: str) -> str:
    return f'<span class="rag-score">{escape(text)}</span>'


def removed_html(removed: Sequence[RemovedSentence]) -> str:
    """The "Removed" panel: the sentences a verifying answerer (the LLM) dropped as unsupported, struck out,
    with the checker's verdict and reasons."""
    items = [
        f"<del>{escape(r.text)}</del> " + _note(r.verdict + (": " + "; ".join(r.reasons) if r.reasons else ""))
        for r in removed
    ]
    return _panel("removed", f"Removed: {len(removed)} sentence(s) not supported by the passages they cite", items)


def reattributed_html(changes: Sequence[Reattribution]) -> str:
    """The "Citations corrected" panel: sentences kept with another passage than the model cited (if any)."""
    items = [f"{escape(c.text)} {_note(c.describe())}" for c in changes]
    summary = f"Citations corrected: {len(changes)} sentence(s) cited with the passage that supports them"
    return _panel("reattributed", summary, items)


def irrelevant_html(aside: Sequence[IrrelevantSentence]) -> str:
    """The "Not an answer" panel: sentences the passages support that do not answer the question."""
    items = [f"{escape(a.text)} {_note(f'relevance {a.relevance:.2f}')}" for a in aside]
    summary = f"Not an answer to the question: {len(aside)} sentence(s) the passages support, listed apart"
    return _panel("irrelevant", summary, items, opened=False)
