"""Normalising plain article text: hard-wrapped lines joined back into paragraphs, a headline found.

Paragraphs are separated by a blank line and runs of spaces collapse to one; every offset of the
later stages refers to the text produced here.
"""

from __future__ import annotations

import re

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_SENTENCE_END = re.compile(r"[.!?:;…][\"'”’)\]]*$")


def clean_line(line: str) -> str:
    """One line with runs of spaces (any Unicode space) collapsed and the ends trimmed."""
    return _SPACES.sub(" ", line).strip()


def _blocks(lines: list[str]) -> list[list[str]]:
    """Groups of consecutive non-blank lines."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if line:
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _wrap_width(lines: list[str]) -> int | None:
    """The column at which the text was hard-wrapped, or None when it was not.

    A hard-wrapped text has many lines that end close to one common width;
    free-flowing text has one paragraph a line with widely varying lengths.
    """
    lengths = [len(line) for line in lines if line]
    if len(lengths) < 4:
        return None
    width = sorted(lengths)[int(0.9 * (len(lengths) - 1))]
    if width > 200:
        return None
    near_width = sum(1 for n in lengths if n >= 0.7 * width)
    # A wrapper breaks lines mid-sentence; one-paragraph-a-line text ends lines at sentence ends.
    mid_sentence = sum(1 for line in lines if line and not _SENTENCE_END.search(line))
    if width < 40 or near_width < 0.5 * len(lengths) or mid_sentence < 0.4 * len(lengths):
        return None
    return width


def _join_wrapped(lines: list[str]) -> str:
    """Joins the lines of one paragraph; a line ending in '-' joins without a space, keeping the hyphen."""
    text = lines[0]
    for line in lines[1:]:
        text = text + line if text.endswith("-") else text + " " + line
    return text


def _is_headline(block: list[str]) -> bool:
    words = " ".join(block).split()
    if not 2 <= len(words) <= 30 or len(block) > 3:
        return False
    if _SENTENCE_END.search(block[-1]):
        return False
    capitalised = sum(1 for w in words if w[:1].isupper() or not w[:1].isalpha())
    return capitalised >= 0.6 * len(words)


def _paragraphs(raw: str) -> tuple[str | None, list[str]]:
    """Splits raw text into (headline or None, paragraphs), joining hard-wrapped lines."""
    lines = [clean_line(line) for line in raw.splitlines()]
    blocks = _blocks(lines)
    if not blocks:
        return None, []
    width = _wrap_width(lines)
    headline = None
    if _is_headline(blocks[0]) and (len(blocks[0]) > 1 or len(blocks) > 1):
        headline = " ".join(blocks[0])
        blocks = blocks[1:]
    paragraphs: list[str] = []
    for block in blocks:
        if width is None:
            paragraphs.extend(block)  # one paragraph a line
            continue
        current = [block[0]]
        for line in block[1:]:
            previous = current[-1]
            next_word = line.split(" ", 1)[0]
            # A wrapper breaks a line only when the next word would not fit; a short line
            # ending a sentence is a paragraph end.
            wrapped = len(previous) + 1 + len(next_word) > width * 0.85 or not _SENTENCE_END.search(previous)
            if wrapped:
                current.append(line)
            else:
                paragraphs.append(_join_wrapped(current))
                current = [line]
        paragraphs.append(_join_wrapped(current))
    return headline, paragraphs


def normalise_text(raw: str) -> tuple[str | None, str]:
    """Returns (headline or None, normalised text) for a plain-text article.

    Paragraphs are separated by a blank line; a recognised headline is kept as
    the first paragraph so it can be cited like any other text.
    """
    headline, paragraphs = _paragraphs(raw)
    parts = ([headline] if headline else []) + paragraphs
    return headline, "\n\n".join(parts)


def fallback_title(text: str, doc_id: str) -> str:
    first = text.split("\n", 1)[0].strip()
    if not first:
        return doc_id
    words = first.split()
    return " ".join(words[:12]) + (" …" if len(words) > 12 else "")
