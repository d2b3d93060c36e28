"""A scripted OpenAI-compatible chat server on loopback, for tests of the LLM answerer and the app.

Each test scripts what the server answers (``Script.steps``); the server records every request it gets.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Step:
    """What the server does with one request."""

    # "reply" | "sleep" | "status" | "garbage" | "text" | "json-only" | "hold" | "wait"
    # | "late" (a keep-alive comment every 0.1 s for ``seconds``, then the reply)
    # | "slow" (the reply piece by piece, ``seconds`` between pieces)
    kind: str
    content: str | Callable[[dict], str] = ""
    status: int = 200
    seconds: float = 0.0


@dataclass
class Script:
    steps: list[Step] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    released_by_client: bool = False
    received: threading.Event = field(default_factory=threading.Event)  # set when a request arrives


def _sse(handler: BaseHTTPRequestHandler, pieces: list[str], gap: float = 0.0) -> None:
    for piece in pieces:
        time.sleep(gap)
        event = {"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": piece}}]}
        handler.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        handler.wfile.flush()


def _pieces(text: str) -> list[str]:
    """Small pieces, as a server streams tokens: words with their spaces, markers split in two."""
    return [p for p in re.split(r"(\s+|\[|\])", text) if p]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_POST(self):
        script: Script = self.server.script  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        # Header names as HTTP spells them whatever case the client sent (HTTP/2-style clients send lower case).
        headers = {name.title(): value for name, value in self.headers.items()}
        script.requests.append({"path": self.path, "headers": headers, "body": body})
        script.received.set()
        step = script.steps.pop(0) if script.steps else Step("status", status=500)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            self._serve(step, body, script)

    def _serve(self, step: Step, body: dict, script: Script) -> None:
        if step.kind == "sleep":
            time.sleep(step.seconds)
            step = Step("reply", "Too late [1].")
        if step.kind == "wait":  # answer only once the test releases it (at most a minute later)
            script.release.wait(timeout=60)
            step = Step("reply", step.content)
        if step.kind == "status":
            self._send(step.status, json.dumps({"error": {"message": step.content or "internal error"}}))
            return
        if step.kind == "garbage":
            self._send(200, "<html><body>Welcome to nginx!</body></html>", "text/html")
            return
        if step.kind == "text":  # a 200 reply that is plain text, not a chat completion
            self._send(200, step.content if isinstance(step.content, str) else step.content(body), "text/plain")
            return
        content = step.content(body) if callable(step.content) else step.content
        if body.get("stream") and step.kind in ("reply", "hold", "late", "slow"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            pieces = _pieces(content)
            if step.kind == "late":  # a local model reading the passages; llama.cpp's server pings meanwhile
                for _ in range(int(step.seconds / 0.1)):
                    self.wfile.write(b": ping\n\n")
                    self.wfile.flush()
                    time.sleep(0.1)
            if step.kind == "hold":
                # The first sentence and the next word, then wait until the client has shown that sentence.
                cut = content.index("]. ") + 2
                head = " " + content[cut:].split()[0]
                _sse(self, [*_pieces(content[:cut]), head])
                script.released_by_client = script.release.wait(timeout=10)
                pieces = _pieces(content[cut + len(head) :])
            _sse(self, pieces, step.seconds if step.kind == "slow" else 0.0)
            self.wfile.write(b"data: [DONE]\n\n")
            return
        completion = {
            "id": "c1",
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        }
        self._send(200, json.dumps(completion))

    def _send(self, status: int, text: str, content_type: str = "application/json") -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def passage_with(body: dict, phrase: str) -> int:
    """The id of the passage block in a request that holds ``phrase``: what a model reading it would cite."""
    user = body["messages"][-1]["content"]
    for number, text in re.findall(r'<passage id="(\d+)"[^>]*>\n(.*?)\n</passage>', user, re.S):
        if phrase in text:
            return int(number)
    raise AssertionError(f"no passage holds {phrase!r}")


def start_server() -> ThreadingHTTPServer:
    """A server on a free loopback port, serving in a daemon thread; ``server.script`` is what it does."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.script = Script()  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def base_url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/v1"
