"""Candidate short answers inside one parsed sentence: entities, noun phrases, names, numbers, words.

Spans are trimmed of what an answer never starts or ends with ("more than 40" -> "40", "its
neighbours'" -> "neighbours"), and a currency sign before a number is kept ("$5 billion").
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

LABELS = (
    "PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE",
    "DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL", "NP", "PROPN", "NUM", "WORD",
)  # fmt: skip
MAX_TOKENS = 12
CURRENCY = {"$", "£", "€", "¥"}
LEADING_NOISE = {
    "more", "than", "about", "nearly", "just", "at", "least", "most", "some", "over", "under", "almost",
    "around", "roughly", "estimated", "approximately", "up", "to", "only", "less", "fewer", "another",
    "an", "a", "the", "all", "its", "their", "his", "her", "this", "that", "these", "those",
}  # fmt: skip


@dataclass(frozen=True)
class SentenceTokens:
    """The token attributes the reader reads, taken from a spaCy sentence in one pass: spaCy makes a new
    Token object on every access, which was most of the reader's time. Lists are indexed by the token's
    position in the sentence (its index in the Doc minus ``first``)."""

    first: int
    source: str  # the sentence's text, from its first token
    text: tuple[str, ...]
    lower: tuple[str, ...]
    lemma: tuple[str, ...]  # lower-cased
    pos: tuple[str, ...]
    tag: tuple[str, ...]
    dep: tuple[str, ...]
    idx: tuple[int, ...]  # character offset in the Doc
    punct: tuple[bool, ...]
    title: tuple[bool, ...]
    like_num: tuple[bool, ...]
    alpha: tuple[bool, ...]
    stop: tuple[bool, ...]

    @classmethod
    def of(cls, sentence) -> SentenceTokens:
        rows = [
            (t.text, t.lower_, t.lemma_.lower(), t.pos_, t.tag_, t.dep_, t.idx, t.is_punct, t.is_title,
             t.like_num, t.is_alpha, t.is_stop, t.whitespace_)
            for t in sentence
        ]  # fmt: skip
        if not rows:
            return cls(sentence.start, "", *((),) * 12)
        *columns, spaces = zip(*rows)
        # Doc.text joins every token of the paragraph on each call: the sentence's own text is built here
        source = "".join(t + w for t, w in zip(columns[0], spaces))
        return cls(sentence.start, source, *columns)

    def span_text(self, a: int, b: int) -> str:
        """The text of sentence tokens [a, b) (given as positions in the sentence), spaces included."""
        origin = self.idx[0]
        return self.source[self.idx[a] - origin : self.idx[b - 1] - origin + len(self.text[b - 1])]


def noun_chunks(sentence) -> list[tuple[int, int, int]]:
    """(start, end, root) token indices of the noun chunks inside a sentence span."""
    return [c for c in _paragraph(sentence.doc)[1] if c[0] >= sentence.start and c[1] <= sentence.end]


def entities(sentence) -> list[tuple[int, int, str]]:
    """(start, end, label) of the named entities inside a sentence span."""
    return [e for e in _paragraph(sentence.doc)[0] if e[0] >= sentence.start and e[1] <= sentence.end]


def _paragraph(doc) -> tuple[list[tuple[int, int, str]], list[tuple[int, int, int]]]:
    """A Doc's entities and noun chunks as token indices. spaCy's ``Span.ents`` and ``Span.noun_chunks``
    walk the whole Doc for every sentence; here a Doc is walked once and the result kept while the Doc
    lives (stored Docs are cached by the index, so across questions too)."""
    found = _PARAGRAPHS.get(doc)
    if found is None:
        found = _PARAGRAPHS[doc] = (
            [(e.start, e.end, e.label_) for e in doc.ents],
            [(c.start, c.end, c.root.i) for c in doc.noun_chunks],
        )
    return found


# Beside the Doc, not in its user_data: that is serialised with it, and a Doc read must stay as it was stored.
_PARAGRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _trim(tokens: SentenceTokens, start: int, end: int) -> tuple[int, int]:
    """[start, end) as sentence positions, trimmed (see the module's docstring)."""

    def noise_at_start(i: int) -> bool:
        return (
            tokens.lower[i] in LEADING_NOISE
            or tokens.punct[i]
            or (tokens.pos[i] in ("DET", "PRON") and not tokens.title[i])
            or tokens.tag[i] == "POS"
        )

    while start < end and noise_at_start(start):
        start += 1
    while end > start and (
        (tokens.punct[end - 1] and tokens.text[end - 1] not in ("%", ")")) or tokens.tag[end - 1] == "POS"
    ):
        end -= 1
    if start > 0 and tokens.text[start - 1] in CURRENCY:
        start -= 1
    return start, end


def candidate_spans(sentence, tokens: SentenceTokens | None = None) -> dict[tuple[int, int], str]:
    """(first token, end token) -> label for the candidate answers in a spaCy sentence span; token
    indices are the Doc's. ``tokens``: the sentence's ``SentenceTokens`` when already taken.

    An entity's label wins over a noun phrase's for the same tokens.
    """
    tokens = SentenceTokens.of(sentence) if tokens is None else tokens
    low = sentence.start  # positions below are in the sentence; the keys are the Doc's indices
    found: dict[tuple[int, int], str] = {}

    def add(start: int, end: int, label: str, entity: bool = False) -> None:
        start, end = _trim(tokens, start, end)
        if start < end and end - start <= MAX_TOKENS and any(ch.isalnum() for t in tokens.text[start:end] for ch in t):
            if entity:
                found[(start + low, end + low)] = label
            else:
                found.setdefault((start + low, end + low), label)

    for entity_start, entity_end, label in entities(sentence):
        add(entity_start - low, entity_end - low, label, entity=True)
    for chunk_start, chunk_end, root in ((a - low, b - low, r - low) for a, b, r in noun_chunks(sentence)):
        if tokens.pos[chunk_end - 1] == "PRON":
            continue
        add(chunk_start, chunk_end, "NP")
        # the head with its modifiers, and alone: "six-foot long great white shark" -> "great white shark", "shark"
        first = root
        while (
            first - 1 >= chunk_start
            and tokens.dep[first - 1] in ("compound", "amod", "nmod")
            and tokens.pos[first - 1] in ("NOUN", "PROPN", "ADJ")
        ):
            first -= 1
        add(first, root + 1, "NP")
        add(root, root + 1, "NP")
    i, high = 0, len(tokens.text)
    while i < high:
        if tokens.pos[i] == "PROPN":
            j = i
            while j < high and tokens.pos[j] == "PROPN":
                j += 1
            add(i, j, "PROPN")
            i = j
            continue
        if tokens.like_num[i]:
            j = i + 1 + (i + 1 < high and tokens.text[i + 1] in ("%", "percent"))
            add(i, j, "NUM")
        elif tokens.pos[i] in ("ADJ", "NOUN") and tokens.alpha[i] and not tokens.stop[i]:
            add(i, i + 1, "WORD")
        i += 1
    return found
