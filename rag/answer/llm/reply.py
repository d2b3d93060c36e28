"""Reading the model's reply: its sentences, the [n] passages each cites, and whether it declines.

Also ``missing_codes`` and ``missing_names``: designators ("S-400", "F-35") and proper names the citation
checker's entity tagger does not see ("Kofman is …") of a sentence that the text it cites does not hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.check.claims import NameIndex, name_found
from rag.check.formats import MARKER
from rag.ingest.sentences import nlp, sentence_spans
from rag.records import NO_ANSWER
from rag.text import fold_name, fold_quotes, words_match

# "[Passage 2]", "[source 2]", "[doc 2]" mean "[2]".
_VERBOSE_MARKER = re.compile(r"\[\s*(?:passage|source|doc(?:ument)?|ref(?:erence)?)\s*#?\s*(\d+)\s*\]", re.I)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_EMPHASIS = re.compile(r"\*\*|__")
# What may stand before a marker that opens a line: spaces, a list mark, other markers' places.
_LINE_OPENING = re.compile(r"\s*(?:[-*•]|\d+[.)])?\s*(?:\*\*|__)?\s*")
_DECLINE = re.compile(
    r"\b(?:corpus|passages?|articles?|sources?|context|documents?|texts?)\b[^.]*?"
    r"\b(?:not|no|cannot|can't|doesn't|don't)\b[^.]*?"
    r"\b(?:answer|contain|mention|say|state|provide|include|address|specify|information)",
    re.I,
)


# A decline of the whole question ("… do not answer …", the decline sentence itself), not of one detail.
_WHOLE_DECLINE = re.compile(r"\b(?:not|cannot|can't|doesn't|don't|no)\b[^.]*?\banswer", re.I)


@dataclass(frozen=True)
class ReplySentence:
    """One sentence of the model's reply: its text without markers, the [n] it cites, and whether it declines."""

    text: str
    labels: tuple[int, ...]
    declined: bool = False


def _says_no_answer(text: str) -> bool:
    return NO_ANSWER.lower().rstrip(".") in " ".join(fold_quotes(text.lower()).split())


def _is_decline(text: str) -> bool:
    return _says_no_answer(text) or bool(_DECLINE.search(" ".join(fold_quotes(text.lower()).split())))


def _leads_its_line(text: str, match: re.Match) -> bool:
    """Whether a marker opens its line ("[2] Beta paid …", "- [2] Beta …"): it then cites what follows it."""
    line_start = text.rfind("\n", 0, match.start()) + 1
    line_end = text.find("\n", match.end())
    rest = MARKER.sub("", text[match.end() : len(text) if line_end < 0 else line_end])
    return bool(_LINE_OPENING.fullmatch(text[line_start : match.start()])) and any(ch.isalnum() for ch in rest)


def reply_declines(sentences: list[ReplySentence]) -> bool:
    """Whether a reply says the passages do not answer: it opens with a decline, or one of its sentences
    declines the whole question ("The corpus does not answer this question.", "… do not answer …"). Then
    whatever else it says (small models often restate the passages) is no answer.

    A decline of one detail after an answer ("The passages do not say when it was signed.") is a caveat.
    """
    return any(s.declined and (i == 0 or bool(_WHOLE_DECLINE.search(s.text))) for i, s in enumerate(sentences))


def _without_markers(text: str) -> tuple[str, list[tuple[int, tuple[int, ...], bool]]]:
    """The text with its [n] markers taken out, and (position in that text, labels, whether the marker opens
    its line) of each marker."""
    pieces, marks, position, length = [], [], 0, 0
    for match in MARKER.finditer(text):
        # The space before a marker goes with it: "S-400s [1], and" -> "S-400s, and".
        before = text[position : match.start()].rstrip(" \t")
        pieces.append(before)
        length += len(before)
        labels = tuple(int(n) for n in re.split(r"\s*[,;]\s*", match.group(1).strip()))
        marks.append((length, labels, _leads_its_line(text, match)))
        position = match.end()
    pieces.append(text[position:])
    return "".join(pieces), marks


def parse_reply(reply: str) -> list[ReplySentence]:
    """The reply's sentences with the [n] labels each carries, markers removed, list marks tidied away.

    Markers are taken out before the sentence splitter runs (spaCy tends to end a sentence at a
    mid-sentence "[1]"), then each is given to the sentence it stands in or, between two sentences,
    to the one before; a marker that opens a line ("[2] Beta paid …", as small models write lists)
    cites the sentence after it. Each line is split on its own: replies are often lists. An uncited
    sentence saying the passages do not answer is marked ``declined``: it is no claim to check.

    Example: "Turkey bought S-400s [1], and India signed a deal [2]." -> one sentence, labels (1, 2);
    "[1] Alpha signed.\n[2] Beta paid." -> "Alpha signed." (1,) and "Beta paid." (2,).
    """
    text = _VERBOSE_MARKER.sub(r"[\1]", reply)
    text = "\n\n".join(line for line in text.splitlines())
    clean, marks = _without_markers(text)
    spans = sentence_spans(clean)
    labels: list[list[int]] = [[] for _ in spans]
    for position, found, leading in marks:
        if not spans:
            break
        if leading:  # the first sentence that ends after the marker (a list mark before it may start it)
            owner = min([i for i, (_, end) in enumerate(spans) if end > position] or [len(spans) - 1])
        else:  # the last sentence that starts at or before it (the first one for a marker before any text)
            owner = max([i for i, (start, _) in enumerate(spans) if start <= position] or [0])
        labels[owner] += found
    result: list[ReplySentence] = []
    for (start, end), cited in zip(spans, labels):
        sentence = " ".join(_EMPHASIS.sub("", _BULLET.sub("", clean[start:end])).split())
        sentence = re.sub(r"\s+([.,;:!?])", r"\1", sentence)
        if not any(ch.isalnum() for ch in sentence):
            if result and cited:  # a stray "." or quote after the markers
                last = result[-1]
                result[-1] = ReplySentence(last.text, tuple(dict.fromkeys(last.labels + tuple(cited))))
            continue
        unique = tuple(dict.fromkeys(cited))
        if not unique and sentence.endswith(":"):
            continue  # a lead-in ("Here is what the passages say:"), not a claim
        # The decline sentence itself declines even with a marker after it; other wording only uncited.
        declined = _is_decline(sentence) and (not unique or _says_no_answer(sentence))
        result.append(ReplySentence(sentence, unique, declined=declined))
    return result


def complete_sentences(buffer: str) -> list[ReplySentence]:
    """The sentences of a growing reply that are complete: all but the last, once a next one has begun.

    A marker still being written ("... next year. [1") is left out until it closes, so a sentence is not
    taken as complete before the marker that follows it has arrived.
    """
    opening = buffer.rfind("[")
    if opening > buffer.rfind("]"):
        buffer = buffer[:opening]
    return parse_reply(buffer)[:-1]


# ---------------------------------------------------------------------------
# Codes: model and product designators

# A word that starts with a letter and holds a digit: "S-400s", "F-35", "COVID-19", "MH17", "G20".
# Amounts and ordinals ("5bn", "3rd", "1990s") start with a digit and are the checker's business.
_CODE = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*\b")


def _code_key(code: str) -> str:
    """ "S-400s" and "s400" -> "s400": case, hyphens and a plural "s" after a digit do not matter."""
    key = code.lower().replace("-", "")
    return key[:-1] if len(key) > 2 and key.endswith("s") and key[-2].isdigit() else key


def missing_codes(claim: str, cited: list[str]) -> list[str]:
    """Designators of the claim (letters with digits) that none of the cited texts holds.

    Example: missing_codes("The S-303s are deployed", ["The S-300s, an earlier version"]) -> ["S-303s"]
    """
    have = {_code_key(m) for text in cited for m in _CODE.findall(text) if any(ch.isdigit() for ch in m)}
    wanted = [m for m in _CODE.findall(claim) if any(ch.isdigit() for ch in m)]
    return [m for m in dict.fromkeys(wanted) if _code_key(m) not in have]


def missing_names(claim: str, cited: list[str]) -> list[str]:
    """Proper nouns of the claim outside any tagged entity (the checker already checks those) that none of
    the cited texts names, allowing the spellings names take ("Turkish" ~ "Turkey", "US" ~ "United States").

    Example: missing_names("Kofman is a security analyst.", ["Some analysts contend …"]) -> ["Kofman"]
    """
    nouns = [
        t.text
        for t in nlp()(claim)
        # Designators with digits are missing_codes' business.
        if t.pos_ == "PROPN" and not t.ent_type_ and t.text[:1].isupper() and not any(c.isdigit() for c in t.text)
    ]
    if not nouns:
        return []
    indexes = [NameIndex.of(text) for text in cited]

    def named(noun: str) -> bool:
        folded = fold_name(noun)
        return any(
            name_found(noun, "GPE", index) or any(words_match(folded, word) for word in index.vocabulary)
            for index in indexes
        )

    return [noun for noun in dict.fromkeys(nouns) if not named(noun)]
