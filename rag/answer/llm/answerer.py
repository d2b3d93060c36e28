"""The LLM answerer: generative answers kept only where the citation checker supports them.

Every sentence of the model's reply (``rag.answer.llm.reply``) is verified
(``rag.answer.llm.verification``) before anything is shown:

* supported sentences are kept, each with the checker's best evidence span
  (``doc.text[start:end]``) as its citation;
* a sentence its cited passages do not support (or that cites nothing), but another
  retrieved passage does, is kept with that passage as its citation and listed in
  ``Answer.reattributed``;
* all others (partly supported, unsupported, uncited, or citing a passage that
  does not exist, with no other passage supporting them) are removed and listed
  in ``Answer.removed``;
* a supported sentence that does not answer the question (``rag.answer.relevance``)
  is listed apart in ``Answer.irrelevant``, not shown as the answer;
* the short answer is taken from the kept sentences (``relevance.short_answer``);
* when nothing is kept, or the reply declines, the answer is an abstention.

``LLMAnswerer.stream`` does the same while the reply arrives, verifying each
sentence as soon as the next one has begun.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from rag.answer.llm.client import ChatClient
from rag.answer.llm.config import LLMConfig
from rag.answer.llm.prompt import build_messages
from rag.answer.llm.reply import ReplySentence, complete_sentences, parse_reply, reply_declines
from rag.answer.llm.verification import KEEP_VERDICTS, Checked, SentenceVerifier
from rag.answer.relevance import short_answer, stated
from rag.check.formats import MARKER
from rag.records import Abstention, Answer, AnswerSentence, Generation, Passage, RejectedAnswer, ReplyVerdict

if TYPE_CHECKING:
    from rag.check.checker import CitationChecker
    from rag.search.embedding import Embedder
    from rag.search.store import Index

_SENTENCE_END = re.compile(r"[.!?\]\n]")


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
    _verifier: SentenceVerifier | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._client = ChatClient(self.config)
        self._verifier = SentenceVerifier(self.embedder, self.keep)

    @property
    def client(self) -> ChatClient:
        assert self._client is not None
        return self._client

    @property
    def verifier(self) -> SentenceVerifier:
        assert self._verifier is not None
        return self._verifier

    def close(self) -> None:
        """Closes the connection to the server (a later request opens a new one)."""
        self.client.close()

    def checker(self, index: Index) -> CitationChecker:
        """The citation checker for this index (its judge and caches are shared by every LLM answerer)."""
        return self.verifier.checker(index)

    def verify(self, sentence: ReplySentence, passages: list[Passage], index: Index) -> Checked:
        """Checks one reply sentence against the passages it cites, or else against another retrieved one."""
        return self.verifier.verify(sentence, passages, index)

    # -- answering ---------------------------------------------------------------

    def answer(self, question: str, passages: list[Passage], index: Index) -> Answer:
        """Asks the model and returns the verified answer (the reply is streamed, so only the wait for its
        first word times out, see ``rag.answer.llm.client``)."""
        if not passages:
            return self._abstained(question, passages, "no passage to answer from")
        reply = "".join(self.client.stream(build_messages(question, passages, index)))
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
        seen: list[ReplySentence] = []

        def event(sentence: ReplySentence, position: int) -> dict[str, Any]:
            seen.append(sentence)
            shown = self._checked(question, sentence, passages, index, cache).event(position)
            # Once the reply declines, what follows is a passage dump, not an answer: nothing more is shown.
            return {**shown, "kept": False, "sentence": None} if reply_declines(seen) else shown

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
                yield event(sentence, emitted)
                emitted += 1
        for position, sentence in enumerate(parse_reply(buffer)):
            if position >= emitted:  # the last sentence, or one the splitter saw differently at the end
                yield event(sentence, position)
        yield {"type": "answer", "answer": self._finish(question, passages, index, buffer, cache)}

    def _checked(
        self,
        question: str,
        sentence: ReplySentence,
        passages: list[Passage],
        index: Index,
        cache: dict[ReplySentence, Checked],
    ) -> Checked:
        """The sentence verified and, when supported, judged on whether it answers the question."""
        if sentence not in cache:
            checked = self.verify(sentence, passages, index)
            if checked.supported:
                judged = stated(question, sentence.text, checked.citations, passages, index, self.embedder)
                checked = replace(checked, relevance=round(judged.relevance, 4), answers=judged.answers)
            cache[sentence] = checked
        return cache[sentence]

    def _finish(
        self, question: str, passages: list[Passage], index: Index, reply: str, cache: dict[ReplySentence, Checked]
    ) -> Answer:
        """The Answer for a whole reply: kept sentences, removed ones listed; an abstention when none is kept
        or the reply declines (what it also said is recorded as the rejected answer)."""
        sentences = parse_reply(reply)
        checked = [self._checked(question, sentence, passages, index, cache) for sentence in sentences]
        kept = [c for c in checked if c.kept]
        declined = reply_declines(sentences)
        shown = tuple(AnswerSentence(c.source.text, c.citations) for c in kept)
        answer = Answer(
            question,
            shown,
            tuple(passages),
            short_answer=short_answer(question, shown, passages, index, self.embedder) if shown else None,
            score=round(sum(c.score for c in kept) / len(kept), 4) if kept else 0.0,
            answerer=self.name,
            removed=tuple(c.removed() for c in checked if not c.supported and c.verdict != "declined"),
            reattributed=tuple(r for c in kept if (r := c.reattribution()) is not None),
            irrelevant=tuple(aside for c in checked if (aside := c.irrelevant()) is not None),
            generation=self._generation(reply, declined),
            verdicts=tuple(ReplyVerdict(c.source.text, c.verdict, round(c.score, 4)) for c in checked),
        )
        if declined:
            reason = "the model said the passages do not answer the question"
        elif not kept:
            reason = _nothing_kept(reply, checked)
        else:
            return answer
        rejected = RejectedAnswer(answer.text, answer.short_answer) if kept else None
        return replace(answer, sentences=(), abstention=Abstention(reason, rejected=rejected))

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


def _nothing_kept(reply: str, checked: list[Checked]) -> str:
    """Why nothing of a reply that does not decline is shown."""
    if any(c.supported for c in checked):
        return "no supported sentence of the model's reply answers the question"
    if checked:
        return "no sentence of the model's reply is supported by the passages it cites"
    if MARKER.search(reply):
        return "the model's reply held only citation markers, no sentence"
    return "the model's reply was empty" if not reply.strip() else "the model's reply held no sentence"
