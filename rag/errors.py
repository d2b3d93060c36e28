"""Errors the user is meant to read: one line naming the problem and the fix."""


class RagError(Exception):
    """A problem the user can fix; the CLI and app show its message as one line."""


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
