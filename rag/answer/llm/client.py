"""A small client for OpenAI-compatible chat-completions endpoints (Ollama, llama.cpp, vLLM, LM Studio, OpenAI).

Only ``POST {base_url}/chat/completions`` is used, plain or streamed as
server-sent events (``data: {...}`` lines ending with ``data: [DONE]``). httpx
does the HTTP; this module adds configuration from the environment, retries
with backoff, and turns every failure into one ``RagError`` line that names
the server and the fix.

The API key is held in a field that no repr, message or log line shows; only
the ``Authorization`` header carries it. Credentials in the base URL (``user:pass@``,
``?api_key=…``) are sent as they should be (Basic auth, the query) and never shown:
every secret is registered with ``rag.redaction``, which hides it, whole or in part,
in every message and log line.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from rag.budget import Deadline, check_time_budget, current_deadline
from rag.errors import RagError
from rag.redaction import redact, register_secret, url_secrets
from rag.settings import env_number

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://127.0.0.1:11434/v1"  # Ollama's OpenAI-compatible API
DEFAULT_MODEL = "llama3.1"
DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 2
RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_RETRY_WAIT = 20.0  # seconds; a longer Retry-After is capped


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
        timeout: seconds to wait for the server (connect, and between bytes of the reply).
        retries: further attempts after a connection failure, 429 or 5xx.
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
    backoff: float = 0.5  # first wait between attempts; doubles each time

    def __post_init__(self) -> None:
        for secret in (self.api_key, *url_secrets(self.base_url)):
            register_secret(secret)
        if urlsplit(self.base_url).scheme not in ("http", "https"):
            raise RagError(f"LLM base URL '{display_url(self.base_url)}' is not an http(s) URL: give one like {DEFAULT_BASE_URL}")
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
            api_key = os.environ[key_env]
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
    def endpoint(self) -> str:
        """The chat-completions URL: the base URL's path + /chat/completions, its query kept, without user:pass@."""
        parts = urlsplit(self.base_url)
        path = parts.path.rstrip("/") + "/chat/completions"
        return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], path, parts.query, ""))

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


@dataclass(frozen=True)
class Reply:
    """A whole chat reply."""

    content: str
    model: str = ""
    finish_reason: str | None = None


class ChatClient:
    """Calls one OpenAI-compatible chat endpoint; all failures become ``RagError``."""

    def __init__(self, config: LLMConfig):
        self.config = config
        self._client: Any = None

    def __repr__(self) -> str:
        return f"ChatClient(base_url={self.config.where!r}, model={self.config.model!r})"

    # -- plumbing ----------------------------------------------------------

    def _http(self):
        import httpx

        if self._client is None:
            headers = {"Accept": "application/json, text/event-stream"}
            if self.config.api_key:
                headers["Authorization"] = f"Bearer {self.config.api_key}"
            self._client = httpx.Client(timeout=httpx.Timeout(self.config.timeout), headers=headers, auth=self.config.auth)
        return self._client

    def close(self) -> None:
        """Closes the connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _body(self, messages: list[dict[str, str]], stream: bool) -> dict[str, Any]:
        return {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "stream": stream,
        }

    def _status_error(self, status: int, body: str) -> RagError:
        where, model = self.config.where, self.config.model
        detail = self._safe(_error_detail(self._safe(body)))  # before the cut (the whole key) and after
        if status in (401, 403):
            return RagError(f"the LLM server at {where} refused the API key (HTTP {status}): set RAG_LLM_API_KEY "
                            "(or the variable named by --llm-api-key-env) to a valid key")
        if status == 404:
            return RagError(f"the LLM server at {where} answered HTTP 404{detail}: check that the base URL ends in /v1 "
                            f"and that model '{model}' exists (for Ollama: ollama pull {model})")
        return RagError(f"the LLM server at {where} answered HTTP {status}{detail}: check the server's log, "
                        "or try again later")

    def _attempts(self):
        """Yields attempt numbers, sleeping with exponential backoff between them."""
        for attempt in range(self.config.retries + 1):
            if attempt:
                _sleep(min(self.config.backoff * 2 ** (attempt - 1), MAX_RETRY_WAIT))
            yield attempt

    def _wait(self) -> tuple[float, Deadline | None]:
        """How long to wait for the server: the configured timeout, or what is left of the request's time
        budget when that is less (then also the deadline, so that a timeout is reported as the budget's)."""
        deadline = current_deadline()
        if deadline is None or deadline.remaining() >= self.config.timeout:
            return self.config.timeout, None
        check_time_budget()
        return max(deadline.remaining(), 0.001), deadline

    def _send(self, messages: list[dict[str, str]], stream: bool):
        """(an open response with a 2xx status, the deadline that bounds it or None), after retries.

        The caller closes the response.
        """
        import httpx

        where = self.config.where
        last: RagError | None = None
        for attempt in self._attempts():
            seconds, deadline = self._wait()
            try:
                request = self._http().build_request("POST", self.config.endpoint, json=self._body(messages, stream),
                                                     timeout=httpx.Timeout(seconds))
                response = self._http().send(request, stream=True)
            except httpx.TimeoutException as exc:
                if deadline is not None:
                    raise deadline.exceeded() from None
                if not isinstance(exc, httpx.ConnectTimeout):
                    # A read timeout is not retried: a server this slow will likely be as slow again.
                    raise RagError(f"the LLM server at {where} did not answer within {self.config.timeout:g} s: "
                                   "check that it runs, or raise --llm-timeout") from None
                last = RagError(f"the LLM server at {where} did not accept a connection within {self.config.timeout:g} s: "
                                "check that it runs, or raise --llm-timeout")
            except httpx.ConnectError:
                last = RagError(f"cannot connect to the LLM server at {where}: start it (for Ollama: ollama serve) "
                                "or point --llm-url / RAG_LLM_BASE_URL at a running server")
            except httpx.HTTPError as exc:
                last = RagError(f"the request to the LLM server at {where} failed ({type(exc).__name__}): "
                                "check the URL and the server")
            else:
                if response.status_code < 300:
                    return response, deadline
                try:
                    body = response.read().decode("utf-8", "replace")
                except httpx.HTTPError:
                    body = ""
                finally:
                    response.close()
                last = self._status_error(response.status_code, body)
                if response.status_code not in RETRY_STATUSES:
                    raise last
                retry_after = _retry_after(response.headers.get("retry-after"))
                if retry_after and attempt < self.config.retries:
                    _sleep(min(retry_after, MAX_RETRY_WAIT))
            log.debug("LLM attempt %d at %s failed: %s", attempt + 1, where, last)
        assert last is not None
        raise last

    # -- calls ---------------------------------------------------------------

    def complete(self, messages: list[dict[str, str]]) -> Reply:
        """The whole reply to a chat, without streaming."""
        import httpx

        response, deadline = self._send(messages, stream=False)
        try:
            raw = response.read()
        except httpx.TimeoutException:
            if deadline is not None:
                raise deadline.exceeded() from None
            raise RagError(f"the LLM server at {self.config.where} did not finish its reply within "
                           f"{self.config.timeout:g} s: raise --llm-timeout") from None
        except httpx.HTTPError as exc:
            raise RagError(f"the reply from the LLM server at {self.config.where} broke off ({type(exc).__name__}): "
                           "try again") from None
        finally:
            response.close()
        return self._parse_completion(raw)

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """The reply as it arrives, piece by piece. A server that does not stream gives one piece."""
        import httpx

        response, deadline = self._send(messages, stream=True)
        try:
            if "text/event-stream" not in response.headers.get("content-type", ""):
                yield self._parse_completion(response.read()).content
                return
            yield from self._events(response)
        except httpx.TimeoutException:
            if deadline is not None:
                raise deadline.exceeded() from None
            raise RagError(f"the LLM server at {self.config.where} stopped sending for {self.config.timeout:g} s: "
                           "raise --llm-timeout") from None
        except httpx.HTTPError as exc:
            raise RagError(f"the stream from the LLM server at {self.config.where} broke off ({type(exc).__name__}): "
                           "try again") from None
        finally:
            response.close()

    # -- parsing ---------------------------------------------------------------

    def _safe(self, text: str) -> str:
        """Server-provided text with the API key and URL credentials hidden, whole or in part (some servers
        echo the key they refuse)."""
        return redact(text, [self.config.api_key])

    def _garbage(self, what: str) -> RagError:
        return RagError(f"the LLM server at {self.config.where} sent {self._safe(what)}, not an OpenAI-compatible "
                        "chat completion: check that --llm-url points at the API root (usually ending in /v1)")

    def _parse_completion(self, raw: bytes) -> Reply:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise self._garbage(f"a reply that is not JSON ({_preview(self._safe(raw.decode('utf-8', 'replace')))})") from None
        try:
            choice = data["choices"][0]
            content = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise self._garbage(f"JSON without choices[0].message.content ({_preview(self._safe(raw.decode('utf-8', 'replace')))})") from None
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise self._garbage("a message content that is not text")
        return Reply(content, str(data.get("model") or ""), choice.get("finish_reason"))

    def _events(self, response) -> Iterator[str]:
        """Content deltas of a server-sent-event stream."""
        done = False
        for line in response.iter_lines():
            check_time_budget()
            line = line.strip()
            if not line or line.startswith(":") or not line.startswith("data:"):
                continue  # blank separators, comments, 'event:' / 'id:' fields
            payload = line[5:].strip()
            if payload == "[DONE]":
                done = True
                break
            try:
                data = json.loads(payload)
            except ValueError:
                raise self._garbage(f"a stream event that is not JSON ({_preview(self._safe(payload))})") from None
            if isinstance(data, dict) and "error" in data:
                raise RagError(f"the LLM server at {self.config.where} reported an error mid-stream"
                               f"{self._safe(_error_detail(self._safe(json.dumps(data))))}: check the server's log")
            try:
                delta = data["choices"][0].get("delta") or {}
            except (KeyError, IndexError, TypeError, AttributeError):
                raise self._garbage(f"a stream event without choices[0].delta ({_preview(self._safe(payload))})") from None
            if delta.get("content"):
                yield str(delta["content"])
        if not done:
            log.debug("the stream from %s ended without [DONE]", self.config.where)


def _sleep(seconds: float) -> None:
    """Waits before a retry, unless the request's time budget would run out first."""
    deadline = current_deadline()
    if deadline is not None and deadline.remaining() < seconds:
        raise deadline.exceeded()
    time.sleep(seconds)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _preview(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= n else text[: n - 1] + "…")


def _error_detail(body: str) -> str:
    """': message' from an OpenAI-style error body, or '' (the body may be HTML or empty)."""
    try:
        data = json.loads(body)
        error = data.get("error") if isinstance(data, dict) else None
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str) and message.strip():
            message = " ".join(message.split())
            return f": {message[:120]}"
    except ValueError:
        pass
    return ""
