"""Sentence analysis for the extractive answerer: what each sentence of a passage offers.

spaCy's ``en_core_web_sm`` gives entities, lemmas and the dependency parse; on top of it, law names
the small model misses, the clause each name stands in, and descriptions set beside a name. Names
match across spelling variants news uses (``rag.text``): "U.S." = "US" = "United States" (acronym),
"Turkish" ≈ "Turkey" (shared stem), "S-400s" ≈ "S-400". What a question asks is ``rag.answer.question``.

Sentences are analysed paragraph by paragraph and cached, so a passage retrieved again costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

from rag.budget import check_time_budget
from rag.ingest.sentences import analysis_spans, merge_fragments, nlp, parsed_sentence_spans
from rag.text import acronym, fold_name, words_match

WH_WORDS = {"who", "whom", "whose", "when", "where", "which", "what", "how", "why"}
LAW_HEADS = {
    "act",
    "law",
    "bill",
    "treaty",
    "accord",
    "agreement",
    "convention",
    "code",
    "amendment",
    "directive",
    "resolution",
    "charter",
    "protocol",
    "statute",
    "regulation",
}
NAME_CONNECTORS = {"of", "for", "through", "and", "the", "on", "to", "in", "'s", "’s", "de", "&"}
_PARENTHESISED_ACRONYM = re.compile(r"\s*\(([A-Z][A-Za-z0-9&.-]{1,12})\)")


# ---------------------------------------------------------------------------
# Sentences


@dataclass(frozen=True)
class Mention:
    """A named entity or proper name inside a sentence; offsets are into the document text."""

    text: str
    label: str
    start: int
    end: int
    verb: str = ""  # lemma of the verb the mention depends on ("the bridge reopened on Friday" -> "reopen")
    governor: str = ""  # lemma of the word the mention modifies ("300 refugees" -> "refugee")
    clause: int = -1  # token index of the clause head, to tell which names share a clause with it


@dataclass(frozen=True)
class SentenceInfo:
    """One analysed sentence of a document."""

    doc_id: str
    start: int
    end: int
    text: str
    lemmas: frozenset[str]  # lower-case lemmas and folded words of the sentence
    names: frozenset[str]  # folded proper-name words, numbers and acronyms of the sentence's names
    mentions: tuple[Mention, ...]
    name_clauses: tuple[tuple[str, int], ...] = ()  # (folded name word, clause head) pairs

    def clauses_of(self, word: str) -> set[int]:
        """Clause heads of the clauses where a folded question name appears."""
        return {c for n, c in self.name_clauses if n == word or words_match(word, n)}

    def has_name(self, word: str) -> bool:
        """Whether a folded name word of a question appears in this sentence."""
        return word in self.names or any(words_match(word, n) for n in self.names)


def _name_spans(sent) -> list[tuple[int, int]]:
    """Token ranges of title-case names, e.g. 'Countering America’s Adversary through Sanctions Act'."""
    spans, i, tokens = [], 0, list(sent)
    while i < len(tokens):
        if not (tokens[i].is_title or tokens[i].is_upper) or not tokens[i].is_alpha:
            i += 1
            continue
        j, capitals, end = i, 0, i
        while j < len(tokens):
            t = tokens[j]
            if (t.is_title or t.is_upper) and (t.is_alpha or "-" in t.text):
                capitals += 1
                end = j + 1
            elif t.lower_ not in NAME_CONNECTORS:
                break
            j += 1
        if capitals >= 2:
            start = i + (1 if tokens[i].lower_ in {"the", "a", "an"} else 0)
            spans.append((tokens[start].i, tokens[end - 1].i + 1))
        i = max(end, i + 1)
    return spans


def ancestors(token) -> Iterator:
    """The token, its head, its head's head … up to the root of its tree.

    Bounded by the length of the document: every walk up the parse goes through here, so a head
    chain that never reaches a root, or reaches another sentence's root, cannot loop.
    """
    for _ in range(len(token.doc)):
        yield token
        if token.head.i == token.i:
            return
        token = token.head


def clause_head(token) -> int:
    """Index of the head of the clause holding a token.

    Clauses are split where a sentence joins separate statements (coordinated, adverbial, paratactic:
    "China has S-400s, *while India … signed a $5 billion contract*"); complement and relative clauses
    stay with the clause they complete ("CAATSA says *that the US will impose sanctions*").
    """
    for t in ancestors(token):
        if t.dep_ == "ROOT" or t.head.i == t.i:
            return t.i
        if t.pos_ in ("VERB", "AUX") and t.dep_ in ("conj", "advcl", "parataxis"):
            return t.i
    return token.i


def _details(span) -> dict:
    """Verb, governor and clause of an entity span (by its syntactic root)."""
    root = span.root
    verb = next((t for t in ancestors(root) if t.pos_ in ("VERB", "AUX")), None)
    governor = (
        root.head if root.head.i != root.i and root.dep_ in ("nummod", "quantmod", "amod", "compound", "poss") else root
    )
    return {
        "verb": verb.lemma_.lower() if verb is not None else "",
        "governor": governor.lemma_.lower(),
        "clause": clause_head(root),
    }


def _mentions(sent, text: str) -> list[Mention]:
    """spaCy's entities, plus law names (which the small model misses) with their acronym in brackets.

    Offsets are into ``text``, the paragraph that was parsed.
    """
    doc = sent.doc
    mentions = [
        Mention(e.text, e.label_, e.start_char, e.end_char, **_details(e)) for e in sent.ents if e.label_ != "ORDINAL"
    ]
    for start, end in _name_spans(sent):
        span = doc[start:end]
        if span[-1].lower_ not in LAW_HEADS:
            continue
        s, e = span.start_char, span.end_char
        bracket = _PARENTHESISED_ACRONYM.match(text, e)
        if bracket:
            e = bracket.end()
        mentions = [m for m in mentions if m.end <= s or m.start >= e]
        mentions.append(Mention(text[s:e], "LAW", s, e, **_details(span)))
    return sorted(mentions, key=lambda m: m.start)


def is_name_word(token) -> bool:
    """Proper nouns, numbers, acronyms and capitalised words of entities; not 'this week' or 'between'."""
    if token.is_punct or token.lower_ in WH_WORDS:
        return False
    if token.is_stop and not (token.is_upper and len(token) > 1):  # "US" is a name, "us" a pronoun
        return False
    return (
        token.pos_ == "PROPN"
        or token.like_num
        or (token.is_upper and len(token) > 1)
        or (bool(token.ent_type_) and token.text[:1].isupper())
    )


def _names(sent) -> set[str]:
    names: set[str] = set()
    for t in sent:
        if is_name_word(t):
            names.add(fold_name(t.text))
    for e in sent.ents:
        words = [w for w in e.text.split() if w.lower() not in {"the", "of", "and"}]
        if len(words) > 1:
            names.add(acronym(words))
    for start, end in _name_spans(sent):
        names.add(acronym([t.text for t in sent.doc[start:end]]))
    names.discard("")
    return names


@lru_cache(maxsize=8192)
def _analyse_piece(doc_id: str, text: str, p_start: int, p_end: int) -> tuple[SentenceInfo, ...]:
    """The sentences of one paragraph (or piece of a long one, see ``rag.ingest.sentences.analysis_spans``) of a
    document (cached: keyed by its own text and place)."""
    del doc_id  # part of the cache key only, with the offsets: the same text at another place is another entry
    parsed = nlp()(text)
    # The same sentences as rag.ingest.sentences finds, so they line up with chunk boundaries.
    merged = merge_fragments(text, parsed_sentence_spans(parsed, text))
    infos = []
    for start, end in merged:
        span = parsed.char_span(start, end, alignment_mode="expand")
        lemmas = frozenset({t.lemma_.lower() for t in span} | {fold_name(t.text) for t in span})
        infos.append(
            SentenceInfo(
                doc_id="",
                start=p_start + start,
                end=p_start + end,
                text=text[start:end],
                lemmas=lemmas,
                names=frozenset(_names(span)),
                mentions=tuple(replace(m, start=p_start + m.start, end=p_start + m.end) for m in _mentions(span, text)),
                name_clauses=tuple((fold_name(t.text), clause_head(t)) for t in span if is_name_word(t)),
            )
        )
    return tuple(infos)


# Bounded repeats (a law name has at most a dozen words): with open-ended ones, a long run of capitalised
# words without a law head took time growing as the square of its length.
_LAW_WITH_ACRONYM = re.compile(
    r"(?:[A-Z][\w’'-]*\s+(?:(?:of|for|through|and|the|on|to|in)\s+){0,3}){1,12}(?:"
    + "|".join(h.title() for h in sorted(LAW_HEADS))
    + r")\s*\(([A-Z][A-Za-z]{1,11})\)"
)


@lru_cache(maxsize=1024)
def _law_acronyms(doc_text: str) -> frozenset[str]:
    """Acronyms a document defines for laws: 'the Foo Act (FA)' makes every later 'FA' a LAW."""
    return frozenset(m.group(1) for m in _LAW_WITH_ACRONYM.finditer(doc_text))


def _with_aliases(info: SentenceInfo, aliases: frozenset[str]) -> SentenceInfo:
    if not aliases or not any(m.text in aliases for m in info.mentions):
        return info
    return replace(info, mentions=tuple(replace(m, label="LAW") if m.text in aliases else m for m in info.mentions))


def sentences_in(doc_id: str, doc_text: str, start: int, end: int) -> list[SentenceInfo]:
    """Analysed sentences of ``doc_text`` that lie wholly inside [start, end)."""
    found = []
    aliases = _law_acronyms(doc_text)
    for p_start, p_end in analysis_spans(doc_text):
        if p_end <= start or p_start >= end:
            continue
        check_time_budget()
        for info in _analyse_piece(doc_id, doc_text[p_start:p_end], p_start, p_end):
            if info.start >= start and info.end <= end:
                found.append(_with_aliases(replace(info, doc_id=doc_id), aliases))
    return found
