"""The ``reader`` answerer: the best-ranked candidate short answer, the sentence that holds it, and the
calibrated probability that it is right as the answer's score.

"Why" and "how" questions (no "how many/much …") get the sentence without a forced entity. Yes/no
questions get "yes" or "no" with the sentence that decides it, or abstain (``yes_no``).
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.answer.question import parsed_question
from rag.answer.reader.agreement import add_group_features, add_relative_features
from rag.answer.reader.context import add_context_features
from rag.answer.reader.features import Occurrence, Sentence, sentence_occurrences
from rag.answer.reader.model import ReaderModel, confidence_inputs, load_reader
from rag.answer.reader.questions import AskedFor, asked_for
from rag.answer.reader.reading import passage_sentences, rarity
from rag.answer.reader.span_head import SpanHead, in_background, load_span_head, reads_asked
from rag.answer.reader.vectors import StaticVectors, TypeMatcher
from rag.answer.reader.yes_no import UNDECIDED, Claim, Decision, decide, yes_no_claim
from rag.budget import check_time_budget
from rag.check.checker import shared_judge
from rag.check.judge import LexicalEmbeddingJudge
from rag.records import (
    Abstention,
    Answer,
    AnswerSentence,
    Citation,
    Passage,
    ReaderCandidate,
    ReaderFeatures,
    YesNoFeatures,
)
from rag.search.embedding import FAST_PATH_MAX_TEXTS

if TYPE_CHECKING:
    from rag.search.embedding import Embedder
    from rag.search.store import Index

SENTENCE_ANSWERS = {"why", "how"}  # answered by a sentence, not an entity
SHOWN_CANDIDATES = 3
# The sentences closest to a yes/no question, one of which may decide it: a fixed few (not tuned), since
# every further sentence is one more chance for a sentence that merely shares the claim's words to pass.
DECIDING = 3
FAST_BATCH = FAST_PATH_MAX_TEXTS
READS = 10  # passages the model was fitted on (eval/train_reader.py --k)


@dataclass(frozen=True)
class Ranking:
    """The reader's view of a question over its passages: what it asks, every candidate occurrence, and
    each candidate string's best (score, occurrence), best first."""

    asked: AskedFor
    occurrences: list[Occurrence]
    scores: list[float]  # the model's, one per occurrence
    best_of: list[tuple[float, Occurrence]]
    best_passage_score: float


@lru_cache(maxsize=16)
def _question_vector(embedder: Embedder, question: str) -> np.ndarray:
    """The question's vector, once a question: the sentence similarities and the calibration read it."""
    return embedder.encode_query(question)


@dataclass
class ReaderAnswerer:
    """Answers with the sentence holding the best candidate short answer."""

    embedder: Embedder
    name: str = "reader"
    model: ReaderModel | None = None
    min_passages: int = READS
    # How a sentence is compared with the question: "model" (the transformer, as retrieval does) or
    # "static" (mean word-piece vectors, no transformer at question time; see docs/answers.md);
    # empty: as the shipped model was fitted.
    sentence_vectors: str = ""
    # Passages the span head reads (``span_head``); None: as many as the shipped model was fitted with.
    span_reads: int | None = None
    # The span head that reads; None: the shipped one (eval/train_reader.py passes the fold heads).
    head: SpanHead | None = None
    _static: StaticVectors | None = field(default=None, repr=False)
    _types: TypeMatcher | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._static = StaticVectors(self.embedder)
        self._types = TypeMatcher(self.embedder)

    @property
    def judge(self) -> LexicalEmbeddingJudge:
        """The support judge that decides yes/no questions: the one the LLM answerer's checks share."""
        return shared_judge(self.embedder)[0]

    def prepare(self, index: Index) -> None:
        """Loads the model, the parser and the vectors now rather than on the first question."""
        self.model = self.model or load_reader()
        asked_for(parsed_question("Who wrote this?"))
        assert self._static is not None and self._types is not None
        self._static.encode(["warm"])
        self._types.label_fit("person")
        if self.span_head_reads():
            self.span_head.read("Who won?", [Passage("warm-up", 0, 0, 15, "Nobody won it.", 0.0, 1)])
        self.judge.claim_facts("The talks did end")  # the judge made now, not on the first yes/no question
        rarity(index)

    def read(self, question: str, passages: list[Passage], index: Index) -> tuple[AskedFor, list[Occurrence]]:
        """The question's analysis and every candidate occurrence in the passages, with all features."""
        q = asked_for(parsed_question(question))
        reads = self.span_head_reads()
        reading = self.span_head.start_reading(question, passages, reads) if reads else None
        # on the head's worker, while the features are computed here (remembered for ``probability``)
        question_vector = in_background(lambda: _question_vector(self.embedder, question))
        found = []
        for passage in passages:
            check_time_budget()
            found += [(passage, offset, span) for offset, span in passage_sentences(index, passage)]
        if not found:
            return q, []
        similarities = self._similarities(question_vector, question, [span.text for _, _, span in found])
        idf = rarity(index)
        occurrences: list[Occurrence] = []
        for (passage, offset, span), similarity in zip(found, similarities):
            start = offset + span.start_char
            sentence = Sentence(span, start, offset + span.end_char, offset, passage, float(similarity))
            occurrences += sentence_occurrences(q, sentence, idf)
        self._add_meaning(q, occurrences)
        if reading is not None:
            reading.result().add_features(occurrences)
        add_group_features(occurrences, q.words)
        add_context_features(occurrences, question, q.lemmas, lambda doc_id: index.documents[doc_id].title, idf)
        add_relative_features(occurrences)
        return q, occurrences

    @property
    def span_head(self) -> SpanHead:
        return self.head or load_span_head(self.embedder.path / "tokenizer.json")

    def span_head_reads(self) -> int:
        """Passages the span head reads: ``span_reads`` when set, else ``RAG_SPAN_READS``, else as the
        fitted reader was fitted."""
        if self.span_reads is not None:
            return self.span_reads
        return reads_asked(int((self.model or load_reader()).card.get("span_reads", 0)))

    def _similarities(self, question_vector: Future[np.ndarray], question: str, sentences: list[str]):
        assert self._static is not None
        mode = self.sentence_vectors or (self.model or load_reader()).card.get("sentence_vectors", "model")
        if mode == "static":
            table = self._static.encode([*sentences, question])
            return table[:-1] @ table[-1]
        # in batches the question encoder takes (no sentence-transformers at question time)
        vectors = [
            self.embedder.encode_cached(sentences[i : i + FAST_BATCH]) for i in range(0, len(sentences), FAST_BATCH)
        ]
        return np.concatenate(vectors) @ question_vector.result()

    def _add_meaning(self, q: AskedFor, occurrences: list[Occurrence]) -> None:
        assert self._static is not None and self._types is not None
        texts = list(dict.fromkeys(o.text for o in occurrences))
        if not texts:
            return
        phrase = q.type_phrase
        asked = [q.text, phrase] if phrase else [q.text]
        table = self._static.encode(texts + asked)
        candidates, question_vector = table[: len(texts)], table[len(texts)]
        to_question = dict(zip(texts, (float(v) for v in candidates @ question_vector)))
        to_type = dict(zip(texts, (float(v) for v in candidates @ table[-1]))) if phrase else {}
        label_fit = self._types.label_fit(phrase) if phrase else {}
        for o in occurrences:
            o.features["cand_q_sim"] = to_question[o.text]
            o.features["cand_type_sim"] = to_type.get(o.text, 0.0)
            o.features["type_label_sim"] = label_fit.get(o.label, 0.0)

    def rank(self, question: str, passages: list[Passage], index: Index) -> Ranking:
        """Every candidate occurrence scored by the model, and the strings ranked by their best occurrence."""
        model = self.model or load_reader()
        q, occurrences = self.read(question, passages, index)
        scores = [float(s) for s in model.score([o.features for o in occurrences])] if occurrences else []
        groups: dict[str, list[tuple[float, Occurrence]]] = defaultdict(list)
        for score, o in zip(scores, occurrences):
            groups[o.norm].append((score, o))
        ranked = sorted(groups.values(), key=lambda g: max(s for s, _ in g), reverse=True)
        best_of = [max(g, key=lambda pair: pair[0]) for g in ranked]
        return Ranking(q, occurrences, scores, best_of, max((p.score for p in passages), default=0.0))

    def probability(self, question: str, ranking: Ranking, chosen: tuple[float, Occurrence]) -> float:
        """The calibrated probability that ``chosen`` (a score and an occurrence) is the right short answer,
        were it given as the answer: the calibration's inputs with it in first place, the other strings after."""
        model = self.model or load_reader()
        score, occurrence = chosen
        others = [s for s, o in ranking.best_of if o.norm != occurrence.norm]
        sentence = str(occurrence.sentence.span)
        cosine = float(self.embedder.encode_cached([sentence])[0] @ _question_vector(self.embedder, question))
        every = [o.features for o in ranking.occurrences]
        inputs = confidence_inputs([score, *others], occurrence.features, ranking.best_passage_score, cosine, every)
        return model.probability(inputs)

    def answer(self, question: str, passages: list[Passage], index: Index) -> Answer:
        """The best candidate's sentence, cited, with the candidate as the short answer (yes/no: ``_yes_no``)."""
        ranking = self.rank(question, passages, index)
        q = ranking.asked
        if not ranking.occurrences:
            return Answer(
                question, (), tuple(passages), answerer=self.name, abstention=Abstention("no candidate answer")
            )
        if q.yes_no:
            return self._yes_no(question, ranking.occurrences, passages)
        probability = self.probability(question, ranking, ranking.best_of[0])
        best = ranking.best_of[0][1]
        sentence = best.sentence
        citation = Citation(best.doc_id, sentence.start, sentence.end, str(sentence.span), sentence.passage.rank)
        shown = tuple(ReaderCandidate(o.text, o.label, round(s, 4)) for s, o in ranking.best_of[:SHOWN_CANDIDATES])
        features = ReaderFeatures(q.kind, q.type_phrase, shown, round(probability, 4))
        return Answer(
            question,
            (AnswerSentence(citation.text, (citation,)),),
            tuple(passages),
            short_answer=None if q.kind in SENTENCE_ANSWERS else listed(best) if q.plural else best.text,
            score=round(probability, 4),
            answerer=self.name,
            features=features,
        )

    def decide_yes_no(self, question: str, sentences: list[str]) -> Decision:
        """Whether one of ``sentences`` decides a yes/no question: "yes", "no" or undecided (``yes_no``)."""
        return self._decide(yes_no_claim(parsed_question(question)), sentences)

    def _decide(self, claim: Claim | None, sentences: list[str]) -> Decision:
        if claim is None:
            return Decision(None, reason=UNDECIDED)
        judge, lock = shared_judge(self.embedder)
        with lock:  # the judge is shared with the LLM answerer's checks, across the app's threads
            return decide(claim, sentences, judge, judge.thresholds)

    def _yes_no(self, question: str, occurrences: list[Occurrence], passages: list[Passage]) -> Answer:
        """ "yes" or "no" with the sentence that decides it, or an abstention (see ``yes_no``)."""
        closest: dict[tuple[str, int], Sentence] = {}
        for o in sorted(occurrences, key=lambda o: o.features["sent_sim"] + o.features["sent_overlap"], reverse=True):
            closest.setdefault((o.doc_id, o.sentence.start), o.sentence)
        sentences = list(closest.values())[:DECIDING]
        claim = yes_no_claim(parsed_question(question))
        decision = self._decide(claim, [str(s.span) for s in sentences])
        features = YesNoFeatures(claim.text if claim is not None else "", round(decision.score, 4))
        if decision.answer is None:
            abstention = Abstention(decision.reason)
            return Answer(question, (), tuple(passages), answerer=self.name, abstention=abstention, features=features)
        sentence = sentences[decision.sentence]
        citation = Citation(
            sentence.passage.doc_id, sentence.start, sentence.end, str(sentence.span), sentence.passage.rank
        )
        # The score is the judge's support for the answer given, not the ranker's probability (which is
        # about a candidate string, meaningless for a yes or a no). It is at least the judge's "supported"
        # cut-off (fitted on WiCE), above the reader's abstention threshold: whether to answer is the
        # judge's decision.
        return Answer(
            question,
            (AnswerSentence(citation.text, (citation,)),),
            tuple(passages),
            short_answer=decision.answer,
            score=features.support,
            answerer=self.name,
            features=features,
        )


@lru_cache(maxsize=4)
def shared_reader(embedder: Embedder) -> ReaderAnswerer:
    """One reader per embedder for the whole process (its caches of parses and vectors are shared by the
    ``reader`` answerer and the LLM answerer's relevance check)."""
    return ReaderAnswerer(embedder)


def listed(best: Occurrence) -> str:
    """The candidate with the items coordinated with it: "Algeria" -> "Algeria, Greece and Vietnam"."""
    span: Any = best.sentence.span
    offset = best.sentence.paragraph_start
    tokens = span.doc.char_span(best.start - offset, best.end - offset)
    if tokens is None:
        return best.text
    conjuncts = [t for t in tokens.root.conjuncts if span.start <= t.i < span.end]
    if not conjuncts:
        return best.text
    first = min([tokens.start, *(t.left_edge.i for t in conjuncts)])
    last = max([tokens.end, *(t.right_edge.i + 1 for t in conjuncts)])
    return str(span.doc[first:last].text)
