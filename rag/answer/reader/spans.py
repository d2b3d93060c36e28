"""Candidate short answers inside one parsed sentence: entities, noun phrases, names, numbers, words.

Spans are trimmed of what an answer never starts or ends with ("more than 40" -> "40", "its
neighbours'" -> "neighbours"), and a currency sign before a number is kept ("$5 billion").
"""

from __future__ import annotations

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


def _trim(doc, start: int, end: int, floor: int) -> tuple[int, int]:
    def noise_at_start(t) -> bool:
        return (
            t.lower_ in LEADING_NOISE or t.is_punct or (t.pos_ in ("DET", "PRON") and not t.is_title) or t.tag_ == "POS"
        )

    while start < end and noise_at_start(doc[start]):
        start += 1
    while end > start and (
        (doc[end - 1].is_punct and doc[end - 1].text not in ("%", ")")) or doc[end - 1].tag_ == "POS"
    ):
        end -= 1
    if start > floor and doc[start - 1].text in CURRENCY:
        start -= 1
    return start, end


def candidate_spans(sentence) -> dict[tuple[int, int], str]:
    """(first token, end token) -> label for the candidate answers in a spaCy sentence span.

    An entity's label wins over a noun phrase's for the same tokens.
    """
    found: dict[tuple[int, int], str] = {}
    doc = sentence.doc
    low, high = sentence.start, sentence.end

    def add(start: int, end: int, label: str, entity: bool = False) -> None:
        start, end = _trim(doc, start, end, low)
        if start < end and end - start <= MAX_TOKENS and any(ch.isalnum() for ch in doc[start:end].text):
            if entity:
                found[(start, end)] = label
            else:
                found.setdefault((start, end), label)

    for entity in sentence.ents:
        add(entity.start, entity.end, entity.label_, entity=True)
    for chunk in sentence.noun_chunks:
        if doc[chunk.end - 1].pos_ == "PRON":
            continue
        add(chunk.start, chunk.end, "NP")
        # the head with its modifiers, and alone: "six-foot long great white shark" -> "great white shark", "shark"
        root = chunk.root.i
        first = root
        while (
            first - 1 >= chunk.start
            and doc[first - 1].dep_ in ("compound", "amod", "nmod")
            and doc[first - 1].pos_ in ("NOUN", "PROPN", "ADJ")
        ):
            first -= 1
        add(first, root + 1, "NP")
        add(root, root + 1, "NP")
    i = low
    while i < high:
        token = doc[i]
        if token.pos_ == "PROPN":
            j = i
            while j < high and doc[j].pos_ == "PROPN":
                j += 1
            add(i, j, "PROPN")
            i = j
            continue
        if token.like_num:
            j = i + 1 + (i + 1 < high and doc[i + 1].text in ("%", "percent"))
            add(i, j, "NUM")
        elif token.pos_ in ("ADJ", "NOUN") and token.is_alpha and not token.is_stop:
            add(i, i + 1, "WORD")
        i += 1
    return found
