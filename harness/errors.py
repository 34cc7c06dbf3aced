"""The one exception a user can cause, and how the CLI turns it into exit code 2.

Anything a user can get wrong (a bad profile, a malformed duration, a missing file,
an unreachable cluster) raises :class:`UserError` with one sentence that names the
problem. The CLI prints that sentence on stderr and exits with :data:`EXIT_USAGE`;
it never shows a traceback for it.
"""

from __future__ import annotations

EXIT_USAGE = 2


class UserError(Exception):
    """A problem in the user's input, reported as one line and exit code 2.

    ``where`` names the file (or other origin) and ``key`` the field, when known;
    both are folded into the message so the one line is enough to fix the input.
    """

    def __init__(self, message: str, *, where: str | None = None, key: str | None = None):
        self.where = where
        self.key = key
        self.reason = message
        parts = []
        if where:
            parts.append(str(where))
        if key:
            parts.append(f"key {key!r}")
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)
