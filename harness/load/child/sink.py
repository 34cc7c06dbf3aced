"""Where per-request records go inside the Locust child (imports gevent: child only).

:class:`RecordSink` turns Locust's ``request`` events into CSV lines
(:func:`harness.load.records.format_record`) and, every ``FLUSH_INTERVAL``, either appends
them to the records file (single process, or the master in distributed mode) or ships
them to the master as a custom message (workers, possibly on other machines). Writes are
whole lines, so readers never see half a record.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import gevent

from harness.load.records import HEADER, POD_HEADER, format_record

FLUSH_INTERVAL = 0.25
RECORDS_MESSAGE = "harness_records"


class RecordSink:
    """Buffers record lines; flushes them to ``path`` or through ``ship``."""

    def __init__(self, worker: int = 0) -> None:
        self.worker = worker
        self.lines: list[str] = []
        self.count = 0
        self._fd: int | None = None
        self._ship: Callable[[str, int], None] | None = None
        self._flusher: gevent.Greenlet | None = None

    # -- destinations ---------------------------------------------------------------------

    def open_file(self, path: str) -> None:
        """Write to ``path`` (created with the header, or appended to if it exists)."""
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if new:
            os.write(self._fd, HEADER.encode())

    def ship_with(self, ship: Callable[[str, int], None]) -> None:
        """Send batches with ``ship(text, count)`` instead of writing them."""
        self._ship = ship

    def write_text(self, text: str) -> None:
        """Append already formatted lines (a batch received from a worker)."""
        if self._fd is not None and text:
            os.write(self._fd, text.encode())

    # -- recording --------------------------------------------------------------------------

    def on_request(
        self,
        start_time: float,
        response_time: float,
        response_length: int,
        response: Any = None,
        exception: BaseException | None = None,
        context: dict | None = None,
        **_: Any,
    ) -> None:
        """Listener for Locust's ``request`` event."""
        status = int(getattr(response, "status_code", 0) or 0)
        pod = ""
        headers = getattr(response, "headers", None)
        if headers:
            pod = headers.get(POD_HEADER) or ""
        error = ""
        if exception is not None:
            error = f"{type(exception).__name__}: {exception}"
        ctx = context or {}
        self.add(format_record(start_time, response_time / 1000.0, status, response_length or 0,
                               pod, error, ctx.get("scheduled"), ctx.get("loop", "closed"),
                               self.worker))

    def not_sent(self, scheduled: float, reason: str) -> None:
        self.add(format_record(scheduled, None, 0, 0, "", f"not sent: {reason}", scheduled,
                               "open", self.worker))

    def add(self, line: str) -> None:
        self.lines.append(line)
        self.count += 1

    # -- flushing ---------------------------------------------------------------------------

    def flush(self) -> None:
        if not self.lines:
            return
        lines, self.lines = self.lines, []
        text = "".join(lines)
        if self._ship is not None:
            self._ship(text, len(lines))
        elif self._fd is not None:
            os.write(self._fd, text.encode())

    def start(self) -> None:
        if self._flusher is None:
            self._flusher = gevent.spawn(self._loop)

    def _loop(self) -> None:
        while True:
            gevent.sleep(FLUSH_INTERVAL)
            self.flush()

    def close(self) -> None:
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
