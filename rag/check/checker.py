"""Citation checking: is each answer sentence supported by the text it cites?

A cited passage may be long: the checker scores every window of one or two
consecutive sentences inside it with the support judge (``rag.check.judge``) and
reports the best one as the evidence span; a sentence citing nothing, or
nothing that supports it, may get a proposed citation found by the retriever.
Verdicts come with ALCE citation recall and precision.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache, cachedmethod

from rag.budget import check_time_budget
from rag.check.formats import sentences_from_record
from rag.check.judge import LexicalEmbeddingJudge, SupportJudge
from rag.check.thresholds import VERDICTS, Thresholds
from rag.ingest.sentences import sentence_spans
from rag.records import CheckReport, CitedSentence, Evidence, SentenceVerdict
from rag.text import clip, words

if TYPE_CHECKING:
    from rag.search.embedding import Embedder
    from rag.search.retrieval import Retriever
    from rag.search.store import Index

MAX_WINDOWS = 24  # longer cited texts are pre-filtered to the windows sharing most words with the claim


# ---------------------------------------------------------------------------
# Windows of sentences inside cited text


def overlap_terms(text: str) -> set[str]:
    """Cheap word set used to pre-filter long evidence (no model involved)."""
    return {w for w in words(text) if len(w) > 2 or w.isdigit()}


def sentence_windows(sentences: Sequence[tuple[int, int]], size: int = 2) -> list[tuple[int, int]]:
    """Index ranges [i, j) of one or ``size`` consecutive sentences. Example: 3 sentences -> (0,1) (1,2) (2,3) (0,2) (1,3)."""
    windows = [(i, i + 1) for i in range(len(sentences))]
    for width in range(2, size + 1):
        windows += [(i, i + width) for i in range(len(sentences) - width + 1)]
    return windows


def prefilter(claim: str, texts: list[str], keep: int = MAX_WINDOWS) -> list[int]:
    """Indices of the ``keep`` texts sharing most words with the claim (all of them when few)."""
    if len(texts) <= keep:
        return list(range(len(texts)))
    claim_terms = overlap_terms(claim)
    shared = [len(claim_terms & overlap_terms(t)) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: (-shared[i], i))
    return sorted(order[:keep])


# ---------------------------------------------------------------------------
# The checker


class CitationChecker:
    """Checks answer sentences against the passages they cite, and proposes better citations."""

    def __init__(
        self,
        index: Index,
        embedder: Embedder,
        judge: SupportJudge | None = None,
        retriever: Retriever | None = None,
        thresholds: Thresholds | None = None,
    ):
        self.index = index
        self.embedder = embedder
        self.thresholds = thresholds or getattr(judge, "thresholds", None) or Thresholds.load()
        self.judge = judge or LexicalEmbeddingJudge(embedder, self.thresholds)
        self.retriever = retriever
        self._sentences: LRUCache[tuple[str, str], list[tuple[int, int]]] = LRUCache(256)
        self._lock = threading.RLock()

    # -- evidence windows ----------------------------------------------------

    def _document_sentences(self, doc_id: str) -> list[tuple[int, int]] | None:
        doc = self.index.documents.get(doc_id) if self.index is not None else None
        return None if doc is None else self._sentences_of(doc_id, doc.content_hash, doc.text)

    @cachedmethod(
        lambda self: self._sentences,
        lock=lambda self: self._lock,
        key=lambda self, doc_id, digest, text: (doc_id, digest),
    )
    def _sentences_of(self, doc_id: str, digest: str, text: str) -> list[tuple[int, int]]:
        """Sentence spans of a document (cached by id and content)."""
        return sentence_spans(text)

    def _window_parts(self, evidence: Evidence) -> list[tuple[Evidence, tuple[str, ...]]]:
        """Windows of 1–2 consecutive sentences inside the cited span (clipped to it), with their sentences."""
        spans = self._document_sentences(evidence.doc_id)
        if spans is not None:
            text, offset = self.index.documents[evidence.doc_id].text, 0
            inside = [
                (max(s, evidence.start), min(e, evidence.end))
                for s, e in spans
                if s < evidence.end and e > evidence.start
            ]
        else:  # a span of a document we do not hold: split the quoted text itself
            text, offset = evidence.text, evidence.start
            inside = [(offset + s, offset + e) for s, e in sentence_spans(evidence.text)]
        inside = [(s, e) for s, e in inside if e > s and any(ch.isalnum() for ch in text[s - offset : e - offset])]
        result = []
        for i, j in sentence_windows(inside):
            start, end = inside[i][0], inside[j - 1][1]
            parts = tuple(text[s - offset : e - offset] for s, e in inside[i:j])
            result.append((Evidence(evidence.doc_id, start, end, text[start - offset : end - offset]), parts))
        return result or [(evidence, (evidence.text,))]

    def windows(self, evidence: Evidence) -> list[Evidence]:
        """Every window of 1–2 consecutive sentences inside the cited span, clipped to it."""
        return [w for w, _ in self._window_parts(evidence)]

    def _supports(self, claim: str, cited: Sequence[Evidence]) -> tuple[float, Evidence | None, tuple[str, ...]]:
        check_time_budget()
        windows = [w for e in cited for w in self._window_parts(e)]
        kept = prefilter(claim, [w.text for w, _ in windows])
        context = "\n\n".join(e.text for e in cited) if len(kept) < len(windows) else None
        windows = [windows[i] for i in kept]
        if not windows:
            return 0.0, None, ("no cited text",)
        judge_parts = getattr(self.judge, "judge_parts", None)
        if judge_parts is not None:
            score, best, reasons = judge_parts(claim, [parts for _, parts in windows], context)
        else:
            score, best, reasons = self.judge.judge(claim, [w.text for w, _ in windows])
        return score, windows[best][0] if 0 <= best < len(windows) else None, reasons

    # -- attribution search --------------------------------------------------

    def propose(self, sentence: str, k: int = 5) -> tuple[Evidence | None, float]:
        """The indexed window that best supports ``sentence`` (None when nothing reaches "partial")."""
        if self.retriever is None:
            return None, 0.0
        passages = self.retriever.search(sentence, k=k)
        cited = [Evidence(p.doc_id, p.start, p.end, p.text) for p in passages]
        if not cited:
            return None, 0.0
        best: tuple[Evidence | None, float] = (None, 0.0)
        # Each passage is judged on its own: a proposal is one citation, not a combination.
        for evidence in cited:
            score, window, _ = self._supports(sentence, [evidence])
            if window is not None and score > best[1]:
                best = (window, score)
        return best if best[1] >= self.thresholds.partial else (None, best[1])

    # -- verdicts --------------------------------------------------------------

    def check_sentence(
        self, sentence: str | CitedSentence, cited: Sequence[Evidence] = (), propose: bool = True
    ) -> SentenceVerdict:
        """The verdict on one sentence given the evidence it cites (all citations together)."""
        item = (
            sentence
            if isinstance(sentence, CitedSentence)
            else CitedSentence(sentence, tuple(cited), tuple(range(1, len(cited) + 1)))
        )
        labels = item.labels or tuple(range(1, len(item.cited) + 1))
        if not item.cited and not item.problems:
            proposed, _ = self.propose(item.text) if propose else (None, 0.0)
            return SentenceVerdict(item.text, "uncited", 0.0, None, ("the sentence cites nothing",), (), proposed)
        score, evidence, reasons = self._supports(item.text, item.cited) if item.cited else (0.0, None, ())
        verdict = self.thresholds.verdict(score)
        if item.problems:
            # As in ALCE, a citation that points nowhere makes the sentence unsupported.
            verdict, reasons = "unsupported", (*item.problems, *reasons)
        elif verdict == "supported":
            reasons = ()
        proposed = None
        if verdict == "unsupported" and propose:
            proposed, _ = self.propose(item.text)
        return SentenceVerdict(item.text, verdict, float(score), evidence, tuple(reasons), labels, proposed)

    def _citation_precision_counts(self, item: CitedSentence, joint_supported: bool) -> tuple[int, int]:
        """(precise citations, citations) of one sentence, ALCE semantics."""
        n = max(len(item.labels), len(item.cited))
        if not joint_supported or item.problems:
            return 0, n
        if len(item.cited) == 1:
            return 1, 1
        precise = 0
        for i, evidence in enumerate(item.cited):
            alone, _, _ = self._supports(item.text, [evidence])
            if alone >= self.thresholds.supported:
                precise += 1
                continue
            rest = [e for j, e in enumerate(item.cited) if j != i]
            without, _, _ = self._supports(item.text, rest)
            # Irrelevant: does not support alone, and the others support without it.
            precise += 0 if without >= self.thresholds.supported else 1
        return precise, n

    def check_answer(
        self, sentences: Sequence[CitedSentence | tuple[str, Sequence[Evidence]]], propose: bool = True
    ) -> CheckReport:
        """Verdicts for every sentence, with ALCE citation recall (share of sentences whose citations
        jointly support them) and precision (share of citations that are needed or support alone)."""
        items = [
            s if isinstance(s, CitedSentence) else CitedSentence(s[0], tuple(s[1]), tuple(range(1, len(s[1]) + 1)))
            for s in sentences
        ]
        prepare = getattr(self.judge, "prepare", None)
        if prepare is not None:  # one batch for the whole answer instead of one per sentence
            parts = [
                part for item in items for e in item.cited for _, window in self._window_parts(e) for part in window
            ]
            prepare([item.text for item in items], list(dict.fromkeys(parts)))
        verdicts, supported, precise, total = [], 0, 0, 0
        for item in items:
            check_time_budget()
            verdict = self.check_sentence(item, propose=propose)
            verdicts.append(verdict)
            joint = verdict.verdict == "supported"
            supported += joint
            p, n = self._citation_precision_counts(item, joint)
            precise, total = precise + p, total + n
        recall = supported / len(items) if items else 0.0
        precision = precise / total if total else 0.0
        return CheckReport(tuple(verdicts), recall, precision)

    def check_record(self, answer: dict[str, Any], propose: bool = True) -> CheckReport:
        """Checks an answer in our JSON form (``rag.records.Answer.to_dict()``)."""
        return self.check_answer(sentences_from_record(answer, self.index), propose=propose)


def verdict_counts(report: CheckReport) -> dict[str, int]:
    """How many sentences got each verdict."""
    return {v: sum(1 for s in report.verdicts if s.verdict == v) for v in VERDICTS}


def report_table(report: CheckReport) -> str:
    """A per-sentence table for people: verdict, score, evidence span, reasons, proposals."""
    lines = []
    for number, v in enumerate(report.verdicts, start=1):
        cited = "".join(f"[{c}]" for c in v.cited) or "-"
        lines.append(f"{number:>2}. {v.verdict:<19} {v.score:5.2f}  {cited}  {v.sentence}")
        if v.evidence is not None:
            lines.append(
                f"      evidence {v.evidence.doc_id} [{v.evidence.start}:{v.evidence.end}]: {clip(v.evidence.text, 110)}"
            )
        for reason in v.reasons:
            lines.append(f"      - {reason}")
        if v.proposed is not None:
            p = v.proposed
            lines.append(f"      proposed {p.doc_id} [{p.start}:{p.end}]: {clip(p.text, 110)}")
    lines.append("")
    lines.append(
        f"citation recall {report.citation_recall:.2f}, citation precision {report.citation_precision:.2f}; "
        + ("every sentence is supported" if report.ok else "some sentences are not supported")
    )
    return "\n".join(lines)


@lru_cache(maxsize=4)
def shared_judge(embedder: Embedder) -> tuple[LexicalEmbeddingJudge, threading.Lock]:
    """One support judge per embedder, with the lock that guards it: its analyses and vectors are cached
    by text, so every answerer in the process (LLM verification, yes/no questions) gains from the others."""
    return LexicalEmbeddingJudge(embedder), threading.Lock()
