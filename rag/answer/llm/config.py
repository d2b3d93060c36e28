"""Where the LLM server is and how to call it: ``LLMConfig``, from options and ``RAG_LLM_*`` variables.

The API key is held in a field that no repr, message or log line shows; only the ``Authorization``
header carries it. Every secret (the key, a password or token in the base URL) is registered with
``rag.redaction`` as soon as a config is made, which hides it, whole or in part, in every message and
log line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from rag.errors import RagError
from rag.redaction import register_secret, url_secrets
from rag.settings import env_number

DEFAULT_BASE_URL = "http://127.0.0.1:11434/v1"  # Ollama's OpenAI-compatible API
DEFAULT_MODEL = "llama3.1"
# Seconds to wait for the first word of a reply. A local model on a laptop CPU reads ~1,000 tokens of
# passages at 30–100 tokens/s before it writes (a 1.5B model on 2 busy cores: up to a minute), and Ollama
# may first load the model; the reply itself is streamed, so its length does not count.
DEFAULT_TIMEOUT = 120.0
DEFAULT_RETRIES = 2


def display_url(url: str) -> str:
    """The URL without user name, password or query string, safe to show and log."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))


@dataclass(frozen=True)
class LLMConfig:
    """Where the chat endpoint is and how to call it.

    Args:
        base_url: the API root that ends before ``/chat/completions`` (e.g. ``http://127.0.0.1:11434/v1``).
        model: the model name the server knows.
        api_key: sent as ``Authorization: Bearer``; never shown (``repr=False``).
        timeout: seconds to wait for the first word of the reply, then for each next piece (a connection is
            waited for at most 10 s); the whole reply may take longer.
        retries: further attempts after a connection failure, a timeout, 408, 409, 429 or 5xx (the SDK's rule,
            with its exponential backoff and the server's Retry-After).
        temperature: 0 keeps replies close to the passages and repeatable.
        max_tokens: cap on the reply length.
    """

    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    api_key: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    temperature: float = 0.0
    max_tokens: int = 512

    def __post_init__(self) -> None:
        for secret in (self.api_key, *url_secrets(self.base_url)):
            register_secret(secret)
        if urlsplit(self.base_url).scheme not in ("http", "https"):
            raise RagError(
                f"LLM base URL '{display_url(self.base_url)}' is not an http(s) URL: give one like {DEFAULT_BASE_URL}"
            )
        if self.timeout <= 0:
            raise RagError(f"LLM timeout must be positive, not {self.timeout}: give seconds, e.g. --llm-timeout 60")
        if self.retries < 0:
            raise RagError(f"LLM retries must be 0 or more, not {self.retries}")

    @classmethod
    def from_env(cls, key_env: str | None = None, **overrides: Any) -> LLMConfig:
        """Settings from ``RAG_LLM_BASE_URL``, ``RAG_LLM_MODEL``, ``RAG_LLM_API_KEY`` (or ``OPENAI_API_KEY``),
        ``RAG_LLM_TIMEOUT`` and ``RAG_LLM_RETRIES``; ``overrides`` that are not None win.

        ``key_env`` names another variable that holds the key (the key itself never goes on a command line).
        """
        if key_env:
            if not os.environ.get(key_env):
                raise RagError(f"the environment variable {key_env} holds no API key: export {key_env}=... first")
            api_key: str | None = os.environ[key_env]
        else:
            api_key = os.environ.get("RAG_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or None
        values: dict[str, Any] = {
            "base_url": os.environ.get("RAG_LLM_BASE_URL") or DEFAULT_BASE_URL,
            "model": os.environ.get("RAG_LLM_MODEL") or DEFAULT_MODEL,
            "api_key": api_key,
            "timeout": env_number("RAG_LLM_TIMEOUT", DEFAULT_TIMEOUT),
            "retries": env_number("RAG_LLM_RETRIES", DEFAULT_RETRIES, int),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def api_root(self) -> str:
        """The base URL without user:pass@ and query: what the SDK appends /chat/completions to."""
        parts = urlsplit(self.base_url)
        return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))

    @property
    def query(self) -> dict[str, str]:
        """The base URL's query parameters, sent with every request (``?api-version=…``, ``?api_key=…``)."""
        return dict(parse_qsl(urlsplit(self.base_url).query, keep_blank_values=True))

    @property
    def auth(self) -> tuple[str, str] | None:
        """(user, password) from the base URL, sent as HTTP Basic auth, or None."""
        parts = urlsplit(self.base_url)
        if parts.username is None:
            return None
        return unquote(parts.username), unquote(parts.password or "")

    @property
    def where(self) -> str:
        """The server as shown in messages (no credentials)."""
        return display_url(self.base_url)

    def public(self) -> dict[str, Any]:
        """What may be recorded with an answer: everything but the key."""
        return {"base_url": self.where, "model": self.model, "temperature": self.temperature}
