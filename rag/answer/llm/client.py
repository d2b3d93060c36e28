"""The client for OpenAI-compatible chat-completions endpoints (Ollama, llama.cpp, vLLM, LM Studio, OpenAI).

The ``openai`` SDK does the HTTP: base URL, retries with backoff (and the server's Retry-After), and
server-sent-event streaming. This module adds configuration from the environment, keeps every attempt
within the request's time budget, and turns every failure into one ``RagError`` line that names the
server and the fix (``ServiceUnavailableError``, exit code 3, when trying again later may work).

Every reply is streamed, so the timeout is on the *first word*, not on the whole reply: a local model on
a laptop reads the passages for tens of seconds, then writes a few words a second. ``LLMConfig.timeout``
bounds the wait for the first event with content, then each wait between pieces; as keep-alive comments
(llama.cpp's server pings every 15 s) defeat a plain read timeout, the first-word wait is also checked
whenever one arrives.

Credentials in the base URL (``user:pass@``, ``?api_key=…``) are sent as they should be (Basic auth
through the SDK's ``http_client``, the query through its ``default_query``) and never shown (see
``rag.answer.llm.config``); text the server sends is passed through ``rag.redaction`` before it is
shown, as some servers echo the key they refuse.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from rag.answer.llm.config import LLMConfig
from rag.budget import check_time_budget, current_deadline
from rag.errors import RagError, ServiceUnavailableError
from rag.redaction import redact
from rag.text import clip

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0  # seconds: a server that is up accepts a connection at once


@dataclass(frozen=True)
class Reply:
    """A whole chat reply."""

    content: str
    model: str = ""
    finish_reason: str | None = None


def _transport(first_word: float, late: Callable[[], RagError]) -> Any:
    """An httpx2 transport that keeps every attempt the SDK makes (retries included) within the request's
    time budget (an attempt starts only while some is left, and waits at most for what is left), and stops
    a stream whose first data event has not come ``first_word`` seconds after the request was sent, even
    while keep-alive comments come in (``late()`` is the error then)."""
    import httpx2

    class FirstWordStream(httpx2.SyncByteStream):
        def __init__(self, inner: Any, sent: float):
            self.inner, self.sent = inner, sent

        def __iter__(self) -> Iterator[bytes]:
            waiting = True
            for chunk in self.inner:
                if waiting:
                    waiting = b"data:" not in chunk
                    if waiting and time.monotonic() - self.sent > first_word:
                        raise late()
                yield chunk

        def close(self) -> None:
            self.inner.close()

    class Transport(httpx2.HTTPTransport):
        def handle_request(self, request: httpx2.Request) -> httpx2.Response:
            sent = time.monotonic()
            deadline = current_deadline()
            if deadline is not None:
                left = deadline.remaining()
                if left <= 0:
                    raise deadline.exceeded()
                timeouts = request.extensions.get("timeout") or {}
                request.extensions["timeout"] = {k: left if v is None else min(v, left) for k, v in timeouts.items()}
            response = super().handle_request(request)
            if "text/event-stream" in response.headers.get("content-type", ""):
                response.stream = FirstWordStream(response.stream, sent)
            return response

    return Transport()


class ChatClient:
    """Calls one OpenAI-compatible chat endpoint through the ``openai`` SDK; all failures become ``RagError``."""

    def __init__(self, config: LLMConfig):
        self.config = config
        self._client: Any = None

    def __repr__(self) -> str:
        return f"ChatClient(base_url={self.config.where!r}, model={self.config.model!r})"

    def _sdk(self) -> Any:
        import httpx2
        import openai

        if self._client is None:
            config = self.config
            http = openai.DefaultHttpxClient(
                auth=config.auth, transport=_transport(config.timeout, lambda: self._no_first_word())
            )
            # Without a key (a local server) the SDK gets an empty one and each request omits the header.
            self._client = openai.OpenAI(
                base_url=config.api_root,
                api_key=config.api_key or (lambda: ""),
                # A local server accepts a connection at once or not at all; the read timeout is the wait for
                # the first word, then between pieces.
                timeout=httpx2.Timeout(config.timeout, connect=min(CONNECT_TIMEOUT, config.timeout)),
                max_retries=config.retries,
                default_query=config.query,
                http_client=http,
            )
        return self._client

    def close(self) -> None:
        """Closes the connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _create(self, messages: list[dict[str, str]], stream: bool) -> Any:
        """The raw response of one chat-completions call (after the SDK's retries); RagError otherwise."""
        import openai

        headers = {} if self.config.api_key else {"Authorization": openai.Omit()}
        try:
            return self._sdk().chat.completions.with_raw_response.create(
                model=self.config.model,
                messages=messages,
                temperature=self.config.temperature,
                max_tokens=self.config.max_tokens,
                stream=stream,
                extra_headers=headers,
            )
        except Exception as exc:
            raise self._failure(exc) from None

    # -- calls ---------------------------------------------------------------

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """The reply as it arrives, piece by piece. A server that does not stream gives one piece."""
        raw = self._create(messages, stream=True)
        response = raw.http_response
        started = False
        try:
            if "text/event-stream" not in response.headers.get("content-type", ""):
                yield self._parse_completion(response.read()).content
                return
            for chunk in raw.parse():  # the SDK's server-sent-event decoder
                check_time_budget()
                for piece in self._delta(chunk):
                    started = True
                    yield piece
        except RagError:
            raise
        except Exception as exc:
            raise self._failure(exc, "stream" if started else "first word") from None
        finally:
            response.close()

    # -- failures ---------------------------------------------------------------

    def _failure(self, exc: BaseException, during: str = "") -> RagError:
        """One line for whatever the SDK or the transport raised (``during``: "first word" while waiting for the
        reply to begin, "stream" once it has)."""
        import openai

        where, timeout = self.config.where, self.config.timeout
        cause = exc.__cause__ or exc.__context__
        for error in (exc, cause):
            if isinstance(error, RagError):  # the time budget ran out, or no first word (see _transport)
                return error
        deadline = current_deadline()
        timed_out = isinstance(exc, openai.APITimeoutError) or type(exc).__name__.endswith("Timeout")
        if timed_out and deadline is not None and deadline.remaining() <= 0.05:
            return deadline.exceeded()
        if isinstance(exc, openai.APIStatusError):
            return self._status_error(exc.status_code, exc.response.text)
        if isinstance(exc, openai.APIError) and during == "stream":  # an error event in the stream
            detail = self._safe(_error_detail(self._safe(json.dumps({"error": {"message": exc.message}}))))
            return ServiceUnavailableError(
                f"the LLM server at {where} reported an error mid-stream{detail}: check the server's log"
            )
        if isinstance(exc, json.JSONDecodeError):
            return self._garbage(f"a stream event that is not JSON ({_preview(self._safe(exc.doc))})")
        if timed_out and during == "stream":
            return ServiceUnavailableError(
                f"the LLM server at {where} stopped sending for {timeout:g} s: raise --llm-timeout"
            )
        if timed_out and type(cause).__name__ == "ConnectTimeout":
            return ServiceUnavailableError(
                f"the LLM server at {where} did not accept a connection within "
                f"{min(CONNECT_TIMEOUT, timeout):g} s: check that it runs"
            )
        if timed_out:
            return self._no_first_word()
        if during:
            return ServiceUnavailableError(
                f"the reply from the LLM server at {where} broke off ({type(exc).__name__}): try again"
            )
        if type(cause).__name__ == "ConnectError":
            return ServiceUnavailableError(
                f"cannot connect to the LLM server at {where}: start it (for Ollama: ollama serve) "
                "or point --llm-url / RAG_LLM_BASE_URL at a running server"
            )
        return RagError(
            f"the request to the LLM server at {where} failed ({type(cause or exc).__name__}): "
            "check the URL and the server"
        )

    def _no_first_word(self) -> ServiceUnavailableError:
        return ServiceUnavailableError(
            f"the LLM server at {self.config.where} sent nothing within {self.config.timeout:g} s (a local model "
            "reads the passages before its first word): check that it runs, or raise --llm-timeout"
        )

    def _status_error(self, status: int, body: str) -> RagError:
        where, model = self.config.where, self.config.model
        detail = self._safe(_error_detail(self._safe(body)))  # before the cut (the whole key) and after
        if status in (401, 403):
            return RagError(
                f"the LLM server at {where} refused the API key (HTTP {status}): set RAG_LLM_API_KEY "
                "(or the variable named by --llm-api-key-env) to a valid key"
            )
        if status == 404:
            return RagError(
                f"the LLM server at {where} answered HTTP 404{detail}: check that the base URL ends in /v1 "
                f"and that model '{model}' exists (for Ollama: ollama pull {model})"
            )
        # Overloaded, rate-limited or failing: the command was right, the service was not there for it.
        unavailable = status >= 500 or status in (408, 409, 429)
        return (ServiceUnavailableError if unavailable else RagError)(
            f"the LLM server at {where} answered HTTP {status}{detail}: check the server's log, or try again later"
        )

    # -- parsing ---------------------------------------------------------------

    def _safe(self, text: str) -> str:
        """Server-provided text with the API key and URL credentials hidden, whole or in part (some servers
        echo the key they refuse)."""
        return redact(text, [self.config.api_key])

    def _garbage(self, what: str) -> RagError:
        return RagError(
            f"the LLM server at {self.config.where} sent {self._safe(what)}, not an OpenAI-compatible "
            "chat completion: check that --llm-url points at the API root (usually ending in /v1)"
        )

    def _parse_completion(self, raw: bytes) -> Reply:
        text = raw.decode("utf-8", "replace")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise self._garbage(f"a reply that is not JSON ({_preview(self._safe(text))})") from None
        try:
            choice = data["choices"][0]
            content = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise self._garbage(f"JSON without choices[0].message.content ({_preview(self._safe(text))})") from None
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise self._garbage("a message content that is not text")
        return Reply(content, str(data.get("model") or ""), choice.get("finish_reason"))

    def _delta(self, chunk: Any) -> Iterator[str]:
        """The content of one streamed chunk (a ChatCompletionChunk the SDK decoded)."""
        try:
            delta = chunk.choices[0].delta
        except (AttributeError, IndexError, TypeError):
            payload = chunk.model_dump_json() if hasattr(chunk, "model_dump_json") else str(chunk)
            raise self._garbage(f"a stream event without choices[0].delta ({_preview(self._safe(payload))})") from None
        content = getattr(delta, "content", None) if delta is not None else None
        if content:
            yield str(content)


def _preview(text: str, n: int = 60) -> str:
    return repr(clip(text, n))


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
