"""The support judge: how well evidence texts, taken together, support a claim.

No entailment model installs offline (../shared/MODELS.md), so the default judge,
``LexicalEmbeddingJudge``, combines deterministic checks (every number, date,
amount and name of the claim found in the cited text; content-word coverage by
lemma; negation agreement) with sentence-embedding similarity, weighted by a
logistic model whose weights and cut-offs were tuned on WiCE dev
(``rag/data/citation_thresholds.json``, written by ``bench/bench_wice_check.py``).
Any object with the ``SupportJudge.judge`` method can replace it, e.g. an NLI model.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
from cachetools import LRUCache, cachedmethod

from rag.budget import check_time_budget
from rag.check.claims import (
    NAME_LABELS,
    NEGATIONS,
    NameIndex,
    Quantity,
    check_quantities,
    extract_quantities,
    name_found,
)
from rag.check.thresholds import Thresholds
from rag.ingest.sentences import nlp
from rag.text import snowball_stemmer

if TYPE_CHECKING:
    from rag.search.embedding import Embedder

JOINT_WINDOWS = 3  # coverage of the claim may come from up to this many windows together
CONTENT_POS = {"NOUN", "PROPN", "VERB", "ADJ", "NUM", "ADV"}
# Verbs too common to carry polarity on their own.
_LIGHT_VERBS = {"be", "have", "do", "say", "make", "get"}


class SupportJudge(Protocol):
    """Scores how well evidence texts, taken together, support a claim."""

    def judge(self, claim: str, evidence_texts: list[str]) -> tuple[float, int, tuple[str, ...]]:
        """(score in [0, 1], index of the best single evidence text, reasons for a low score)."""
        ...


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


class LexicalEmbeddingJudge:
    """Deterministic checks plus embedding similarity, combined by a small logistic model.

    Analyses of texts are cached by text, so a passage seen before costs nothing.
    """

    def __init__(self, embedder: Embedder, thresholds: Thresholds | None = None, cache_size: int = 4096):
        self.embedder = embedder
        self.thresholds = thresholds or Thresholds.load()
        self.nlp = nlp()
        self.stemmer = snowball_stemmer()
        # Analyses by text, shared by the threads of the app: cachetools caches are not thread-safe alone.
        self._claims: LRUCache[str, ClaimFacts] = LRUCache(512)
        self._evidence: LRUCache[str, EvidenceFacts] = LRUCache(cache_size)
        self._lock = threading.RLock()

    def clear_cache(self) -> None:
        """Forgets every analysed text (for cold-start measurements)."""
        with self._lock:
            self._claims.clear()
            self._evidence.clear()
        self.embedder.clear_cache()

    # -- analysis ----------------------------------------------------------

    @cachedmethod(lambda self: self._claims, lock=lambda self: self._lock)
    def claim_facts(self, claim: str) -> ClaimFacts:
        """Content words, names, quantities, negations and main verb of a claim (cached by text)."""
        doc = self.nlp(claim)
        content = tuple(
            (t.lemma_.lower(), t.lower_, self.stemmer.stemWord(t.lower_))
            for t in doc
            if t.pos_ in CONTENT_POS and not t.is_stop and any(ch.isalnum() for ch in t.text)
        )
        names = tuple((e.text, e.label_) for e in doc.ents if e.label_ in NAME_LABELS)
        negated = frozenset(
            t.head.lemma_.lower()
            for t in doc
            if t.dep_ == "neg" or (t.lower_ in NEGATIONS and t.dep_ in {"det", "neg"})
        )
        root = next((t.lemma_.lower() for t in doc if t.dep_ == "ROOT" and t.pos_ in {"VERB", "AUX"}), "")
        return ClaimFacts(content, names, tuple(extract_quantities(claim)), negated, root)

    def evidence_facts(self, texts: list[str]) -> list[EvidenceFacts]:
        """Lemmas, names and quantities of each text (cached by text)."""
        with self._lock:
            cached = {t: self._evidence.get(t) for t in dict.fromkeys(texts)}
        found = {t: facts for t, facts in cached.items() if facts is not None}
        missing = [t for t in cached if t not in found]
        # Evidence needs lemmas only: the parser and NER are the slow parts of the pipeline.
        for text, doc in zip(missing, self.nlp.pipe(missing, disable=["parser", "ner"])):
            check_time_budget()
            lemmas = tuple(t.lemma_.lower() for t in doc)
            lowers = [t.lower_ for t in doc]
            terms = frozenset(lemmas) | frozenset(lowers) | frozenset(self.stemmer.stemWords(lowers))
            facts = EvidenceFacts(lemmas, terms, NameIndex.of(text), tuple(extract_quantities(text)))
            found[text] = facts
            with self._lock:
                self._evidence[text] = facts
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
            composed.append(
                EvidenceFacts(
                    tuple(lemma for s in part for lemma in facts[s].lemmas),
                    frozenset().union(*(facts[s].terms for s in part)),
                    NameIndex.of(text),
                    tuple(q for s in part for q in facts[s].quantities),
                )
            )
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
            # A negation comes before a verb ("did not buy") but after a copula ("is not", "wasn't").
            after = evidence.lemmas[i + 1 : i + 2] if evidence.lemmas[i] == "be" else ()
            return any(lemma in NEGATIONS or lemma == "n't" for lemma in (*evidence.lemmas[max(0, i - 4) : i], *after))

        for lemma in claim.negated:
            places = [i for i, found in enumerate(evidence.lemmas) if found == lemma]
            if places and not any(negated_at(i) for i in places):
                return f"negation differs: the claim negates '{lemma}', the cited text does not"
        root = claim.root
        # A copula as the main verb is the claim's predicate ("Turkey is a NATO ally"): its polarity counts.
        if root and root not in claim.negated and (root == "be" or root not in _LIGHT_VERBS):
            places = [i for i, found in enumerate(evidence.lemmas) if found == root]
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
