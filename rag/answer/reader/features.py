"""One feature row per candidate occurrence: what the candidate is, and how the question's words,
type and verbs sit around it in its sentence.

Names are the model's columns (``rag/data/reader.json`` lists them in order); categorical columns hold
an index into a fixed tuple (question type, entity label, dependency).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from rag.answer.reader.questions import QUESTION_TYPES, ROLES, AskedFor
from rag.answer.reader.spans import LABELS, SentenceTokens, candidate_spans
from rag.records import Passage
from rag.text import normalize_answer

DEPENDENCIES = (
    "nsubj", "nsubjpass", "dobj", "pobj", "appos", "compound", "attr", "conj", "poss", "npadvmod", "ROOT", "other",
)  # fmt: skip
CATEGORICAL = ("qtype", "label", "dep", "wh_role")
NEAR, FAR = 5, 10  # token windows around a candidate in which question words count
MAX_HOPS = 50


@dataclass(frozen=True)
class Sentence:
    """A sentence of a retrieved passage: its parse, where it lies in the document, its passage."""

    span: object  # spaCy Span
    start: int  # document offsets
    end: int
    paragraph_start: int
    passage: Passage
    similarity: float  # cosine with the question


@dataclass
class Occurrence:
    """One candidate answer at one place in the passages, with its feature row."""

    text: str
    norm: str  # normalised as the scorer normalises answers (occurrences of one string are grouped)
    label: str
    doc_id: str
    start: int  # document offsets of the candidate
    end: int
    sentence: Sentence
    features: dict[str, float] = field(default_factory=dict)


def _role(dep: str) -> str:
    if dep in ("nsubj", "nsubjpass"):
        return "subject"
    if dep in ("dobj", "attr", "oprd"):
        return "object"
    return "pobj" if dep == "pobj" else "other"


def _governing_verb(token):
    hops = 0
    while token.pos_ not in ("VERB", "AUX") and token.head.i != token.i and hops < MAX_HOPS:
        token, hops = token.head, hops + 1
    return token.lemma_.lower() if token.pos_ in ("VERB", "AUX") else ""


def sentence_occurrences(q: AskedFor, sentence: Sentence, rarity: Callable[[str], float]) -> list[Occurrence]:
    """The candidates of one sentence with their per-occurrence features."""
    span = sentence.span
    doc = span.doc  # type: ignore[attr-defined]
    tokens = SentenceTokens.of(span)
    offset = sentence.paragraph_start
    weight_total = sum(rarity(lemma) for lemma in q.lemmas) or 1.0
    lemmas = tokens.lemma
    matches = [i for i, lemma in enumerate(lemmas) if lemma in q.lemmas]
    overlap = sum(rarity(lemma) for lemma in set(lemmas) & q.lemmas) / weight_total
    focus_overlap = len(set(lemmas) & q.focus) / (len(q.focus) or 1)
    passage = sentence.passage
    found = []
    for (first, end), label in candidate_spans(span, tokens).items():
        a, b = first - tokens.first, end - tokens.first  # positions in the sentence
        text = tokens.span_text(a, b)
        norm = normalize_answer(text)
        if not norm:
            continue
        words = [i for i in range(a, b) if not tokens.punct[i]]
        outside = [i for i in matches if not (a <= i < b)]

        def within(width: int, a: int = a, b: int = b, outside: list[int] = outside) -> float:
            near = [i for i in outside if a - width <= i < a or b <= i < b + width]
            return sum(rarity(lemmas[i]) for i in near) / weight_total

        distances = [min(abs(i - a), abs(i - (b - 1))) for i in outside]
        root = doc[first:end].root
        verb = _governing_verb(root)
        window = set(lemmas[max(0, a - 3) : b + 3])
        features = {
            "qtype": float(QUESTION_TYPES.index(q.kind)),
            "label": float(LABELS.index(label) if label in LABELS else LABELS.index("NP")),
            "dep": float(DEPENDENCIES.index(root.dep_) if root.dep_ in DEPENDENCIES else DEPENDENCIES.index("other")),
            "wh_role": float(ROLES.index(q.role)),
            "in_q": sum(1 for i in words if tokens.lower[i] in q.words or lemmas[i] in q.lemmas) / (len(words) or 1),
            "n_tok": float(len(words)),
            "has_digit": float(any(ch.isdigit() for ch in text)),
            "cap_ratio": sum(1 for i in words if tokens.text[i][:1].isupper()) / (len(words) or 1),
            "is_propn": float(root.pos_ == "PROPN"),
            "sent_sim": sentence.similarity,
            "sent_overlap": overlap,
            "focus_overlap": focus_overlap,
            "p_rank": float(passage.rank),
            "p_score": float(passage.score),
            "sent_pos": float(sentence.start),  # news puts the main facts first
            "min_dist": float(min(distances, default=99)),
            "w5": within(NEAR),
            "w10": within(FAR),
            "prox": sum(rarity(lemmas[i]) / (1 + d) for i, d in zip(outside, distances)) / weight_total,
            "verb_in_q": float(verb in q.lemmas),
            "head_in_q": float(root.head.lemma_.lower() in q.lemmas),
            "tn_near": float(bool(q.type_noun) and q.type_noun in window),
            "root_is_tn": float(bool(q.type_noun) and root.lemma_.lower() == q.type_noun),
            "q_nsent": float(q.sentences),
            "has_tn": float(bool(q.type_noun)),
            "qverb_match": float(verb in q.verbs),
            "role_match": float(verb in q.verbs and _role(root.dep_) == q.role),
        }
        start = offset + tokens.idx[a]
        found.append(Occurrence(text, norm, label, passage.doc_id, start, start + len(text), sentence, features))
    return found


def smoothed_idf(document_frequency: int, documents: int) -> float:
    """How rare a word is: log((N + 1) / (df + 1))."""
    return math.log((documents + 1) / (document_frequency + 1))
