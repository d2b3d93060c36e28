"""Publication dates of an index's documents, and which chunks a search as of a date may return.

A document is searchable as of a day when it was published on or before it, or carries no date (an
undated article is never hidden)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from rag.validation import as_date

if TYPE_CHECKING:
    from rag.search.store import Index

MAX_DAYS_KEPT = 64  # masks kept per index: one per question week in an evaluation, bounded all the same


class DocumentDates:
    """The dates of an index's documents, read once, and the chunk mask of each as-of day asked."""

    def __init__(self, index: Index):
        self.index = index
        self._dates: dict[str, date | None] | None = None
        self._allowed: dict[date, np.ndarray] = {}

    def of(self, doc_id: str) -> date | None:
        """The document's publication date; None when it has none or one that is not a date."""
        if self._dates is None:
            self._dates = {
                doc.id: as_date(doc.published) if doc.published else None for doc in self.index.documents.values()
            }
        return self._dates.get(doc_id)

    def allowed(self, as_of: date) -> np.ndarray:
        """Per chunk position: True when its document is undated or published on or before ``as_of``."""
        if as_of not in self._allowed:
            if len(self._allowed) >= MAX_DAYS_KEPT:
                self._allowed.clear()
            by_doc = {doc_id: (d := self.of(doc_id)) is None or d <= as_of for doc_id in self.index.documents}
            self._allowed[as_of] = np.fromiter((by_doc[c.doc_id] for c in self.index.chunks), bool, len(self.index))
        return self._allowed[as_of]
