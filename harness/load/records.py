"""Per-request records: the CSV schema, how a line is written, and how it is read back.

One line per request, written by the Locust child while the run goes on::

    start,latency_s,status,bytes,pod,error,scheduled,loop,worker

``start``      epoch seconds when the request was sent (``time.time()``)
``latency_s``  seconds until the whole response was read (empty if never sent)
``status``     HTTP status code; 0 when no HTTP response came back (connection error,
               time-out) or the request was never sent
``bytes``      response body length
``pod``        the serving pod, from the model server's ``X-Pod-Name`` response header
``error``      empty on success, else the error text (``not sent: ...`` for an open-loop
               arrival dropped because ``max_in_flight`` requests were already in flight)
``scheduled``  open loop: epoch seconds the arrival was due (``start - scheduled`` is the
               generator's lag); empty for closed loop
``loop``       ``closed`` or ``open``
``worker``     index of the load process that sent it (0 without workers)

Lines are appended whole, so :func:`read_records` can read the file at any moment (a
line still being written is ignored). Writing needs no pandas; reading does.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("start", "latency_s", "status", "bytes", "pod", "error", "scheduled", "loop", "worker")
HEADER = ",".join(COLUMNS) + "\n"
POD_HEADER = "X-Pod-Name"
NOT_SENT = "not sent: "
_MAX_ERROR = 200


def _quote(text: str) -> str:
    if not text:
        return ""
    text = text.replace("\r", " ").replace("\n", " ")[:_MAX_ERROR]
    if any(c in text for c in ',"'):
        return '"' + text.replace('"', '""') + '"'
    return text


def format_record(
    start: float,
    latency: float | None,
    status: int,
    nbytes: int,
    pod: str,
    error: str,
    scheduled: float | None,
    loop: str,
    worker: int,
) -> str:
    """One CSV line (with its newline) for one request."""
    lat = "" if latency is None else f"{latency:.6f}"
    sch = "" if scheduled is None else f"{scheduled:.6f}"
    head = f"{start:.6f},{lat},{status},{nbytes}"
    return f"{head},{_quote(pod)},{_quote(error)},{sch},{loop},{worker}\n"


_DTYPES = {"status": "int64", "bytes": "int64", "worker": "int64", "pod": "string",
           "error": "string", "loop": "string"}


def parse_records(text: str) -> pd.DataFrame:
    """Records from CSV text (header included); the trailing partial line is dropped."""
    import pandas as pd

    cut = text.rfind("\n")
    text = text[: cut + 1] if cut >= 0 else ""
    if not text.startswith(HEADER):
        text = HEADER + text if text and not text.startswith("start,") else text or HEADER
    df = pd.read_csv(io.StringIO(text), dtype=_DTYPES, keep_default_na=False,
                     na_values={"latency_s": [""], "scheduled": [""]})
    for col in ("start", "latency_s", "scheduled"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    return df


def read_records(path: str | Path) -> pd.DataFrame:
    """Every complete record in ``path`` so far (safe while the run is still writing)."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        text = ""
    return parse_records(text)


class RecordTail:
    """Reads only the records appended since the last call (for the live progress line)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.offset = 0

    def read_new(self) -> pd.DataFrame:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            chunk = b""
        cut = chunk.rfind(b"\n")
        if cut < 0:
            return parse_records("")
        self.offset += cut + 1
        text = chunk[: cut + 1].decode(errors="replace")
        if text.startswith(HEADER):
            text = text[len(HEADER):]
        return parse_records(HEADER + text)
