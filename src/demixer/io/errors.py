"""The user-facing error raised by ``demixer.io`` for a bad input or output file."""

from __future__ import annotations

import os


class InputError(ValueError):
    """A file cannot be used, with a human-readable reason: ``str(e) == f"{path}: {reason}"``.

    ``path`` is kept as given (a ``PathLike`` is turned into its string), ``reason`` is a short sentence
    fragment such as ``"file not found"`` or ``"row 7: pitch 130 is outside 0..127"``.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path: str = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
        self.reason: str = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # keep picklable (e.g. across a worker process) despite the 2-arg constructor
        return (type(self), (self.path, self.reason))
