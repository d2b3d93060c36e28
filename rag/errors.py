"""Errors the user is meant to read: one line naming the problem and the fix."""

# `rag eval` wrote its run, but some questions failed (each marked in results.jsonl): neither 2 nor 3, which
# mean that nothing was written.
PARTIAL_RUN = 4


class RagError(Exception):
    """A problem the user can fix; the CLI and app show its message as one line.

    ``exit_code`` is the `rag` command's exit status for it: 2, bad input or a problem with a fix named in
    the message (a wrong option, URL or key, a damaged index, a request past its time budget).
    """

    exit_code = 2


class ServiceUnavailableError(RagError):
    """A service the request depends on did not answer usably: the LLM server is not running, too slow,
    overloaded or failing (HTTP 5xx, 429), or broke off its reply. Trying again later may work: exit code 3."""

    exit_code = 3


class IndexMissingError(RagError):
    """There is no index where one was expected."""


class IndexMismatchError(RagError):
    """The index on disk was built with other settings or another corpus."""


class CorpusError(RagError):
    """The corpus could not be read (nothing usable in the given paths)."""


class IndexDamagedError(RagError):
    """The index on disk cannot be read whole; ``manifest`` is its manifest when that part is readable."""

    def __init__(self, message: str, manifest: dict | None = None):
        super().__init__(message)
        self.manifest = manifest
