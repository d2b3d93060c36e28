"""Yes/no questions: the claim a question asks about, and the sentence that decides it.

"Did Turkey buy the S-400 system?" asks whether "Turkey did buy the S-400 system" holds. The claim is
the asking sentence with its subject–auxiliary inversion undone (the auxiliary moved back after the
subject, so that "will" or "would" still qualify the claim; the question mark dropped); a context
sentence before it is left out. A negative question ("Didn't the US impose sanctions?", "Did Turkey
not buy …?") asks about the same positive claim: in English "yes" to it means the US did, so the
question's own "not" is dropped. Other negative words ("never", "no") stay in the claim.

A sentence decides the question when the support judge (the citation checker's, ``rag.check.judge``)
finds that it supports the claim and not its negation ("Turkey did not buy the S-400 system"):
"supported" against "unsupported", or the other way round. The judge tells the two apart by its
negation check, which scales the score of the polarity the sentence contradicts below the "partial"
cut-off; a sentence that shares the claim's words without the verb whose polarity the judge reads
supports both and decides nothing. Of the deciding sentences, the best-supported answer is kept. The
cut-offs are the judge's own, fitted on WiCE (``rag/data/citation_thresholds.json``); nothing here is
tuned on questions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.answer.reader.questions import asking_sentence

if TYPE_CHECKING:
    from rag.check.judge import SupportJudge
    from rag.check.thresholds import Thresholds

SUBJECTS = ("nsubj", "nsubjpass", "expl", "csubj", "csubjpass")
NEGATIONS = ("not", "n't")
# Contracted auxiliaries as the tokenizer splits them: "won't" -> "wo" + "n't".
CONTRACTED = {"wo": "will", "ca": "can", "sha": "shall"}
YES, NO = "yes", "no"
UNDECIDED = "no sentence decides the yes/no question"


@dataclass(frozen=True)
class Claim:
    """What a yes/no question asks: is ``text`` true? ``negation`` is its opposite."""

    text: str  # "Turkey did buy the S-400 system"
    negation: str  # "Turkey did not buy the S-400 system"


@dataclass(frozen=True)
class Decision:
    """The answer to a yes/no question from one sentence, or why there is none."""

    answer: str | None  # YES, NO, or None (undecided)
    sentence: int = -1  # index of the deciding sentence among those judged
    score: float = 0.0  # the judge's support score of the polarity answered, for that sentence
    reason: str = ""  # why no answer


def _subject_end(subject: Any) -> int:
    """Index after the subject's last token.

    A participle hanging off the subject of a fronted "be" is the predicate the parser misread as a
    reduced relative clause ("Was Turkey removed from …": "removed" attached to "Turkey").
    """
    predicate = [c for c in subject.children if c.dep_ == "acl" and c.tag_ in ("VBN", "VBG") and c.i > subject.i]
    last = subject.right_edge.i
    if predicate:
        last = min(last, predicate[0].i - 1)
    return last + 1


def _spelled(tokens: list[Any]) -> str:
    return "".join(t.text_with_ws for t in tokens).strip()


def yes_no_claim(doc: Any) -> Claim | None:
    """The claim of a parsed yes/no question (a spaCy Doc), or None when its asking sentence does not
    open with an auxiliary."""
    tokens = [t for t in asking_sentence(doc)[0] if not t.is_space]
    while tokens and tokens[-1].is_punct:
        tokens.pop()
    if len(tokens) < 2 or tokens[0].pos_ != "AUX":
        return None
    aux = tokens[0]
    head = aux if aux.head.i == aux.i else aux.head
    # The question's own negation ("Didn't …", "Did Turkey not …") is no part of the claim.
    negations = {t.i for t in (*head.children, *aux.children) if t.dep_ == "neg" and t.lower_ in NEGATIONS}
    rest = [t for t in tokens[1:] if t.i not in negations]
    if not rest:
        return None
    # The subject of the auxiliary's clause (the parser sometimes hangs it on the auxiliary itself); when
    # the parser found none, what lies between the auxiliary and its verb ("Did the strike end …", with
    # "strike end" misread as a compound noun).
    subjects = [t for t in rest if t.dep_ in SUBJECTS and t.head.i in (head.i, aux.i)]
    end = _subject_end(subjects[0]) if subjects else head.i if head.i > aux.i else rest[0].i
    before, after = _spelled([t for t in rest if t.i < end]), _spelled([t for t in rest if t.i >= end])
    verb = CONTRACTED.get(aux.lower_, aux.lower_)

    def sentence(*words: str) -> str:
        text = " ".join(w for w in words if w)
        return text[:1].upper() + text[1:]

    return Claim(sentence(before, verb, after), sentence(before, verb, "not", after))


def decide(claim: Claim, sentences: list[str], judge: SupportJudge, thresholds: Thresholds) -> Decision:
    """Judges the claim and its negation against each sentence on its own.

    A sentence decides when the judge finds one polarity "supported" and the other "unsupported": a
    sentence that supports both (it shares the claim's words but the judge cannot read its polarity,
    e.g. it states the claim with another verb) decides nothing. Of the deciding sentences, the one
    whose answer the judge supports most is kept.
    """
    best = Decision(None, reason=UNDECIDED)
    for i, sentence in enumerate(sentences):
        for_it, _, _ = judge.judge(claim.text, [sentence])
        against, _, _ = judge.judge(claim.negation, [sentence])
        verdicts = (thresholds.verdict(for_it), thresholds.verdict(against))
        if verdicts == ("supported", "unsupported") and for_it > best.score:
            best = Decision(YES, i, for_it)
        elif verdicts == ("unsupported", "supported") and against > best.score:
            best = Decision(NO, i, against)
    return best
