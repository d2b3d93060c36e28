"""Keeping secrets out of everything shown, logged or written: API keys, URL passwords, query-string tokens.

Secrets are registered when the LLM settings are read (``register_secret``); ``redact`` then replaces
each of them, and every piece of one of at least ``MIN_PIECE`` characters (what survives a message cut
short), with ``***``, and strips credentials from any URL in the text. The CLI passes every log record
and every error message through it (``install_log_redaction``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

MIN_PIECE = 8  # characters: a shorter piece of a key (a common prefix like "sk-") gives nothing away
MASK = "***"
# Query parameters that carry credentials ("?api_key=…", "&token=…").
SECRET_QUERY_KEYS = frozenset(
    {
        "api_key",
        "apikey",
        "api-key",
        "key",
        "token",
        "access_token",
        "auth",
        "authorization",
        "password",
        "passwd",
        "secret",
        "client_secret",
        "sig",
        "signature",
        "x-api-key",
        "code",
    }
)
_USERINFO = re.compile(r"(?<=://)[^/@\s\"'<>]+@")
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:" + "|".join(re.escape(k) for k in sorted(SECRET_QUERY_KEYS)) + r")=)[^&#\s\"'<>]+"
)

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Remembers a secret so that ``redact`` hides it from now on (in this process)."""
    if secret:
        with _lock:
            _secrets.add(secret)


def url_secrets(url: str) -> list[str]:
    """The secrets a URL carries: its password and the values of secret query parameters.

    The user name is not one (hiding every "alice" in every message would hide too much); URLs are shown
    without their user part anyway.
    """
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    found += [value for key, value in parse_qsl(parts.query) if key.lower() in SECRET_QUERY_KEYS and value]
    return found


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every registered secret (and ``secrets``), whole or any piece of ``MIN_PIECE``
    characters or more, replaced by ``***``, and credentials removed from URLs.

    Example: with "sk-abcdefghijkl" registered, redact("key sk-abcdefgh… refused") -> "key ***… refused"
    """
    with _lock:
        known = set(_secrets)
    known.update(s for s in secrets if s)
    hidden = [False] * len(text)
    for secret in known:
        size = min(MIN_PIECE, len(secret))
        pieces = {secret[i : i + size] for i in range(len(secret) - size + 1)}
        for i in range(len(text) - size + 1):
            if text[i : i + size] in pieces:
                hidden[i : i + size] = [True] * size
    if any(hidden):
        out, position = [], 0
        while position < len(text):
            if hidden[position]:
                while position < len(text) and hidden[position]:
                    position += 1
                out.append(MASK)
            else:
                out.append(text[position])
                position += 1
        text = "".join(out)
    return _QUERY_SECRET.sub(lambda m: m.group(1) + MASK, _USERINFO.sub("", text))


class RedactingFilter(logging.Filter):
    """Passes every log record through ``redact`` (the HTTP client logs each request's full URL at -v)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def install_log_redaction() -> None:
    """Adds a ``RedactingFilter`` to every handler of the root logger (once)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
