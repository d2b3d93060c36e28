"""The LLM answerer: generative answers kept only where the citation checker supports them.

Every sentence of the model's reply (``rag.answer.llm.reply``) goes through
``rag.check.checker.CitationChecker`` against the passages it cites before anything is shown:

* supported sentences are kept, each with the checker's best evidence span
  (``doc.text[start:end]``) as its citation;
* all others (partly supported, unsupported, uncited, or citing a passage that
  does not exist) are removed and listed in ``Answer.removed``;
* when nothing supported remains, the answer is an abstention.

``LLMAnswerer.stream`` does the same while the reply arrives, verifying each
sentence as soon as the next one has begun.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from rag.answer.llm.client import ChatClient
from rag.answer.llm.config import LLMConfig
from rag.answer.llm.injection import split_statements
from rag.answer.llm.prompt import build_messages
from rag.answer.llm.reply import ReplySentence, complete_sentences, missing_codes, parse_reply
from rag.budget import check_time_budget
from rag.check.checker import CitationChecker
from rag.check.judge import LexicalEmbeddingJudge
from rag.records import (
    Abstention,
    Answer,
    AnswerSentence,
    Citation,
    CitedSentence,
    Evidence,
    Generation,
    Passage,
    RemovedSentence,
    ReplyVerdict,
    SentenceVerdict,
)
from rag.text import clip

if TYPE_CHECKING:
    from rag.search.embedding import Embedder
    from rag.search.store import Index

KEEP_VERDICTS = ("supported",)
_SENTENCE_END = re.compile(r"[.!?\]\n]")


@dataclass(frozen=True)
class Checked:
    """A reply sentence after the checker: kept (with citations) or removed (with reasons)."""

    source: ReplySentence
    verdict: str  # a checker verdict, or "declined"
    score: float
    reasons: tuple[str, ...] = ()
    citations: tuple[Citation, ...] = ()

    @property
    def kept(self) -> bool:
        return bool(self.citations)

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
            "removed": None if self.kept or self.verdict == "declined" else self.removed(),
        }


@lru_cache(maxsize=4)
def _shared_judge(embedder: Embedder) -> tuple[LexicalEmbeddingJudge, threading.Lock]:
    """One support judge per embedder, with the lock that guards it: its analyses and vectors are cached
    by text, so every LLM answerer in the process (eval, app, tests) gains from what the others checked."""
    return LexicalEmbeddingJudge(embedder), threading.Lock()


def _rank_of(evidence: Evidence, passages: dict[int, Passage], labels: tuple[int, ...]) -> int | None:
    """The cited passage that holds the evidence span."""
    for label in labels:
        p = passages.get(label)
        if p is not None and p.doc_id == evidence.doc_id and p.start <= evidence.start and evidence.end <= p.end:
            return label
    return None


@dataclass
class LLMAnswerer:
    """Answers with an LLM over the retrieved passages and keeps only the sentences the checker supports.

    Args:
        config: the chat endpoint (``LLMConfig.from_env()`` reads ``RAG_LLM_*``).
        embedder: the shared embedder, used by the citation checker.
        keep: verdicts that keep a sentence (default: only "supported").
    """

    config: LLMConfig
    embedder: Embedder
    keep: tuple[str, ...] = KEEP_VERDICTS
    name: str = "llm"
    _client: ChatClient | None = field(default=None, repr=False)
    _checker: tuple[Index, CitationChecker] | None = field(default=None, repr=False)
    _judge: Any = field(default=None, repr=False)
    _lock: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._client = ChatClient(self.config)
        self._judge, self._lock = _shared_judge(self.embedder)

    @property
    def client(self) -> ChatClient:
        assert self._client is not None
        return self._client

    def close(self) -> None:
        """Closes the connection to the server (a later request opens a new one)."""
        self.client.close()

    def checker(self, index: Index) -> CitationChecker:
        """The citation checker for this index (the judge and its caches are shared, see ``_shared_judge``)."""
        if self._checker is None or self._checker[0] is not index:
            self._checker = (index, CitationChecker(index, self.embedder, judge=self._judge))
        return self._checker[1]

    # -- verification ----------------------------------------------------------

    def verify(self, sentence: ReplySentence, passages: list[Passage], index: Index) -> Checked:
        """Checks one reply sentence against the passages it cites."""
        if sentence.declined:
            return Checked(sentence, "declined", 0.0, ("the model said the passages do not answer",))
        check_time_budget()
        by_rank = {p.rank: p for p in passages}
        with self._lock:
            cited, labels, problems, ignored = [], [], [], []
            for label in sentence.labels:
                p = by_rank.get(label)
                if p is None:
                    problems.append(f"citation [{label}] is out of range: there are {len(passages)} passages")
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
                    labels.append(label)
            item = CitedSentence(sentence.text, tuple(cited), tuple(labels), tuple(problems))
            checker = self.checker(index)
            verdict = checker.check_sentence(item, propose=False)
            missing = missing_codes(sentence.text, [e.text for e in cited])
            if missing and verdict.verdict in self.keep:
                # The checker reads "S-303" as a name it may not know; a wrong designator is a wrong fact.
                reasons = tuple(f"code not in the cited text: {code}" for code in missing)
                return Checked(sentence, "unsupported", verdict.score, (*reasons, *verdict.reasons))
            if verdict.verdict not in self.keep or verdict.evidence is None:
                return Checked(sentence, verdict.verdict, verdict.score, (*verdict.reasons, *ignored))
            citations = self._citations(verdict, item, by_rank, checker)
        return Checked(sentence, verdict.verdict, verdict.score, verdict.reasons, citations)

    def _citations(
        self, verdict: SentenceVerdict, item, by_rank: dict[int, Passage], checker: CitationChecker
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

    # -- answering ---------------------------------------------------------------

    def answer(self, question: str, passages: list[Passage], index: Index) -> Answer:
        """Asks the model (one request, no streaming) and returns the verified answer."""
        if not passages:
            return self._abstained(question, passages, "no passage to answer from")
        reply = self.client.complete(build_messages(question, passages, index)).content
        return self._finish(question, passages, index, reply, {})

    def stream(self, question: str, passages: list[Passage], index: Index) -> Iterator[dict[str, Any]]:
        """Streams the answer: a ``{"type": "sentence", "kept": bool, ...}`` event as each reply sentence is
        complete and verified, then ``{"type": "answer", "answer": Answer}`` (the same Answer as ``answer``).

        Sentence events carry ``index``, ``text``, ``verdict``, ``score``, ``sentence`` (an AnswerSentence
        when kept) and ``removed`` (a RemovedSentence when removed). Nothing unverified is sent.
        """
        if not passages:
            yield {"type": "answer", "answer": self._abstained(question, passages, "no passage to answer from")}
            return
        cache: dict[ReplySentence, Checked] = {}
        buffer, emitted, pending = "", 0, False
        for piece in self.client.stream(build_messages(question, passages, index)):
            buffer += piece
            # Run the sentence splitter only once a sentence may have ended, until the next one has begun.
            pending = pending or bool(_SENTENCE_END.search(piece))
            if not pending:
                continue
            done = complete_sentences(buffer)
            if len(done) > emitted:
                # The sentence now being written may have ended within this same piece.
                pending = bool(_SENTENCE_END.search(piece))
            for sentence in done[emitted:]:
                yield self._checked(sentence, passages, index, cache).event(emitted)
                emitted += 1
        for position, sentence in enumerate(parse_reply(buffer)):
            if position >= emitted:  # the last sentence, or one the splitter saw differently at the end
                yield self._checked(sentence, passages, index, cache).event(position)
        yield {"type": "answer", "answer": self._finish(question, passages, index, buffer, cache)}

    def _checked(
        self, sentence: ReplySentence, passages: list[Passage], index: Index, cache: dict[ReplySentence, Checked]
    ) -> Checked:
        if sentence not in cache:
            cache[sentence] = self.verify(sentence, passages, index)
        return cache[sentence]

    def _finish(
        self, question: str, passages: list[Passage], index: Index, reply: str, cache: dict[ReplySentence, Checked]
    ) -> Answer:
        """The Answer for a whole reply: kept sentences, removed ones listed, abstention when none is kept."""
        checked = [self._checked(sentence, passages, index, cache) for sentence in parse_reply(reply)]
        kept = [c for c in checked if c.kept]
        declined = any(c.verdict == "declined" for c in checked)
        removed = tuple(c.removed() for c in checked if not c.kept and c.verdict != "declined")
        answer = Answer(
            question,
            (),
            tuple(passages),
            score=0.0,
            answerer=self.name,
            removed=removed,
            generation=self._generation(reply, declined),
            verdicts=tuple(ReplyVerdict(c.source.text, c.verdict, round(c.score, 4)) for c in checked),
        )
        if not kept:
            if declined and not removed:
                reason = "the model said the passages do not answer the question"
            elif not checked:
                reason = "the model's reply was empty"
            else:
                reason = "no sentence of the model's reply is supported by the passages it cites"
            return replace(answer, abstention=Abstention(reason))
        score = round(sum(c.score for c in kept) / len(kept), 4)
        return replace(answer, sentences=tuple(AnswerSentence(c.source.text, c.citations) for c in kept), score=score)

    def _generation(self, reply: str | None, declined: bool = False) -> Generation:
        endpoint = self.config.public()
        return Generation(endpoint["base_url"], endpoint["model"], endpoint["temperature"], reply, declined)

    def _abstained(self, question: str, passages: list[Passage], reason: str) -> Answer:
        return Answer(
            question,
            (),
            tuple(passages),
            answerer=self.name,
            generation=self._generation(None),
            abstention=Abstention(reason),
        )
