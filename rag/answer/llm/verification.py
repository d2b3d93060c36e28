"""Verifying one sentence of an LLM reply: is it supported by the passages it cites, or else by another one?

A sentence goes through ``rag.check.checker.CitationChecker`` against the passages it cites (text addressed
to an AI left out, see ``rag.answer.llm.injection``). When they do not support it, or it cites nothing,
each other retrieved passage is tried alone: a small model often cites the wrong number for a true
sentence, or forgets the marker, and the passage that supports it best becomes its citation, recorded as a
re-attribution ("cited [2], supported by [4]"; "uncited, supported by [4]"). Only a sentence no passage
supports is removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rag.answer.llm.injection import split_statements
from rag.answer.llm.reply import ReplySentence, missing_codes, missing_names
from rag.budget import check_time_budget
from rag.check.checker import CitationChecker, shared_judge
from rag.records import (
    AnswerSentence,
    Citation,
    CitedSentence,
    Evidence,
    IrrelevantSentence,
    Passage,
    Reattribution,
    RemovedSentence,
    SentenceVerdict,
)
from rag.text import clip

if TYPE_CHECKING:
    from rag.search.embedding import Embedder
    from rag.search.store import Index

KEEP_VERDICTS = ("supported",)
NOT_ELSEWHERE = "no other retrieved passage supports it"
NOT_ANYWHERE = "no retrieved passage supports it"


@dataclass(frozen=True)
class Checked:
    """A reply sentence after the checker: kept (with citations) or removed (with reasons)."""

    source: ReplySentence
    verdict: str  # a checker verdict, or "declined"
    score: float
    reasons: tuple[str, ...] = ()
    citations: tuple[Citation, ...] = ()
    supported_by: tuple[int, ...] = ()  # set when re-attributed: the passages that support it instead
    relevance: float | None = None  # how well it answers the question (supported sentences only)
    answers: bool = True  # False: supported, but no answer to the question (listed apart)

    @property
    def supported(self) -> bool:
        return bool(self.citations)

    @property
    def kept(self) -> bool:
        """Shown as (part of) the answer: supported, and it answers the question."""
        return self.supported and self.answers

    def irrelevant(self) -> IrrelevantSentence | None:
        """The record of this sentence in ``Answer.irrelevant``, when it is supported but no answer."""
        if not self.supported or self.answers:
            return None
        return IrrelevantSentence(self.source.text, self.relevance or 0.0, self.citations)

    def reattribution(self) -> Reattribution | None:
        """The citation change, when the sentence is supported by other passages than the model cited."""
        if not self.supported_by:
            return None
        return Reattribution(self.source.text, self.source.labels, self.supported_by)

    def removed(self) -> RemovedSentence:
        """The record of this sentence in ``Answer.removed``."""
        return RemovedSentence(self.source.text, self.verdict, tuple(self.reasons), tuple(self.source.labels))

    def event(self, position: int) -> dict[str, Any]:
        """The streaming event for this sentence."""
        return {
            "type": "sentence",
            "index": position,
            "kept": self.kept,
            "text": self.source.text,
            "verdict": self.verdict,
            "score": round(self.score, 4),
            "sentence": AnswerSentence(self.source.text, self.citations) if self.kept else None,
            "removed": None if self.supported or self.verdict == "declined" else self.removed(),
            "irrelevant": self.irrelevant(),
            "reattributed": self.reattribution() if self.kept else None,
        }


def _rank_of(evidence: Evidence, passages: dict[int, Passage], labels: tuple[int, ...]) -> int | None:
    """The cited passage that holds the evidence span."""
    for label in labels:
        p = passages.get(label)
        if p is not None and p.doc_id == evidence.doc_id and p.start <= evidence.start and evidence.end <= p.end:
            return label
    return None


@dataclass
class SentenceVerifier:
    """Checks reply sentences against the retrieved passages (see the module docstring).

    Args:
        embedder: the shared embedder, used by the citation checker.
        keep: verdicts that keep a sentence (default: only "supported").
    """

    embedder: Embedder
    keep: tuple[str, ...] = KEEP_VERDICTS
    _checker: tuple[Index, CitationChecker] | None = field(default=None, repr=False)
    _judge: Any = field(default=None, repr=False)
    _lock: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._judge, self._lock = shared_judge(self.embedder)

    def checker(self, index: Index) -> CitationChecker:
        """The citation checker for this index (the judge and its caches are shared, see ``rag.check.checker.shared_judge``)."""
        if self._checker is None or self._checker[0] is not index:
            self._checker = (index, CitationChecker(index, self.embedder, judge=self._judge))
        return self._checker[1]

    def verify(self, sentence: ReplySentence, passages: list[Passage], index: Index) -> Checked:
        """Checks one reply sentence against the passages it cites, then, when they do not support it (or it
        cites none), against each other retrieved passage."""
        if sentence.declined:
            return Checked(sentence, "declined", 0.0, ("the model said the passages do not answer",))
        check_time_budget()
        by_rank = {p.rank: p for p in passages}
        with self._lock:
            checked = self._check(sentence, sentence.labels, by_rank, index)
            if checked.kept:
                return checked
            others = [p.rank for p in passages if p.rank not in sentence.labels]
            found = [self._check(sentence, (rank,), by_rank, index) for rank in others]
            best = max((c for c in found if c.kept), key=lambda c: c.score, default=None)
        if best is None:
            elsewhere = NOT_ELSEWHERE if sentence.labels else NOT_ANYWHERE
            return Checked(sentence, checked.verdict, checked.score, (*checked.reasons, elsewhere))
        ranks = tuple(dict.fromkeys(c.passage_rank for c in best.citations if c.passage_rank is not None))
        return Checked(sentence, best.verdict, best.score, best.reasons, best.citations, ranks)

    def _check(
        self, sentence: ReplySentence, labels: tuple[int, ...], by_rank: dict[int, Passage], index: Index
    ) -> Checked:
        """The checker's verdict on the sentence against the passages ``labels`` (with their citations when
        they support it)."""
        cited, cited_labels, problems, ignored = [], [], [], []
        for label in labels:
            p = by_rank.get(label)
            if p is None:
                problems.append(f"citation [{label}] is out of range: there are {len(by_rank)} passages")
                continue
            split = split_statements(p.text)
            ignored += [
                f"passage [{label}] holds an instruction or text addressed to an AI, which is not "
                f'evidence: "{clip(p.text[a:b], 80)}"'
                for a, b in split.flagged
            ]
            if not split.runs:
                problems.append(f"passage [{label}] states nothing (only instructions)")
            # A passage without such text is cited whole, exactly as the extractive answerer's are checked.
            spans = [(0, len(p.text))] if not split.flagged else split.runs
            for a, b in spans:
                cited.append(Evidence(p.doc_id, p.start + a, p.start + b, p.text[a:b]))
                cited_labels.append(label)
        item = CitedSentence(sentence.text, tuple(cited), tuple(cited_labels), tuple(problems))
        checker = self.checker(index)
        verdict = checker.check_sentence(item, propose=False)
        if verdict.verdict in self.keep:
            # The checker reads "S-303" as a name it may not know, and misses names spaCy does not tag
            # ("Kofman is …"): a designator or name the cited text lacks is a wrong fact or a wrong citation.
            texts = [e.text for e in cited]
            missing = [f"code not in the cited text: {c}" for c in missing_codes(sentence.text, texts)]
            missing += [f"name not in the cited text: {n}" for n in missing_names(sentence.text, texts)]
            if missing:
                return Checked(sentence, "unsupported", verdict.score, (*missing, *verdict.reasons))
        if verdict.verdict not in self.keep or verdict.evidence is None:
            return Checked(sentence, verdict.verdict, verdict.score, (*verdict.reasons, *ignored))
        citations = self._citations(verdict, item, by_rank, checker)
        if not self._shown_citations_support(sentence.text, citations, checker):
            # The passage supported it, but no span the checker picked does alone (the support spreads over
            # sentences): cite what was verified, so that `rag check` of the answer shown agrees.
            citations = tuple(Citation(e.doc_id, e.start, e.end, e.text, n) for e, n in zip(cited, cited_labels))
        return Checked(sentence, verdict.verdict, verdict.score, verdict.reasons, citations)

    def _shown_citations_support(self, text: str, citations: tuple[Citation, ...], checker: CitationChecker) -> bool:
        """Whether the citations as shown support the sentence, as `rag check` (and `rag eval`) will judge it."""
        evidence = tuple(Evidence(c.doc_id, c.start, c.end, c.text) for c in citations)
        labels = tuple(c.passage_rank or 0 for c in citations)
        return checker.check_sentence(CitedSentence(text, evidence, labels), propose=False).verdict in self.keep

    def _citations(
        self, verdict: SentenceVerdict, item: CitedSentence, by_rank: dict[int, Passage], checker: CitationChecker
    ) -> tuple[Citation, ...]:
        """The best evidence span first; for a sentence citing several passages, the best span of each other
        passage that supports it at least in part (a citation that adds nothing is dropped)."""
        best = verdict.evidence
        assert best is not None
        citations = [Citation(best.doc_id, best.start, best.end, best.text, _rank_of(best, by_rank, item.labels))]
        others = [label for label in dict.fromkeys(item.labels) if label != citations[0].passage_rank]
        for label in others:
            evidence = tuple(e for cited, e in zip(item.labels, item.cited) if cited == label)
            alone = checker.check_sentence(CitedSentence(item.text, evidence, (label,) * len(evidence)), propose=False)
            e = alone.evidence
            helps = alone.verdict in ("supported", "partially_supported")
            if (
                helps
                and e is not None
                and all((c.doc_id, c.start, c.end) != (e.doc_id, e.start, e.end) for c in citations)
            ):
                citations.append(Citation(e.doc_id, e.start, e.end, e.text, label))
        return tuple(citations)
