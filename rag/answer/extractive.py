"""Grounded answers: pick the corpus sentences that answer a question, cite them, or abstain.

The default answerer is extractive and fully offline. Every answer sentence is a
sentence of a retrieved passage, quoted verbatim, and its citation gives the
character span of that sentence in the document's normalised text, so
``doc.text[c.start:c.end] == c.text`` and the span lies inside passage
``c.passage_rank``. No extractive-QA or entailment model exists offline
(see ``../shared/MODELS.md``), so the answerer combines

* the embedding model: cosine between question and sentence;
* lexical coverage: how many of the question's content words the sentence holds;
* the question's type (``rag.answer.analysis``): a "when" question needs a DATE,
  a "how much" question a MONEY amount, and the sentence that holds it must also
  hold the names of the question's wh-clause.

When the best sentence leaves question content uncovered (a second clause about
another country, say) a second or third sentence, possibly from another article,
is added for the missing part.

``Answer.score`` is the answerer's confidence; ``rag.answer.pipeline`` compares it
with the calibrated abstention threshold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rag.answer.analysis import Mention, SentenceInfo, sentences_in
from rag.answer.question import QuestionInfo, analyse_question
from rag.budget import check_time_budget
from rag.records import Abstention, Answer, AnswerSentence, Citation, ExtractiveFeatures, Passage
from rag.text import fold_name, words_match

if TYPE_CHECKING:
    from rag.search.embedding import Embedder
    from rag.search.store import Index

MAX_SENTENCES = 3
# A supporting sentence must add a missing name, or this many missing content words …
MIN_NEW_WORDS = 2
# … and be at least this close to the question (cosine), so it is on topic.
MIN_SUPPORT_SIMILARITY = 0.25


# ---------------------------------------------------------------------------
# Candidate sentences


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage, scored against the question."""

    sentence: SentenceInfo
    passage: Passage
    similarity: float  # cosine between question and sentence embeddings
    matched: frozenset[str]  # question content words and names found in the sentence
    coverage: float  # share of the question's content words found in the sentence
    slot_coverage: float  # share of the wh-clause names found in the sentence
    short: Mention | None  # an entity of the expected type, when the question wants one

    @property
    def slot(self) -> float:
        """How well the sentence fills the question's answer slot (typed entity beside the wh-clause names)."""
        return self.slot_coverage

    @property
    def selection(self) -> float:
        """Score used to rank sentences (not the confidence)."""
        return 0.5 * self.similarity + 0.3 * self.coverage + 0.2 * self.slot

    def citation(self) -> Citation:
        s = self.sentence
        return Citation(s.doc_id, s.start, s.end, s.text, self.passage.rank)


def _matches(word: str, sentence: SentenceInfo) -> bool:
    return word in sentence.lemmas or sentence.has_name(word)


def _question_terms(q: QuestionInfo) -> frozenset[str]:
    """Everything an answer should account for: content lemmas and names."""
    return q.content | frozenset(q.slot_names) | frozenset(q.other_names)


_YEAR = re.compile(r"\b\d{4}\b")
_LIST_GLUE = re.compile(r"\s*(?:,|,?\s+and|,?\s+or)\s+(?:the\s+)?$")


def _short_answer(q: QuestionInfo, sentence: SentenceInfo, matched: frozenset[str]) -> Mention | None:
    """The entity of the expected type that best fits the question in the sentence.

    Preferred, in order: an entity that depends on a verb of the question ("When did the bridge
    reopen?": "reopened on Friday"), the label the question type ranks first, the entity nearest to
    the question's words.
    """
    if not q.expected:
        return None
    asked = _question_terms(q)
    options = []
    for m in sentence.mentions:
        if m.label not in q.expected or (q.year and not _YEAR.search(m.text)):
            continue
        words = [fold_name(w) for w in m.text.split() if w.lower() not in {"the", "a", "an", "of", "and"}]
        # An entity the question already names is not its answer ("Who is the president of Turkey?" ≠ Turkey).
        if words and all(any(words_match(w, a) for a in asked) for w in words):
            continue
        if words and fold_name(m.text.replace(" ", "")) in q.acronyms:  # "U.S." when the question says "United States"
            continue
        # "How many refugees": a number that counts something else ("the two countries") does not answer.
        if q.kind == "how many" and m.label == "CARDINAL" and m.governor not in q.content:
            continue
        options.append(m)
    if not options:
        return None
    text = sentence.text.lower()
    anchors = [text.find(w) + sentence.start for w in matched if len(w) > 2 and text.find(w) >= 0]

    def distance(m: Mention) -> int:
        return min((abs(a - (m.start + m.end) // 2) for a in anchors), default=0)

    best = min(options, key=lambda m: (m.verb not in q.content, q.expected.index(m.label), distance(m), m.start))
    return _extend_list(best, sentence, q) if q.plural else best


def _extend_list(first: Mention, sentence: SentenceInfo, q: QuestionInfo) -> Mention:
    """'Algeria' -> 'Algeria, Greece, … and Vietnam' when the question asks for several things."""
    typed = [m for m in sentence.mentions if m.label in q.expected]
    runs: list[list[Mention]] = []
    for m in typed:
        glue = sentence.text[runs[-1][-1].end - sentence.start : m.start - sentence.start] if runs else ""
        if runs and _LIST_GLUE.match(glue + " "):
            runs[-1].append(m)
        else:
            runs.append([m])
    run = next((r for r in runs if first in r), [first])
    start, end = run[0].start, run[-1].end
    return replace(first, text=sentence.text[start - sentence.start : end - sentence.start], start=start, end=end)


# ---------------------------------------------------------------------------
# The extractive answerer


@dataclass
class ExtractiveAnswerer:
    """Answers with 1–3 verbatim corpus sentences and, for factoid questions, an entity span inside them."""

    embedder: Embedder
    max_sentences: int = MAX_SENTENCES
    name: str = "extractive"

    def prepare(self, index: Index) -> None:
        """Analyses and embeds every sentence of the index ahead of time (optional: otherwise done on first use)."""
        texts = []
        for doc in index.documents.values():
            texts += [s.text for s in sentences_in(doc.id, doc.text, 0, len(doc.text))]
        self.embedder.encode_cached(texts)

    def candidates(self, question: str, passages: list[Passage], index: Index) -> list[Candidate]:
        """Every sentence of the passages, scored against the question."""
        q = analyse_question(question)
        found: list[tuple[SentenceInfo, Passage]] = []
        for p in passages:
            check_time_budget()
            doc = index.documents[p.doc_id]
            found += [(s, p) for s in sentences_in(p.doc_id, doc.text, p.start, p.end)]
        if not found:
            return []
        vectors = self.embedder.encode_cached([s.text for s, _ in found])
        similarities = vectors @ self.embedder.encode_query(question)
        terms = _question_terms(q)
        result = []
        for (s, p), sim in zip(found, similarities):
            matched = frozenset(w for w in terms if _matches(w, s))
            short = _short_answer(q, s, matched)
            result.append(
                Candidate(
                    s,
                    p,
                    float(sim),
                    matched,
                    _coverage(q, matched, short is not None),
                    _slot(q, s, matched, short),
                    short,
                )
            )
        return result

    def answer(self, question: str, passages: list[Passage], index: Index) -> Answer:
        """The best sentence, supporting sentences for what it leaves out, and a confidence score."""
        q = analyse_question(question)
        candidates = self.candidates(question, passages, index)
        if not candidates:
            return Answer(
                question,
                (),
                tuple(passages),
                score=0.0,
                answerer=self.name,
                abstention=Abstention("no sentence in the retrieved passages"),
            )
        # The answer sentence must hold the answer: when the question wants an entity,
        # prefer on-topic sentences that have one.
        pool = [c for c in candidates if c.short is not None and c.similarity >= MIN_SUPPORT_SIMILARITY]
        primary = max(pool or candidates, key=lambda c: (c.selection, -c.passage.rank))
        chosen = [primary]
        terms = _question_terms(q)
        missing = set(terms - primary.matched)
        names = set(q.slot_names) | set(q.other_names)
        while missing and len(chosen) < self.max_sentences:
            best, best_key = None, None
            for c in candidates:
                if any(c.sentence is x.sentence for x in chosen) or c.similarity < MIN_SUPPORT_SIMILARITY:
                    continue
                gain = c.matched & missing
                if not (gain & names) and len(gain) < MIN_NEW_WORDS:
                    continue
                key = (len(gain & names), len(gain), c.similarity)
                if best_key is None or key > best_key:
                    best, best_key = c, key
            if best is None:
                break
            chosen.append(best)
            missing -= best.matched
        # Keep document order within one article, the primary first.
        ordered = [
            primary,
            *sorted(
                chosen[1:],
                key=lambda c: (c.sentence.doc_id != primary.sentence.doc_id, c.sentence.doc_id, c.sentence.start),
            ),
        ]
        union = frozenset().union(*(c.matched for c in ordered))
        support = len(q.content & union) / len(q.content) if q.content else 0.0
        features = ExtractiveFeatures(
            question_type=q.kind,
            expected=tuple(q.expected),
            similarity=round(primary.similarity, 4),
            support=round(support, 4),
            slot=round(primary.slot, 4),
            missing=tuple(sorted(terms - union)),
        )
        score = confidence(primary.similarity, support, primary.slot)
        sentences = tuple(AnswerSentence(c.sentence.text, (c.citation(),)) for c in ordered)
        short = primary.short.text if primary.short is not None else None
        return Answer(
            question, sentences, tuple(passages), short_answer=short, score=score, answerer=self.name, features=features
        )


def _coverage(q: QuestionInfo, matched: frozenset[str], typed: bool) -> float:
    """Share of the question's content words found; the type noun counts as found when its entity is."""
    content = q.content - {q.type_noun} if typed and q.type_noun else q.content
    return len(content & matched) / len(content) if content else 0.0


def _slot(q: QuestionInfo, s: SentenceInfo, matched: frozenset[str], short: Mention | None) -> float:
    """How well the sentence fills the question's answer slot, in [0, 1].

    0 when the question wants an entity of some type and the sentence has none, or
    lacks the role it asks about. Otherwise the share of the wh-clause's names present, a name counting
    fully when it shares a clause with the answer entity and half when it is elsewhere in the sentence:
    "China already has S-400s, while India … signed a $5 billion contract" does not give China's price.
    """
    if q.expected and short is None:
        return 0.0
    if any(r not in matched for r in q.roles):
        return 0.0
    if not q.slot_names:
        return 1.0
    clause = short.clause if short is not None and short.clause >= 0 else None
    total = 0.0
    for name in q.slot_names:
        if name not in matched:
            continue
        total += 1.0 if clause is None or clause in s.clauses_of(name) or _inside(name, short) else 0.5
    return total / len(q.slot_names)


def _inside(name: str, short: Mention | None) -> bool:
    return short is not None and any(words_match(name, fold_name(w)) for w in short.text.split())


def confidence(similarity: float, support: float, slot: float) -> float:
    """Confidence in [0, 1] that the answer is supported.

    The mean of question–sentence similarity and content-word support, scaled down
    when the sentence lacks the answer slot (no entity of the expected type next to
    the wh-clause's names): a sentence that talks about the right topic but gives,
    say, India's contract value for a question about China's must not pass.
    """
    base = 0.5 * max(0.0, min(1.0, similarity)) + 0.5 * support
    return round(base * (0.25 + 0.75 * slot), 4)
