"""Text helpers every stage shares: folding, quotes, stemming, acronyms, demonyms and clipping.

Two foldings exist on purpose. ``fold_name`` keeps a word's letters and accents and only makes
spellings of one name equal ("U.S." = "us"); the answerer compares names with it. ``fold`` goes further
for comparing a claim with its evidence word by word: quotes and dashes made plain, accents removed.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable

# Curly, low and angle quotes and primes -> straight ones; one character for one, so offsets survive.
QUOTES = str.maketrans(
    {"‘": "'", "’": "'", "‛": "'", "‚": "'", "′": "'", "“": '"', "”": '"', "„": '"', "″": '"', "«": '"', "»": '"'}
)
DASHES = str.maketrans({"–": "-", "—": "-", "‑": "-", "−": "-"})
# Words that do not count towards a name's initials ("North Atlantic Treaty Organization" -> nato).
NAME_STOP = {"the", "of", "and", "for", "a", "an", "in", "on", "at", "to", "'s", "s"}
# Endings that turn a place into its people or language: "turkish" -> "turk", "russian" -> "russi".
DEMONYM_SUFFIXES = ("ians", "ian", "eans", "ean", "ese", "ish", "ans", "an", "ns", "s", "n", "y", "a", "i", "e")


def fold_quotes(text: str) -> str:
    """``text`` with straight quotes for curly, low and angle ones (same length, same offsets)."""
    return text.translate(QUOTES)


def fold(text: str) -> str:
    """Lower-cased text with quotes and dashes made plain and accents removed."""
    text = unicodedata.normalize("NFKD", text.translate(QUOTES).translate(DASHES))
    return "".join(ch for ch in text if not unicodedata.combining(ch)).lower()


def fold_name(word: str) -> str:
    """A name word in lower case without dots and curly apostrophes: 'U.S.' -> 'us'."""
    return word.lower().replace(".", "").replace("’", "'").strip("'")


def words(text: str) -> list[str]:
    """Folded word tokens; dots inside acronyms are dropped, also when spaced ("U.S.", "U. S." -> "us")."""
    text = re.sub(r"\b[a-z]\.(?: ?[a-z]\.)+", lambda m: m.group(0).replace(".", "").replace(" ", ""), fold(text))
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text)


# ---------------------------------------------------------------------------
# Quotes located in documents


def _normalised_with_map(text: str) -> tuple[str, list[int], list[int]]:
    """Text in NFC form with straight quotes and single spaces, plus where each character comes from in
    ``text`` (start and end: a letter and its combining accents in NFD text make one NFC character)."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i = 0
    while i < len(text):
        j = i + 1
        while j < len(text) and unicodedata.combining(text[j]):
            j += 1
        if text[i].isspace():
            if out and out[-1] != " ":
                out.append(" ")
                starts.append(i)
                ends.append(i + 1)
            i += 1
            continue
        for ch in unicodedata.normalize("NFC", text[i:j]).translate(QUOTES):
            out.append(ch)
            starts.append(i)
            ends.append(j)
        i = j
    while out and out[-1] == " ":
        out.pop()
        starts.pop()
        ends.pop()
    return "".join(out), starts, ends


def locate_quote(text: str, quote: str) -> tuple[int, int] | None:
    """(start, end) of ``quote`` in ``text``: exact match first, then ignoring whitespace, quote style and
    Unicode form (a quote in decomposed NFD form is found in NFC text, and the other way round).

    Example: locate_quote("He said “yes”\\nthen", '"yes" then') -> (8, 18)
    """
    quote = quote.strip()
    if not quote:
        return None
    position = text.find(quote)
    if position >= 0:
        return position, position + len(quote)
    norm_text, starts, ends = _normalised_with_map(text)
    norm_quote, _, _ = _normalised_with_map(quote)
    position = norm_text.find(norm_quote)
    if position < 0:
        return None
    return starts[position], ends[position + len(norm_quote) - 1]


# ---------------------------------------------------------------------------
# Stems, acronyms and demonyms


def snowball_stemmer():
    """A new English Snowball stemmer (PyStemmer); one per user, as its objects keep a cache."""
    import Stemmer

    return Stemmer.Stemmer("english")


def demonym_stem(word: str) -> str:
    """A crude stem that joins a country to its demonym: 'turkish' -> 'turk', 'russian' -> 'russi'."""
    for suffix in DEMONYM_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def words_match(a: str, b: str) -> bool:
    """Whether two folded words name the same thing: equal, or one starts with the other's stem (≥ 4 letters)."""
    if a == b:
        return True
    sa, sb = demonym_stem(a), demonym_stem(b)
    return (len(sb) >= 4 and a.startswith(sb)) or (len(sa) >= 4 and b.startswith(sa))


def shares_demonym_prefix(name: str, vocabulary: Iterable[str]) -> bool:
    """Whether a word of ``vocabulary`` and ``name`` share a long prefix: Russian/Russia, Turkish/Turkey."""
    for word in vocabulary:
        shorter = min(len(word), len(name))
        need = max(4, shorter - 3)
        if shorter >= 4 and word[:need] == name[:need] and abs(len(word) - len(name)) <= 4:
            return True
    return False


def acronym(name_words: list[str]) -> str:
    """Initials of the capitalised words, lower-cased: ['United', 'States'] -> 'us'."""
    return "".join(w[0] for w in name_words if w[:1].isupper()).lower()


def initials(tokens: list[str]) -> str:
    """Initials of folded tokens, skipping ``NAME_STOP`` words: ['bank', 'of', 'england'] -> 'be'."""
    return "".join(t[0] for t in tokens if t not in NAME_STOP)


# ---------------------------------------------------------------------------
# Clipping for messages and tables


def clip(text: str, limit: int) -> str:
    """``text`` on one line, cut to at most ``limit`` characters with '…'."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def first_line(exc: BaseException, limit: int = 160) -> str:
    """An exception's message clipped for a one-line error (its type name when it has none)."""
    return clip(str(exc), limit) or type(exc).__name__


# ---------------------------------------------------------------------------
# Short answers as scorers compare them

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation) | set("“”‘’–—…")


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD v1.1), with % and $ spelled out."""
    text = text.lower().replace("%", " percent").replace("$", " dollars ")
    text = "".join(" " if ch in _PUNCTUATION else ch for ch in text)
    return " ".join(_ARTICLES.sub(" ", text).split())
