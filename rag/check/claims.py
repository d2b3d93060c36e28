"""The checkable facts of a claim: quantities, dates and names, normalised so that
"76 percent" = "76%", "$5 billion" = "5 billion dollars" and "five" = 5.

Quantities are read with regular expressions (the same rules on the claim and on
the evidence, so both sides normalise alike); spaCy's entities decide which
names a claim makes. Some concessions are made for simplicity: ranges and
qualifiers ("more than 50") are read as their numbers, and relative dates
("last week") are not checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.text import NAME_STOP, fold, initials, shares_demonym_prefix, words

# ---------------------------------------------------------------------------
# Quantities

# fmt: off
_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "dozen": 12,
}
_SCALES = {"hundred": 1e2, "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12,
           "k": 1e3, "m": 1e6, "mn": 1e6, "bn": 1e9, "b": 1e9, "tn": 1e12, "mln": 1e6, "bln": 1e9}
_CURRENCY_SIGNS = {"$": "USD", "us$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR",
                   "usd": "USD", "eur": "EUR", "gbp": "GBP", "jpy": "JPY", "inr": "INR", "a$": "AUD", "c$": "CAD"}
_CURRENCY_WORDS = {"dollar": "USD", "dollars": "USD", "euro": "EUR", "euros": "EUR", "pound": "GBP",
                   "pounds": "GBP", "sterling": "GBP", "yen": "JPY", "yuan": "CNY", "renminbi": "CNY",
                   "rupee": "INR", "rupees": "INR", "rouble": "RUB", "roubles": "RUB", "ruble": "RUB",
                   "rubles": "RUB", "lira": "TRY", "usd": "USD", "eur": "EUR", "gbp": "GBP"}
MONTHS = {m: i for i, names in enumerate(
    [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
     ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"),
     ("november", "nov"), ("december", "dec")], start=1) for m in names}
# fmt: on
_NUM_WORD = "|".join(sorted(_UNITS, key=len, reverse=True))
_NUM = rf"(?:\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|(?:{_NUM_WORD})(?:[- ](?:{_NUM_WORD}))?)"
_SCALE = r"(?:hundred|thousand|million|billion|trillion|bn|mn|mln|bln|tn|k|m|b)"
_SIGN = r"(?:us\$|a\$|c\$|\$|€|£|¥|₹|usd|eur|gbp|jpy|inr)"
_CUR_WORD = "|".join(sorted(_CURRENCY_WORDS, key=len, reverse=True))
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))

_PATTERNS = [
    ("money", re.compile(rf"(?P<sign>{_SIGN})\s?(?P<num>{_NUM})(?:\s?(?P<scale>{_SCALE})\b)?")),
    ("money", re.compile(rf"\b(?P<num>{_NUM})(?:\s?(?P<scale>{_SCALE}))?\s(?P<cur>{_CUR_WORD})\b")),
    ("percent", re.compile(rf"\b(?P<num>{_NUM})\s?(?:%|percent\b|per cent\b|pct\b|percentage points?\b)")),
    (
        "date",
        re.compile(rf"\b(?P<month>{_MONTH})\.?\s(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s(?P<year>\d{{4}})\b)?"),
    ),
    (
        "date",
        re.compile(
            rf"\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s(?:of\s)?(?P<month>{_MONTH})\b(?:,?\s(?P<year>\d{{4}})\b)?"
        ),
    ),
    ("month", re.compile(rf"\b(?P<month>{_MONTH})\b(?:,?\s(?:of\s)?(?P<year>\d{{4}})\b)?")),
    ("number", re.compile(rf"(?<![\w.,-])(?P<num>{_NUM})(?:\s?(?P<scale>{_SCALE})\b)?(?![\w%])")),
]
# Lower-case words that are month names but usually are not dates on their own.
_AMBIGUOUS_MONTHS = {"may", "mar", "march", "jan", "sep", "dec", "oct", "nov", "aug", "jun", "jul", "feb", "apr"}


@dataclass(frozen=True)
class Quantity:
    """A number, amount, percentage or date found in a text, with its normalised value.

    ``kind`` is one of number, money, percent, year, date (month and day) or month.
    ``tolerance`` is how far another value may be and still count as equal: half a
    unit of the last digit written before a scale word ("5 billion" ± 0.5 billion).
    """

    kind: str
    value: float
    text: str
    start: int
    end: int
    unit: str = ""
    tolerance: float = 0.0

    def matches(self, other: Quantity) -> bool:
        """Whether ``other`` states the same quantity (a plain number matches any kind of equal value)."""
        if self.kind == "number" or other.kind == "number":
            kinds_fit = self.kind in {"number", "money", "percent", "year"} and other.kind in {
                "number",
                "money",
                "percent",
                "year",
            }
        elif self.kind == "month":
            kinds_fit = other.kind in {"month", "date"}
        else:
            kinds_fit = self.kind == other.kind
        if not kinds_fit:
            return False
        if self.kind == "month" and other.kind == "date":
            return int(other.value) // 100 == int(self.value)
        if self.unit and other.unit and self.unit != other.unit:
            return False
        return abs(self.value - other.value) <= max(self.tolerance, 1e-9 * abs(self.value))


def parse_number(text: str) -> tuple[float, float] | None:
    """(value, tolerance) of a written number: "1,200" -> 1200, "five" -> 5, "twenty-five" -> 25."""
    text = text.strip().lower()
    if text[:1].isdigit():
        return float(text.replace(",", "")), 0.0
    total = 0
    for part in re.split(r"[- ]", text):
        if part not in _UNITS:
            return None
        total += _UNITS[part]
    return float(total), 0.0


def _with_scale(value: float, number: str, scale: str | None) -> tuple[float, float]:
    if not scale:
        return value, 0.0
    factor = _SCALES[scale.lower()]
    decimals = len(number.split(".", 1)[1]) if "." in number else 0
    # "5 billion" says 5 to the nearest billion; "4.97 billion" to the nearest 10 million.
    return value * factor, 0.5 * factor / (10**decimals)


def _is_year(value: float, raw: str) -> bool:
    return raw.isdigit() and len(raw) == 4 and 1600 <= value <= 2100


def extract_quantities(text: str) -> list[Quantity]:
    """Every quantity in ``text``, leftmost-longest, without overlaps.

    Example: "$5 billion in July 2019" -> money 5e9 USD, month 7, year 2019.
    """
    folded = fold(text)
    taken: list[tuple[int, int]] = []
    found: list[Quantity] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(folded):
            start, end = match.span()
            if not free(start, end):
                continue
            groups = match.groupdict()
            raw = text[start:end]
            if kind in {"date", "month"}:
                month_word = groups["month"]
                if (
                    kind == "month"
                    and month_word in _AMBIGUOUS_MONTHS
                    and not groups.get("year")
                    and not raw[:1].isupper()
                ):
                    continue
                if kind == "month" and not raw[:1].isupper():
                    continue
                month = MONTHS[month_word]
                if kind == "date":
                    day = int(groups["day"])
                    if not 1 <= day <= 31:
                        continue
                    found.append(Quantity("date", month * 100 + day, raw, start, end))
                else:
                    found.append(Quantity("month", month, raw, start, end))
                if groups.get("year"):
                    y_start, y_end = match.span("year")
                    found.append(Quantity("year", float(groups["year"]), text[y_start:y_end], y_start, y_end))
                taken.append((start, end))
                continue
            parsed = parse_number(groups["num"])
            if parsed is None:
                continue
            scale = groups.get("scale")
            # A bare "m" or "b" after a number is a scale only for amounts of money ("$5m").
            if scale and scale in {"m", "b", "k"} and kind != "money":
                scale = None
                end = match.end("num")
                raw = text[start:end]
            value, tolerance = _with_scale(parsed[0], groups["num"], scale)
            unit = ""
            if kind == "money":
                unit = _CURRENCY_SIGNS.get(groups.get("sign") or "", "") or _CURRENCY_WORDS.get(
                    groups.get("cur") or "", ""
                )
            if kind == "number" and not scale and _is_year(value, groups["num"]):
                kind_here = "year"
            else:
                kind_here = kind
            # Spelled-out "one" is as often a pronoun ("one of five") as a count: keep digits and larger words.
            if kind_here == "number" and groups["num"] in {"one", "zero"}:
                continue
            found.append(Quantity(kind_here, value, raw, start, end, unit, tolerance))
            taken.append((start, end))
    return sorted(found, key=lambda q: q.start)


@dataclass(frozen=True)
class QuantityCheck:
    """How the claim's quantities fare against the evidence."""

    missing: tuple[Quantity, ...]  # not stated in the evidence
    conflicts: tuple[tuple[Quantity, Quantity], ...]  # (claim's, evidence's) same kind, other value
    total: int


def check_quantities(claim: list[Quantity], evidence: list[Quantity]) -> QuantityCheck:
    """Finds each claim quantity among the evidence's, naming the ones that contradict."""
    missing, conflicts = [], []
    for q in claim:
        if any(q.matches(e) for e in evidence):
            continue
        missing.append(q)
        rival = next((e for e in evidence if e.kind == q.kind and q.kind != "number"), None)
        if rival is not None:
            conflicts.append((q, rival))
    return QuantityCheck(tuple(missing), tuple(conflicts), len(claim))


# ---------------------------------------------------------------------------
# Names

NAME_LABELS = {"PERSON", "ORG", "GPE", "NORP", "LOC", "FAC", "EVENT", "LAW", "PRODUCT", "WORK_OF_ART", "LANGUAGE"}
# A tiny table of common aliases; general, not tied to any article.
# fmt: off
_ALIASES = [
    {"us", "usa", "united states", "united states of america", "america", "american", "americans"},
    {"uk", "united kingdom", "britain", "great britain", "british"},
    {"eu", "european union"},
    {"un", "united nations"},
    {"uae", "united arab emirates", "emirati"},
    {"ussr", "soviet union", "soviet"},
    {"nato", "north atlantic treaty organization", "north atlantic treaty organisation"},
    {"netherlands", "holland", "dutch"},
    {"france", "french"}, {"germany", "german"}, {"spain", "spanish"}, {"switzerland", "swiss"},
    {"greece", "greek"}, {"ireland", "irish"}, {"wales", "welsh"}, {"philippines", "filipino"},
    {"england", "english"}, {"scotland", "scottish"}, {"israel", "israeli"}, {"pakistan", "pakistani"},
    {"sweden", "swedish"}, {"denmark", "danish"}, {"finland", "finnish"}, {"poland", "polish"},
    {"norway", "norwegian"}, {"peru", "peruvian"}, {"thailand", "thai"}, {"vietnam", "vietnamese"},
]
# fmt: on
_ALIAS_OF = {name: group for group in _ALIASES for name in group}


def _contains(haystack: str, needle: str) -> bool:
    return bool(needle) and re.search(rf"(?<![a-z0-9]){re.escape(needle)}(?![a-z0-9])", haystack) is not None


@dataclass(frozen=True)
class NameIndex:
    """Evidence text prepared for name look-ups."""

    text: str  # folded words joined by single spaces
    vocabulary: frozenset[str]
    acronyms: frozenset[str]  # initials of runs of capitalised words ("North Atlantic Treaty Organization" -> nato)

    @classmethod
    def of(cls, text: str) -> NameIndex:
        tokens = words(text)
        acronyms = set()
        for run in re.findall(r"(?:[A-Z][\w'’-]*(?:\s+(?:of|and|for|the)\s+|\s+)?){2,}", text):
            acronyms.add(initials(words(run)))
        return cls(" " + " ".join(tokens) + " ", frozenset(tokens), frozenset(acronyms))


def name_found(name: str, label: str, evidence: NameIndex) -> bool:
    """Whether the evidence mentions the named entity ``name`` (surname alone counts for people)."""
    tokens = [t for t in words(name) if t not in {"the"}]
    tokens = [t[:-2] if t.endswith("'s") else t for t in tokens]
    if not tokens:
        return True
    phrase = " ".join(tokens)
    if _contains(evidence.text, phrase):
        return True
    for alias in _ALIAS_OF.get(phrase, ()):
        if _contains(evidence.text, alias):
            return True
    if label == "PERSON" and len(tokens[-1]) >= 3 and tokens[-1] in evidence.vocabulary:
        return True
    if len(tokens) == 1:
        token = tokens[0]
        if token.isalpha() and 2 <= len(token) <= 6 and name.replace(".", "").isupper() and token in evidence.acronyms:
            return True
        return label in {"NORP", "GPE", "LANGUAGE"} and shares_demonym_prefix(token, evidence.vocabulary)
    if len(tokens) >= 2 and initials(tokens) in evidence.vocabulary:
        return True
    significant = [t for t in tokens if t not in NAME_STOP]
    return bool(significant) and all(t in evidence.vocabulary for t in significant)


# ---------------------------------------------------------------------------
# Negation

NEGATIONS = {"not", "n't", "never", "no", "none", "nobody", "nothing", "neither", "nor", "without", "cannot"}
