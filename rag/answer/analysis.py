"""Linguistic analysis for the extractive answerer: what a question asks, and what a sentence offers.

spaCy's ``en_core_web_sm`` gives entities, lemmas and the dependency parse. On top
of it a few rules that hold for English news in general:

* a question's *type* (who, when, how much …) names the entity labels that can
  answer it;
* its *focus names* (proper names, numbers) are split by clause: names in the
  clause that holds the wh-word constrain the answer and must appear in the
  sentence that holds it ("What was the value of **Turkey's** contract?");
  names in a coordinated clause ("…, and was Turkey sanctioned?") may be backed
  by another sentence;
* names match across spelling variants news uses: "U.S." = "US" = "United
  States" (acronym), "Turkish" ≈ "Turkey" (shared stem), "S-400s" ≈ "S-400".

Sentences are analysed paragraph by paragraph and cached, so a passage retrieved
again costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

from rag.budget import check_time_budget
from rag.ingest.sentences import _merge_fragments, analysis_spans, nlp

# Entity labels that can answer each question type, best first.
PERSON_LIKE = ("PERSON", "ORG", "NORP", "GPE")
TYPE_LABELS: dict[str, tuple[str, ...]] = {
    "who": PERSON_LIKE,
    "whom": PERSON_LIKE,
    "whose": ("PERSON", "ORG", "GPE", "NORP"),
    "when": ("DATE", "TIME"),
    "where": ("GPE", "LOC", "FAC", "ORG"),
    "how much": ("MONEY", "QUANTITY"),
    "how many": ("CARDINAL", "QUANTITY"),
    "how long": ("DATE", "TIME", "QUANTITY"),
    "how old": ("DATE", "CARDINAL"),
    "how far": ("QUANTITY",),
}
# The noun after "which"/"what" (or the noun "what" asks about) names the answer's type.
NOUN_LABELS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(["law", "act", "bill", "treaty", "legislation", "statute", "regulation", "agreement"], ("LAW",)),
    **dict.fromkeys(["country", "nation", "state", "city", "capital", "region", "province", "territory"], ("GPE", "LOC")),
    **dict.fromkeys(["place", "location", "venue", "town"], ("GPE", "LOC", "FAC")),
    **dict.fromkeys(
        ["company", "firm", "organisation", "organization", "agency", "group", "party", "alliance", "bank",
         "institution", "body", "department", "ministry", "newspaper", "university", "team", "bloc", "think-tank",
         "report", "network", "manufacturer", "exporter", "publication", "court", "union", "council", "committee"],
        ("ORG", "GPE", "NORP"),
    ),
    **dict.fromkeys(
        ["person", "man", "woman", "analyst", "president", "leader", "official", "minister", "expert", "spokesman",
         "spokeswoman", "chief", "head", "director", "secretary", "ceo", "author", "reporter", "politician",
         "general", "commander", "counterpart", "senator", "lawmaker", "diplomat", "ambassador", "king", "queen",
         "prime", "chairman", "founder", "executive", "researcher", "scientist", "journalist", "judge"],
        ("PERSON",),
    ),
    **dict.fromkeys(["year", "date", "day", "month", "time", "decade", "century", "period", "week"], ("DATE", "TIME")),
    **dict.fromkeys(["percentage", "percent", "share", "proportion", "rate", "fraction"], ("PERCENT",)),
    **dict.fromkeys(["value", "price", "cost", "amount", "sum", "worth", "fee", "budget", "fine", "revenue"], ("MONEY",)),
    **dict.fromkeys(["number", "count", "total", "population"], ("CARDINAL", "QUANTITY")),
    **dict.fromkeys(["nationality", "religion", "ethnicity"], ("NORP",)),
    **dict.fromkeys(["jet", "aircraft", "plane", "missile", "weapon", "system", "product", "model", "fighter",
                     "vehicle", "tank", "ship", "drone", "device", "phone", "car"], ("PRODUCT", "ORG")),
    **dict.fromkeys(["event", "war", "election", "summit", "conference", "festival", "tournament"], ("EVENT",)),
    **dict.fromkeys(["language"], ("LANGUAGE",)),
}
WH_WORDS = {"who", "whom", "whose", "when", "where", "which", "what", "how", "why"}
# Words a question needs for its grammar, not for its meaning.
LIGHT_LEMMAS = {"be", "do", "have", "say", "mention", "article", "accord", "tell", "give", "call", "name", "other",
                "also", "according", "corpus", "text", "report"} | WH_WORDS
LAW_HEADS = {"act", "law", "bill", "treaty", "accord", "agreement", "convention", "code", "amendment", "directive",
             "resolution", "charter", "protocol", "statute", "regulation"}
NAME_CONNECTORS = {"of", "for", "through", "and", "the", "on", "to", "in", "'s", "’s", "de", "&"}
_DEMONYM_SUFFIXES = ("ians", "ian", "eans", "ean", "ese", "ish", "ans", "an", "ns", "s", "n", "y", "a", "i", "e")
_PARENTHESISED_ACRONYM = re.compile(r"\s*\(([A-Z][A-Za-z0-9&.-]{1,12})\)")


# ---------------------------------------------------------------------------
# Name matching


def fold(word: str) -> str:
    """Lower case without dots and curly quotes: 'U.S.' -> 'us'."""
    return word.lower().replace(".", "").replace("’", "'").strip("'")


def _stem(word: str) -> str:
    """A crude stem that joins a country to its demonym: 'turkish' -> 'turk', 'russian' -> 'russi'."""
    for suffix in _DEMONYM_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def words_match(a: str, b: str) -> bool:
    """Whether two folded words name the same thing: equal, or one starts with the other's stem (≥ 4 letters)."""
    if a == b:
        return True
    sa, sb = _stem(a), _stem(b)
    return (len(sb) >= 4 and a.startswith(sb)) or (len(sa) >= 4 and b.startswith(sa))


def acronym(words: list[str]) -> str:
    """Initials of the capitalised words: ['United', 'States'] -> 'us'."""
    return "".join(w[0] for w in words if w[:1].isupper()).lower()


# ---------------------------------------------------------------------------
# Sentences


@dataclass(frozen=True)
class Mention:
    """A named entity or proper name inside a sentence; offsets are into the document text."""

    text: str
    label: str
    start: int
    end: int
    verb: str = ""  # lemma of the verb the mention depends on ("imposed … in December" -> "impose")
    governor: str = ""  # lemma of the word the mention modifies ("14 countries" -> "country")
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
    appositives: tuple[tuple[str, int, int], ...] = ()  # (folded name word, start, end): "Kofman, a security analyst …"

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
    governor = root.head if root.head.i != root.i and root.dep_ in ("nummod", "quantmod", "amod", "compound", "poss") else root
    return {"verb": verb.lemma_.lower() if verb is not None else "",
            "governor": governor.lemma_.lower(), "clause": clause_head(root)}


def _mentions(sent, text: str) -> list[Mention]:
    """spaCy's entities, plus law names (which the small model misses) with their acronym in brackets.

    Offsets are into ``text``, the paragraph that was parsed.
    """
    doc = sent.doc
    mentions = [
        Mention(e.text, e.label_, e.start_char, e.end_char, **_details(e))
        for e in sent.ents
        if e.label_ != "ORDINAL"
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


def _is_name_word(token) -> bool:
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
        if _is_name_word(t):
            names.add(fold(t.text))
    for e in sent.ents:
        words = [w for w in e.text.split() if w.lower() not in {"the", "of", "and"}]
        if len(words) > 1:
            names.add(acronym(words))
    for start, end in _name_spans(sent):
        names.add(acronym([t.text for t in sent.doc[start:end]]))
    names.discard("")
    return names


def _appositives(sent, offset: int) -> list[tuple[str, int, int]]:
    """Descriptions set beside a name: 'Michael Kofman, a security analyst who …' -> the description's span."""
    found = []
    for t in sent:
        if t.dep_ == "appos" and t.head.pos_ == "PROPN":
            sub = list(t.subtree)
            start, end = sub[0].idx, sub[-1].idx + len(sub[-1])
            for name in [t.head, *[c for c in t.head.children if c.dep_ == "compound"]]:
                found.append((fold(name.text), offset + start, offset + end))
    return found


@lru_cache(maxsize=8192)
def _analyse_piece(doc_id: str, text: str, p_start: int, p_end: int) -> tuple[SentenceInfo, ...]:
    """The sentences of one paragraph (or piece of a long one, see ``rag.ingest.sentences.analysis_spans``) of a
    document (cached: keyed by its own text and place)."""
    del doc_id  # part of the cache key only, with the offsets: the same text at another place is another entry
    parsed = nlp()(text)
    spans = []
    for sent in parsed.sents:
        start, end = sent.start_char, sent.end_char
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    # The same merge as rag.ingest.sentences, so sentences line up with chunk boundaries.
    merged = _merge_fragments(text, spans)
    infos = []
    for start, end in merged:
        span = parsed.char_span(start, end, alignment_mode="expand")
        lemmas = frozenset({t.lemma_.lower() for t in span} | {fold(t.text) for t in span})
        infos.append(
            SentenceInfo(
                doc_id="",
                start=p_start + start,
                end=p_start + end,
                text=text[start:end],
                lemmas=lemmas,
                names=frozenset(_names(span)),
                mentions=tuple(
                    replace(m, start=p_start + m.start, end=p_start + m.end) for m in _mentions(span, text)
                ),
                name_clauses=tuple((fold(t.text), clause_head(t)) for t in span if _is_name_word(t)),
                appositives=tuple(_appositives(span, p_start)),
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


# ---------------------------------------------------------------------------
# Questions


@dataclass(frozen=True)
class QuestionInfo:
    """What a question asks for."""

    text: str
    kind: str | None  # "who", "when", "how many", "which", "what", "why", … or None (yes/no, other)
    expected: tuple[str, ...]  # entity labels that can answer it, best first; () = no short answer sought
    content: frozenset[str]  # lemmas of its content words
    slot_names: tuple[str, ...]  # folded names in the wh-clause: they must appear beside the answer
    other_names: tuple[str, ...]  # folded names in other clauses: any cited sentence may hold them
    english: bool  # whether the question looks like English at all
    type_noun: str | None = None  # "value" in "What was the value of …": an entity of the type stands for it
    roles: tuple[str, ...] = ()  # "president" in "Who is the president of …": the answer sentence must say it
    defined: str | None = None  # "kofman" in "Who is Michael Kofman?": answered by a description of the name
    plural: bool = False  # "Which countries …": the short answer may be a list
    year: bool = False  # "In what year …": the answer must hold a year
    acronyms: frozenset[str] = frozenset()  # "us" for "United States": names the question already gives
    clauses: tuple[str, ...] = ()  # the parts of a question that asks two things ("Which law …, and was …?")


def _wh_token(doc):
    for t in doc:
        if t.lower_ in WH_WORDS:
            return t
    return None


def _type_noun(doc, wh):
    """The noun that names what a which/what/whose question asks for."""
    nxt = doc[wh.i + 1] if wh.i + 1 < len(doc) else None
    noun = None
    if wh.dep_ == "det" or (nxt is not None and nxt.pos_ in ("NOUN", "PROPN") and wh.head.i == nxt.i):
        noun = wh.head
    elif nxt is not None and nxt.pos_ == "NOUN":
        noun = nxt
    elif wh.dep_ in ("attr", "nsubj") and wh.head.lemma_ == "be":
        # "What was the value of …": the subject names what is asked.
        subjects = [c for c in wh.head.children if c.dep_ in ("nsubj", "nsubjpass", "attr") and c.i != wh.i]
        noun = subjects[0] if subjects else None
    if noun is None and wh.lower_ in ("which", "what") and wh.dep_ != "attr":
        # A mis-parsed "Which US Secretary of State thanked …": the first type noun before the verb.
        phrase = []
        for t in doc[wh.i + 1 :]:
            if t.pos_ in ("VERB", "AUX"):
                break
            phrase.append(t)
        typed = [t for t in phrase if t.lemma_.lower() in NOUN_LABELS]
        noun = typed[0] if typed else None
    if noun is not None and noun.lemma_.lower() == "name":  # "the name of the law": the noun after "of"
        of_objects = [g for c in noun.children if c.lower_ == "of" for g in c.children if g.dep_ == "pobj"]
        noun = of_objects[0] if of_objects else noun
    return noun


def _kind_and_labels(doc, wh) -> tuple[str | None, tuple[str, ...]]:
    if wh is None:
        return None, ()
    word = wh.lower_
    nxt = doc[wh.i + 1] if wh.i + 1 < len(doc) else None
    if word == "how":
        if nxt is not None and f"how {nxt.lower_}" in TYPE_LABELS:
            kind = f"how {nxt.lower_}"
            labels = TYPE_LABELS[kind]
            after = doc[nxt.i + 1] if nxt.i + 1 < len(doc) else None
            if kind == "how much" and after is not None and after.pos_ == "NOUN" and after.lemma_ not in NOUN_LABELS:
                labels = ("QUANTITY", "MONEY", "CARDINAL")
            return kind, labels
        return "how", ()
    if word in ("which", "what", "whose"):
        noun = _type_noun(doc, wh)
        if noun is not None and (noun.pos_ != "PROPN" or noun.lemma_.lower() in NOUN_LABELS):
            lemma = noun.lemma_.lower()
            if lemma in NOUN_LABELS:
                return word, NOUN_LABELS[lemma]
            if word == "which":  # "which programme": any named thing not in the question
                return word, ("ORG", "PRODUCT", "GPE", "LAW", "EVENT", "WORK_OF_ART", "PERSON", "NORP", "LOC", "FAC")
        if word == "whose":
            return word, TYPE_LABELS["whose"]
        return word, ()
    return word, TYPE_LABELS.get(word, ())


def _clause_of(token, root) -> int:
    """Index of the coordinated clause holding the token (0: the main clause, or a token outside root's tree)."""
    for t in ancestors(token):
        if t.i == root.i:
            return 0
        if t.dep_ == "conj" and t.head.i == root.i and t.pos_ in ("VERB", "AUX"):
            return t.i
    return 0


def _question_sentence(doc):
    """The sentence that asks: the first with a wh-word and a question mark, else the first with a
    wh-word, else the first with a question mark, else the last. The others give context
    ("Gas prices hit a record this week. How much does a gallon cost?")."""
    sentences = list(doc.sents)
    for wanted in (lambda s: _wh_token(s) is not None and "?" in s.text,
                   lambda s: _wh_token(s) is not None,
                   lambda s: "?" in s.text):
        found = next((s for s in sentences if wanted(s)), None)
        if found is not None:
            return found
    return sentences[-1]


def _folded_names(tokens) -> list[str]:
    return [fold(t.text) for t in tokens if _is_name_word(t) and fold(t.text)]


@lru_cache(maxsize=1024)
def analyse_question(question: str) -> QuestionInfo:
    """The type, content words and focus names of a question.

    The question's structure (type, wh-clause, type noun, coordinated parts) comes from the sentence
    that asks; content words and names come from every sentence, so a context sentence still counts.
    """
    full = nlp()(question)
    if not len(full):
        return QuestionInfo(question, None, (), frozenset(), (), (), english=False)
    asking = _question_sentence(full)
    doc = asking.as_doc()  # one sentence: every token's head chain ends at its root
    wh = _wh_token(doc)
    kind, expected = _kind_and_labels(doc, wh)
    content = frozenset(
        t.lemma_.lower()
        for t in full
        if t.pos_ in ("NOUN", "VERB", "ADJ", "ADV", "PROPN", "NUM")
        and not t.is_stop
        and t.lemma_.lower() not in LIGHT_LEMMAS
        and any(ch.isalnum() for ch in t.text)
    )
    # Names in the clause of the wh-word constrain the answer; others (and the context's) only need support.
    root = doc[:].root
    wh_clause = _clause_of(wh, root) if wh is not None else 0
    slot, other = [], []
    for t in doc:
        for name in _folded_names([t]):
            (slot if _clause_of(t, root) == wh_clause else other).append(name)
    context = [t for t in full if not asking.start <= t.i < asking.end]
    other += _folded_names(context)
    # "Who is the president of X?": the role must be stated; "What is the value of X?": a MONEY entity stands for it.
    type_noun, roles, defined, plural = None, (), None, False
    if wh is not None and wh.lower_ in ("which", "what", "whose", "who"):
        noun = _type_noun(doc, wh)
        if noun is not None and (noun.pos_ != "PROPN" or noun.lemma_.lower() in NOUN_LABELS):
            plural = noun.tag_ in ("NNS", "NNPS")
            labels = NOUN_LABELS.get(noun.lemma_.lower(), ())
            if labels == ("PERSON",):
                roles = (noun.lemma_.lower(),)
                expected = ("PERSON",)
            elif labels or wh.lower_ != "who":
                type_noun = noun.lemma_.lower()
        elif noun is not None and wh.head.lemma_ == "be" and wh.lower_ in ("who", "what"):
            # "Who is Michael Kofman?", "What is the S-300?": a definition of the name is asked.
            defined = fold(noun.text)
            kind = "define"
            expected = ()
    alphabetic = [t for t in full if t.is_alpha]
    english = bool(alphabetic) and sum(t.is_stop or t.lower_ in WH_WORDS for t in alphabetic) > 0
    return QuestionInfo(
        text=question,
        kind=kind,
        expected=expected,
        content=content,
        slot_names=tuple(dict.fromkeys(slot)),
        other_names=tuple(n for n in dict.fromkeys(other) if n not in slot),
        english=english,
        type_noun=type_noun,
        roles=roles,
        defined=defined,
        plural=plural,
        year=type_noun in ("year", "decade", "century"),
        acronyms=frozenset(acronym(e.text.split()) for e in full.ents if len(e.text.split()) > 1) - {""},
        clauses=_clauses(doc, root),
    )


def _clauses(doc, root) -> tuple[str, ...]:
    """The main clause and each coordinated clause of a question as separate texts; () when it has one clause."""
    parts = [c for c in root.children if c.dep_ == "conj" and c.pos_ in ("VERB", "AUX")]
    if not parts:
        return ()
    spans = [(min(t.i for t in c.subtree), max(t.i for t in c.subtree) + 1) for c in parts]
    inside = {i for start, end in spans for i in range(start, end)}
    main = [t for t in doc if t.i not in inside and not (t.dep_ == "cc" and t.head.i == root.i)]
    texts = ["".join(t.text_with_ws for t in main).strip(" ,;?") + "?"]
    texts += [doc[start:end].text.strip(" ,;?") + "?" for start, end in spans]
    return tuple(t for t in texts if len(t) > 3)
