"""What a question asks, as the reader's features see it: wh-word, type noun, and the asked thing's role.

A question may open with a context sentence ("Gas prices hit a record this week. How much does a
gallon cost?"): the asking sentence is the last one with a wh-word or a question mark, and the type
comes from it; the context still counts for word overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

WH = ("who", "whom", "whose", "what", "which", "where", "when", "why", "how")
HOW_ADJECTIVES = {"many", "much", "long", "old", "far", "big", "large", "often", "high", "tall", "fast"}
QUESTION_TYPES = (
    "who", "whom", "whose", "what", "which", "where", "when", "why", "how",
    "how many", "how much", "how long", "how old", "how other", "none",
)  # fmt: skip
ROLES = ("none", "subject", "object", "pobj", "other")
# What a bare wh-word asks for, when no noun names it ("Who …?" asks for a person).
WH_TYPE_PHRASE = {
    "who": "person", "whom": "person", "whose": "person", "where": "place", "when": "date",
    "how many": "number", "how much": "amount", "how long": "duration", "how old": "age",
}  # fmt: skip
# Nouns that name a kind rather than the thing: "what is the name of the ship" asks for a ship.
KIND_NOUNS = {"name", "title", "kind", "type", "sort"}
LIGHT_VERBS = {"be", "have", "do"}
SUBORDINATE = {"advcl", "relcl", "ccomp", "acl"}


@dataclass(frozen=True)
class AskedFor:
    """The reader's view of a question."""

    text: str
    kind: str  # one of QUESTION_TYPES
    type_noun: str | None  # "which law" -> "law"
    lemmas: frozenset[str]  # content lemmas of the whole question, context included
    words: frozenset[str]  # lower-cased words of the question
    focus: frozenset[str]  # content lemmas of the asking sentence only
    verbs: frozenset[str]  # content verbs of the asking sentence
    role: str  # the asked thing's role in its clause (ROLES)
    sentences: int  # how many sentences the question has
    plural: bool = False  # "which two countries …": the answer may be a list
    yes_no: bool = False  # "Did Turkey buy …?": answered by the deciding sentence

    @property
    def type_phrase(self) -> str | None:
        """Words naming the expected answer's type, to compare with candidates ("law", "person")."""
        return self.type_noun or WH_TYPE_PHRASE.get(self.kind)


def _content(tokens) -> frozenset[str]:
    return frozenset(
        t.lemma_.lower() for t in tokens if not t.is_stop and not t.is_punct and (t.is_alpha or t.like_num)
    )


def asking_sentence(doc):
    """The sentence that asks (the last with a wh-word or a question mark), and how many sentences there are."""
    sentences = list(doc.sents)
    for sentence in reversed(sentences):
        if any(t.lower_ in WH for t in sentence) or sentence.text.strip().endswith("?"):
            return sentence, len(sentences)
    return (sentences[-1] if sentences else doc[:]), len(sentences)


def _wh_token(sentence):
    found = [t for t in sentence if t.lower_ in WH]
    # "when"/"where"/"why" opening a subordinate clause are not what is asked ("What did he say when …")
    main = [t for t in found if not (t.lower_ in ("when", "where", "why") and t.head.dep_ in SUBORDINATE)]
    strong = [t for t in main if t.lower_ in ("which", "what", "who", "whom", "whose", "how")]
    return (strong or main or found or [None])[0]


def _compound_head(token, limit: int):
    while token.dep_ == "compound" and token.i < token.head.i <= limit:
        token = token.head
    return token


def _how_type(doc, wh) -> tuple[str, str | None]:
    after = doc[wh.i + 1] if wh.i + 1 < len(doc) else None
    if after is None or after.lower_ not in HOW_ADJECTIVES:
        return "how", None
    kind = f"how {after.lower_}" if f"how {after.lower_}" in QUESTION_TYPES else "how other"
    for token in doc[after.i + 1 : after.i + 5]:
        if token.pos_ in ("NOUN", "PROPN"):
            return kind, _compound_head(token, after.i + 6).lemma_.lower()
        if token.pos_ not in ("ADJ", "NUM") and token.text != "-":
            break
    return kind, None


def _which_noun(doc, wh):
    if wh.dep_ == "det" and wh.head.pos_ in ("NOUN", "PROPN"):
        return wh.head
    for token in doc[wh.i + 1 : wh.i + 6]:
        if token.text == "-":
            continue
        if token.pos_ in ("AUX", "ADP", "PUNCT") or (token.pos_ == "VERB" and token.dep_ != "amod"):
            break
        if token.pos_ == "NOUN":
            return _compound_head(token, wh.i + 5)
    if wh.head.lemma_ == "be":  # "What is the currency …": the subject names the type
        subjects = [c for c in wh.head.children if c.dep_ in ("nsubj", "attr", "nsubjpass") and c.i != wh.i]
        if subjects:
            return subjects[0]
    return None


def _role(wh) -> str:
    if wh is None:
        return "none"
    anchor = wh.head if wh.dep_ == "det" else wh
    if anchor.dep_ in ("nsubj", "nsubjpass"):
        return "subject"
    if anchor.dep_ in ("dobj", "attr", "oprd"):
        return "object"
    return "pobj" if anchor.dep_ == "pobj" else "other"


def asked_for(doc) -> AskedFor:
    """The reader's analysis of a parsed question (a spaCy Doc)."""
    sentence, n_sentences = asking_sentence(doc)
    wh = _wh_token(sentence)
    kind, type_noun, plural = "none", None, False
    if wh is not None:
        kind = wh.lower_
        if kind == "how":
            kind, type_noun = _how_type(doc, wh)
        elif kind in ("which", "what", "whose"):
            noun = _which_noun(doc, wh)
            if noun is not None and noun.lemma_.lower() in KIND_NOUNS:
                objects = [g for c in noun.children if c.lower_ == "of" for g in c.children if g.dep_ == "pobj"]
                noun = objects[0] if objects else noun
            type_noun = noun.lemma_.lower() if noun is not None else None
            plural = noun is not None and noun.tag_ in ("NNS", "NNPS")
    elif len(sentence) and sentence[0].lower_ in ("name", "identify", "list"):  # "Name the …"
        kind = "what"
        plural = any(t.tag_ in ("NNS", "NNPS") for t in sentence[1:4])
    verbs = frozenset(t.lemma_.lower() for t in sentence if t.pos_ == "VERB") - LIGHT_VERBS
    return AskedFor(
        text=doc.text,
        kind=kind,
        type_noun=type_noun,
        lemmas=_content(doc) - set(WH),
        words=frozenset(t.lower_ for t in doc if not t.is_punct),
        focus=_content(sentence),
        verbs=verbs,
        role=_role(wh),
        sentences=n_sentences,
        plural=plural,
        yes_no=wh is None and len(sentence) > 0 and sentence[0].pos_ == "AUX",
    )
