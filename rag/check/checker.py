"""Citation checking: is each answer sentence supported by the text it cites?

No entailment model installs offline (../shared/MODELS.md), so the default judge,
``LexicalEmbeddingJudge``, combines deterministic checks (every number, date,
amount and name of the claim found in the cited text; content-word coverage by
lemma; negation agreement) with sentence-embedding similarity, weighted by a
logistic model whose weights and cut-offs were tuned on WiCE dev
(``rag/data/citation_thresholds.json``, written by ``bench/bench_wice_check.py``).
Any object with the ``SupportJudge.judge`` method can replace it, e.g. an NLI model.

A cited passage may be long: the checker scores every window of one or two
consecutive sentences inside it and reports the best one as the evidence span.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rag.check.claims import (
    NAME_LABELS,
    NEGATIONS,
    NameIndex,
    Quantity,
    check_quantities,
    extract_quantities,
    name_found,
    words,
)
from rag.budget import check_time_budget
from rag.records import Evidence
from rag.settings import DATA_DIR

if TYPE_CHECKING:
    from rag.search.embedding import Embedder
    from rag.search.store import Index
    from rag.search.retrieval import Retriever

THRESHOLDS_PATH = DATA_DIR / "citation_thresholds.json"
VERDICTS = ("supported", "partially_supported", "unsupported", "uncited")
MAX_WINDOWS = 24  # longer cited texts are pre-filtered to the windows sharing most words with the claim
JOINT_WINDOWS = 3  # coverage of the claim may come from up to this many windows together
CONTENT_POS = {"NOUN", "PROPN", "VERB", "ADJ", "NUM", "ADV"}
# Verbs too common to carry polarity on their own.
_LIGHT_VERBS = {"be", "have", "do", "say", "make", "get"}


# ---------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class SentenceVerdict:
    """The verdict on one sentence, the evidence that supports it best and why."""

    sentence: str
    verdict: str  # "supported" | "partially_supported" | "unsupported" | "uncited"
    score: float
    evidence: Evidence | None
    reasons: tuple[str, ...]
    cited: tuple[int, ...]
    proposed: Evidence | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sentence": self.sentence,
            "verdict": self.verdict,
            "score": round(self.score, 4),
            "evidence": self.evidence.to_dict() if self.evidence else None,
            "reasons": list(self.reasons),
            "cited": list(self.cited),
            "proposed": self.proposed.to_dict() if self.proposed else None,
        }


@dataclass(frozen=True)
class CitedSentence:
    """A sentence to check: its text, the evidence it cites, their labels ([n]) and citation problems."""

    text: str
    cited: tuple[Evidence, ...] = ()
    labels: tuple[int, ...] = ()
    problems: tuple[str, ...] = ()  # e.g. "citation [7] is out of range: there are 5 sources"


@dataclass(frozen=True)
class CheckReport:
    """Verdicts for every sentence plus ALCE-style citation recall and precision."""

    verdicts: tuple[SentenceVerdict, ...]
    citation_recall: float
    citation_precision: float

    @property
    def ok(self) -> bool:
        """True when every sentence is supported."""
        return bool(self.verdicts) and all(v.verdict == "supported" for v in self.verdicts)

    def table(self) -> str:
        """A per-sentence table for people: verdict, score, evidence span, reasons, proposals."""
        lines = []
        for number, v in enumerate(self.verdicts, start=1):
            cited = "".join(f"[{c}]" for c in v.cited) or "-"
            lines.append(f"{number:>2}. {v.verdict:<19} {v.score:5.2f}  {cited}  {v.sentence}")
            if v.evidence is not None:
                lines.append(f"      evidence {v.evidence.doc_id} [{v.evidence.start}:{v.evidence.end}]: {_clip(v.evidence.text)}")
            for reason in v.reasons:
                lines.append(f"      - {reason}")
            if v.proposed is not None:
                p = v.proposed
                lines.append(f"      proposed {p.doc_id} [{p.start}:{p.end}]: {_clip(p.text)}")
        lines.append("")
        lines.append(f"citation recall {self.citation_recall:.2f}, citation precision {self.citation_precision:.2f}; "
                     + ("every sentence is supported" if self.ok else "some sentences are not supported"))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "citation_recall": round(self.citation_recall, 4),
            "citation_precision": round(self.citation_precision, 4),
            "sentences": [v.to_dict() for v in self.verdicts],
        }


def _clip(text: str, n: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


# ---------------------------------------------------------------------------
# The judge


class SupportJudge(Protocol):
    """Scores how well evidence texts, taken together, support a claim."""

    def judge(self, claim: str, evidence_texts: list[str]) -> tuple[float, int, tuple[str, ...]]:
        """(score in [0, 1], index of the best single evidence text, reasons for a low score)."""
        ...


@dataclass(frozen=True)
class Thresholds:
    """Weights of the support score and the cut-offs between verdicts (tuned on WiCE dev)."""

    weights: dict[str, float]
    bias: float
    supported: float
    partial: float
    hard_cap: float  # scale (and ceiling) of the score when a number, date or name is missing or a negation disagrees

    @classmethod
    def load(cls, path: Path | None = None) -> Thresholds:
        data = json.loads((path or THRESHOLDS_PATH).read_text())
        return cls(
            {k: float(v) for k, v in data["weights"].items()},
            float(data["bias"]),
            float(data["supported"]),
            float(data["partial"]),
            float(data["hard_cap"]),
        )

    def verdict(self, score: float) -> str:
        if score >= self.supported:
            return "supported"
        return "partially_supported" if score >= self.partial else "unsupported"


@dataclass(frozen=True)
class ClaimFacts:
    """What is checked of a claim."""

    content: tuple[tuple[str, str, str], ...]  # (lemma, lower form, stem) of content words
    names: tuple[tuple[str, str], ...]  # (text, spaCy label)
    quantities: tuple[Quantity, ...]
    negated: frozenset[str]  # lemmas of words under a negation
    root: str  # lemma of the main verb, "" when none


@dataclass(frozen=True)
class EvidenceFacts:
    """What a claim is checked against, for one evidence text."""

    lemmas: tuple[str, ...]  # in text order, lower-cased
    terms: frozenset[str]  # lemmas, lower forms and stems
    names: NameIndex
    quantities: tuple[Quantity, ...]


@dataclass(frozen=True)
class Features:
    """The judge's measurements for one claim against a list of evidence texts."""

    similarity: float  # cosine of claim and best window
    coverage: float  # share of claim content words in the best window
    coverage_joint: float  # ... in the best few windows together
    names: float  # share of claim names found anywhere in the evidence
    quantities: float  # share of claim quantities found anywhere in the evidence
    negation: float  # 1.0 when the best window disagrees on negation
    best: int
    hard: bool  # a number, date or name missing, or negation disagreeing
    reasons: tuple[str, ...] = field(default=())

    def vector(self) -> dict[str, float]:
        return {
            "similarity": self.similarity,
            "coverage": self.coverage,
            "coverage_joint": self.coverage_joint,
            "names": self.names,
            "quantities": self.quantities,
            "negation": self.negation,
        }


class _LRU(OrderedDict):
    """A bounded dict, oldest entry dropped first.

    Callers read back what they just stored; under threads (the app) another
    caller may evict it in between, so ``put`` returns the value and lookups
    go through ``get_many`` which never raises.
    """

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self.lock = threading.RLock()

    def put(self, key, value):
        with self.lock:
            self[key] = value
            self.move_to_end(key)
            if len(self) > self.size:
                self.popitem(last=False)
        return value


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


class LexicalEmbeddingJudge:
    """Deterministic checks plus embedding similarity, combined by a small logistic model.

    Analyses of texts are cached by text, so a passage seen before costs nothing.
    """

    def __init__(self, embedder: Embedder, thresholds: Thresholds | None = None, cache_size: int = 4096):
        from rag.ingest.sentences import nlp

        self.embedder = embedder
        self.thresholds = thresholds or Thresholds.load()
        self.nlp = nlp()
        self.stemmer = _stemmer()
        self._claims: _LRU = _LRU(512)
        self._evidence: _LRU = _LRU(cache_size)

    def clear_cache(self) -> None:
        """Forgets every analysed text (for cold-start measurements)."""
        self._claims.clear()
        self._evidence.clear()
        self.embedder.clear_cache()

    # -- analysis ----------------------------------------------------------

    def claim_facts(self, claim: str) -> ClaimFacts:
        cached = self._claims.get(claim)
        if cached is not None:
            return cached
        doc = self.nlp(claim)
        content = tuple(
            (t.lemma_.lower(), t.lower_, self.stemmer.stemWord(t.lower_))
            for t in doc
            if t.pos_ in CONTENT_POS and not t.is_stop and any(ch.isalnum() for ch in t.text)
        )
        names = tuple((e.text, e.label_) for e in doc.ents if e.label_ in NAME_LABELS)
        negated = frozenset(
            t.head.lemma_.lower() for t in doc if t.dep_ == "neg" or (t.lower_ in NEGATIONS and t.dep_ in {"det", "neg"})
        )
        root = next((t.lemma_.lower() for t in doc if t.dep_ == "ROOT" and t.pos_ in {"VERB", "AUX"}), "")
        facts = ClaimFacts(content, names, tuple(extract_quantities(claim)), negated, root)
        self._claims.put(claim, facts)
        return facts

    def evidence_facts(self, texts: list[str]) -> list[EvidenceFacts]:
        """Lemmas, names and quantities of each text (cached by text)."""
        found = {t: self._evidence.get(t) for t in dict.fromkeys(texts)}
        missing = [t for t, facts in found.items() if facts is None]
        # Evidence needs lemmas only: the parser and NER are the slow parts of the pipeline.
        for text, doc in zip(missing, self.nlp.pipe(missing, disable=["parser", "ner"])):
            check_time_budget()
            lemmas = tuple(t.lemma_.lower() for t in doc)
            lowers = [t.lower_ for t in doc]
            terms = frozenset(lemmas) | frozenset(lowers) | frozenset(self.stemmer.stemWords(lowers))
            facts = EvidenceFacts(lemmas, terms, NameIndex.of(text), tuple(extract_quantities(text)))
            found[text] = self._evidence.put(text, facts)
        return [found[t] for t in texts]

    def vectors(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of the texts (the embedder's shared cache: the answerer embeds the same sentences)."""
        return self.embedder.encode_cached(texts)

    def prepare(self, claims: list[str], sentences: list[str]) -> None:
        """Analyses many claims and evidence sentences in batches (fewer model calls than one by one)."""
        self.evidence_facts(sentences)
        self.vectors(list(dict.fromkeys([*claims, *sentences])))
        for claim in claims:
            self.claim_facts(claim)

    def _composed(self, parts: list[tuple[str, ...]]) -> tuple[list[EvidenceFacts], np.ndarray]:
        """Facts and vectors of windows made of sentences, each sentence analysed once.

        A window's vector is the normalised sum of its sentences' vectors (mean pooling
        over sentences), so a two-sentence window costs no extra model call.
        """
        singles = list(dict.fromkeys(s for part in parts for s in part))
        facts = dict(zip(singles, self.evidence_facts(singles)))
        vectors = dict(zip(singles, self.vectors(singles)))
        composed, matrix = [], []
        for part in parts:
            if len(part) == 1:
                composed.append(facts[part[0]])
                matrix.append(vectors[part[0]])
                continue
            text = " ".join(part)
            composed.append(EvidenceFacts(
                tuple(lemma for s in part for lemma in facts[s].lemmas),
                frozenset().union(*(facts[s].terms for s in part)),
                NameIndex.of(text),
                tuple(q for s in part for q in facts[s].quantities),
            ))
            summed = np.sum([vectors[s] for s in part], axis=0)
            matrix.append(summed / max(float(np.linalg.norm(summed)), 1e-12))
        return composed, np.vstack(matrix)

    # -- measurements ------------------------------------------------------

    @staticmethod
    def _covered(claim: ClaimFacts, terms: frozenset[str]) -> list[bool]:
        return [lemma in terms or lower in terms or stem in terms for lemma, lower, stem in claim.content]

    @staticmethod
    def _negation_disagrees(claim: ClaimFacts, evidence: EvidenceFacts) -> str | None:
        def negated_at(i: int) -> bool:
            return any(lemma in NEGATIONS or lemma == "n't" for lemma in evidence.lemmas[max(0, i - 4) : i])

        for lemma in claim.negated:
            places = [i for i, l in enumerate(evidence.lemmas) if l == lemma]
            if places and not any(negated_at(i) for i in places):
                return f"negation differs: the claim negates '{lemma}', the cited text does not"
        root = claim.root
        if root and root not in claim.negated and root not in _LIGHT_VERBS:
            places = [i for i, l in enumerate(evidence.lemmas) if l == root]
            if places and all(negated_at(i) for i in places):
                return f"negation differs: the cited text negates '{root}', the claim does not"
        return None

    def features(self, claim: str, parts: list[tuple[str, ...]], context: str | None = None) -> Features:
        """Measures the claim against each evidence window (a tuple of sentences) and all of them together.

        ``context`` is the whole cited text when the windows are a pre-filtered part of it:
        names and quantities are looked for there.
        """
        facts = self.claim_facts(claim)
        evidence, matrix = self._composed(parts)
        similarity = matrix @ self.vectors([claim])[0]
        evidence_texts = [" ".join(p) for p in parts]
        n_content = max(1, len(facts.content))
        covered = [self._covered(facts, e.terms) for e in evidence]
        coverage = np.array([sum(c) / n_content if facts.content else 1.0 for c in covered])
        # Windows are ranked by meaning and wording alike; the weights are fixed, not tuned.
        ranking = np.argsort(-(0.5 * similarity + 0.5 * coverage), kind="stable")
        best = int(ranking[0])
        joint = np.any([covered[i] for i in ranking[:JOINT_WINDOWS]], axis=0) if facts.content else None
        coverage_joint = float(joint.mean()) if joint is not None else 1.0

        reasons: list[str] = []
        if context is not None:
            all_terms, all_quantities = NameIndex.of(context), extract_quantities(context)
        elif len(evidence) > 1:
            all_terms = NameIndex.of(" \n ".join(evidence_texts))
            all_quantities = [q for e in evidence for q in e.quantities]
        else:
            all_terms, all_quantities = evidence[0].names, list(evidence[0].quantities)
        missing_names = [n for n, label in facts.names if not name_found(n, label, all_terms)]
        for name in missing_names:
            reasons.append(f"name not in the cited text: {name}")
        quantity_check = check_quantities(list(facts.quantities), all_quantities)
        conflicting = {id(q) for q, _ in quantity_check.conflicts}
        for q, rival in quantity_check.conflicts:
            reasons.append(f"{q.kind} differs: the claim says '{q.text}', the cited text says '{rival.text}'")
        for q in quantity_check.missing:
            if id(q) not in conflicting:
                reasons.append(f"{q.kind} not in the cited text: {q.text}")
        negation = self._negation_disagrees(facts, evidence[best])
        if negation:
            reasons.append(negation)
        if coverage[best] < 0.5:
            missing_words = [lower for (_, lower, _), ok in zip(facts.content, covered[best]) if not ok]
            reasons.append(f"few of the claim's words in the cited text (missing: {', '.join(missing_words[:6])})")
        return Features(
            similarity=float(similarity[best]),
            coverage=float(coverage[best]),
            coverage_joint=coverage_joint,
            names=1.0 - len(missing_names) / len(facts.names) if facts.names else 1.0,
            quantities=1.0 - len(quantity_check.missing) / quantity_check.total if quantity_check.total else 1.0,
            negation=1.0 if negation else 0.0,
            best=best,
            hard=bool(missing_names or quantity_check.missing or negation),
            reasons=tuple(reasons),
        )

    def score(self, features: Features) -> float:
        """The logistic support score, capped when a hard check fails."""
        t = self.thresholds
        logit = t.bias + sum(t.weights.get(k, 0.0) * v for k, v in features.vector().items())
        score = 1.0 / (1.0 + math.exp(-logit))
        # A failed hard check scales the score below the cap (and so below "partial"), keeping its order.
        return score * t.hard_cap if features.hard else score

    def judge(self, claim: str, evidence_texts: list[str]) -> tuple[float, int, tuple[str, ...]]:
        """(score in [0, 1], index of the best evidence text, reasons)."""
        return self.judge_parts(claim, [(t,) for t in evidence_texts])

    def judge_parts(
        self, claim: str, parts: list[tuple[str, ...]], context: str | None = None
    ) -> tuple[float, int, tuple[str, ...]]:
        """Like ``judge``, for windows given as their sentences (each sentence is analysed once)."""
        if not parts:
            return 0.0, -1, ("no cited text",)
        features = self.features(claim, parts, context)
        return self.score(features), features.best, features.reasons


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
        self._sentences: _LRU = _LRU(256)

    # -- evidence windows ----------------------------------------------------

    def _document_sentences(self, doc_id: str) -> list[tuple[int, int]] | None:
        from rag.ingest.sentences import sentence_spans

        doc = self.index.documents.get(doc_id) if self.index is not None else None
        if doc is None:
            return None
        key = (doc_id, doc.content_hash)
        spans = self._sentences.get(key)
        return spans if spans is not None else self._sentences.put(key, sentence_spans(doc.text))

    def _window_parts(self, evidence: Evidence) -> list[tuple[Evidence, tuple[str, ...]]]:
        """Windows of 1–2 consecutive sentences inside the cited span (clipped to it), with their sentences."""
        from rag.ingest.sentences import sentence_spans

        spans = self._document_sentences(evidence.doc_id)
        if spans is not None:
            text, offset = self.index.documents[evidence.doc_id].text, 0
            inside = [(max(s, evidence.start), min(e, evidence.end)) for s, e in spans if s < evidence.end and e > evidence.start]
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
        item = sentence if isinstance(sentence, CitedSentence) else CitedSentence(
            sentence, tuple(cited), tuple(range(1, len(cited) + 1))
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

    def check_answer(self, sentences: Sequence[CitedSentence | tuple[str, Sequence[Evidence]]], propose: bool = True) -> CheckReport:
        """Verdicts for every sentence, with ALCE citation recall (share of sentences whose citations
        jointly support them) and precision (share of citations that are needed or support alone)."""
        items = [s if isinstance(s, CitedSentence) else CitedSentence(s[0], tuple(s[1]), tuple(range(1, len(s[1]) + 1))) for s in sentences]
        prepare = getattr(self.judge, "prepare", None)
        if prepare is not None:  # one batch for the whole answer instead of one per sentence
            parts = [part for item in items for e in item.cited for _, window in self._window_parts(e) for part in window]
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
        from rag.check.formats import sentences_from_record

        return self.check_answer(sentences_from_record(answer, self.index), propose=propose)


def verdict_counts(report: CheckReport) -> dict[str, int]:
    """How many sentences got each verdict."""
    return {v: sum(1 for s in report.verdicts if s.verdict == v) for v in VERDICTS}

