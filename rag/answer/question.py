"""Question analysis for the extractive answerer: what a question asks for.

* Its *type* (who, when, how much …) names the entity labels that can answer it; the noun after
  "which"/"what" ("which law") narrows them.
* Its *focus names* (proper names, numbers) are split by clause: names in the clause that holds the
  wh-word constrain the answer and must appear in the sentence that holds it ("How much did **China**
  pay for its S-400 missiles?"); names in a coordinated clause ("…, and was Turkey sanctioned?") may be
  backed by another sentence, and such a question is also searched clause by clause.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from rag.answer.analysis import WH_WORDS, ancestors, is_name_word
from rag.ingest.sentences import nlp
from rag.text import acronym, fold_name

# fmt: off
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
# fmt: on
# Words a question needs for its grammar, not for its meaning.
LIGHT_LEMMAS = {
    "be",
    "do",
    "have",
    "say",
    "mention",
    "article",
    "accord",
    "tell",
    "give",
    "call",
    "name",
    "other",
    "also",
    "according",
    "corpus",
    "text",
    "report",
} | WH_WORDS


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
    type_noun: str | None = None  # "value" in "What is the value of …": an entity of the type stands for it
    roles: tuple[str, ...] = ()  # "president" in "Who is the president of …": the answer sentence must say it
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
        # "What is the value of …": the subject names what is asked.
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
            if word == "which":  # "which singer": any named thing not in the question
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
    for wanted in (
        lambda s: _wh_token(s) is not None and "?" in s.text,
        lambda s: _wh_token(s) is not None,
        lambda s: "?" in s.text,
    ):
        found = next((s for s in sentences if wanted(s)), None)
        if found is not None:
            return found
    return sentences[-1]


def _folded_names(tokens) -> list[str]:
    return [fold_name(t.text) for t in tokens if is_name_word(t) and fold_name(t.text)]


@lru_cache(maxsize=1024)
def parsed_question(question: str):
    """The question parsed by the full spaCy pipeline, once: retrieval's analysis and the reader's both
    read it (treat it as read-only)."""
    return nlp()(question)


@lru_cache(maxsize=1024)
def analyse_question(question: str) -> QuestionInfo:
    """The type, content words and focus names of a question.

    The question's structure (type, wh-clause, type noun, coordinated parts) comes from the sentence
    that asks; content words and names come from every sentence, so a context sentence still counts.
    """
    full = parsed_question(question)
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
    slot: list[str] = []
    other: list[str] = []
    for t in doc:
        for name in _folded_names([t]):
            (slot if _clause_of(t, root) == wh_clause else other).append(name)
    context = [t for t in full if not asking.start <= t.i < asking.end]
    other += _folded_names(context)
    # "Who is the president of X?": the role must be stated; "What is the value of X?": a MONEY entity stands for it.
    type_noun: str | None = None
    roles: tuple[str, ...] = ()
    plural = False
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
