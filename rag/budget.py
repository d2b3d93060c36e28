"""A time budget per request: long work checks it between steps and stops with one line.

The CLI (``--time-budget``, ``Settings.time_budget``: ``RAG_TIME_BUDGET``, default 120 s) and the
app set a budget around each request; the pipeline calls ``check_time_budget()`` between its steps (a passage, a sentence, a
piece of text, a chunk of an LLM reply), and an LLM request waits at most for what is left of it.
Nothing is killed mid-step: every step is short (text reaches spaCy in bounded pieces), so a request
stops soon after its budget runs out. Outside a budget, checks cost nothing and never stop anything.

The budget lives in a context variable, so concurrent requests in threads each have their own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from rag.errors import RagError


class TimeBudgetExceeded(RagError):
    """A request ran out of its time budget."""


@dataclass(frozen=True)
class Deadline:
    """When a request's budget runs out (``time.monotonic()`` seconds) and what to call the request."""

    seconds: float
    ends: float
    what: str

    @classmethod
    def start(cls, seconds: float, what: str = "the request") -> Deadline:
        return cls(seconds, time.monotonic() + seconds, what)

    def remaining(self) -> float:
        return self.ends - time.monotonic()

    def exceeded(self) -> TimeBudgetExceeded:
        return TimeBudgetExceeded(
            f"{self.what} took longer than its time budget of {self.seconds:g} s and was stopped: ask something "
            "narrower, or give it more time (--time-budget SECONDS or RAG_TIME_BUDGET)"
        )

    @contextmanager
    def active(self) -> Iterator[Deadline]:
        """Makes this deadline the one ``check_time_budget`` sees, for the block (in this thread/context).

        A generator that streams a request re-enters it for each step: Gradio may run each step in
        another thread.
        """
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)


_current: ContextVar[Deadline | None] = ContextVar("rag_deadline", default=None)


@contextmanager
def time_budget(seconds: float | None, what: str = "the request") -> Iterator[Deadline | None]:
    """Runs the block under a budget of ``seconds`` (None or 0: no budget)."""
    if not seconds:
        yield None
        return
    with Deadline.start(seconds, what).active() as deadline:
        yield deadline


def check_time_budget() -> None:
    """Raises TimeBudgetExceeded when the current request's budget has run out."""
    deadline = _current.get()
    if deadline is not None and time.monotonic() >= deadline.ends:
        raise deadline.exceeded()


def current_deadline() -> Deadline | None:
    """The budget of the request running here, if any."""
    return _current.get()
