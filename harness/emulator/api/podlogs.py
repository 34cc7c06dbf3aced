"""Container logs: what the kubelet captures and ``GET .../pods/NAME/log`` serves.

Layout under the kubelet's folder: ``{namespace}/{pod}/{container}.log`` for the running
(or last) instance of a container and ``{container}.previous.log`` for the one before a
restart; the pod's folder, and with it its logs, goes when the pod is deleted. Lines are
kept in the CRI logging format (``2026-01-01T00:00:00.123456789Z stdout F text``) so
``timestamps`` and ``sinceSeconds`` need no second record. :func:`capture` pumps a
process's stdout and stderr into that file; :class:`LogQuery` turns the query parameters
(``container``, ``tailLines``, ``sinceSeconds``, ``sinceTime``, ``timestamps``,
``previous``, ``limitBytes``, ``follow``) into the bytes kubectl prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from calendar import timegm
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

_CHUNK = 64 * 1024


def log_path(root: Path, namespace: str, pod: str, container: str, *,
             previous: bool = False) -> Path:
    return root / namespace / pod / (f"{container}.previous.log" if previous
                                     else f"{container}.log")


def rfc3339nano(t: float) -> str:
    whole = int(t)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + (
        f".{int((t - whole) * 1e9):09d}Z")


def start_instance(root: Path, namespace: str, pod: str, container: str) -> Path:
    """A new instance of a container starts: its last log becomes ``previous``."""
    path = log_path(root, namespace, pod, container)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        os.replace(path, log_path(root, namespace, pod, container, previous=True))
    path.touch()
    return path


def append(path: Path, stream: str, lines: list[str]) -> None:
    """Write lines the kubelet itself produces (the storage initializer's) in CRI form."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as out:
        for line in lines:
            out.write(f"{rfc3339nano(time.time())} {stream} F {line}\n".encode())


async def _pump(stream: asyncio.StreamReader, name: str, out: IO[bytes]) -> None:
    tag = name.encode()
    while True:
        try:
            line = await stream.readuntil(b"\n")
            partial = False
        except asyncio.IncompleteReadError as exc:
            line, partial = exc.partial, True
        except asyncio.LimitOverrunError as exc:
            line, partial = await stream.readexactly(exc.consumed), True
        if not line:
            if stream.at_eof():
                return
            continue
        text = line.rstrip(b"\n")
        out.write(b"%s %s %s %s\n" % (rfc3339nano(time.time()).encode(), tag,
                                      b"P" if partial and not stream.at_eof() else b"F",
                                      text))
        out.flush()
        if stream.at_eof() and partial:
            return


async def capture(stdout: asyncio.StreamReader | None, stderr: asyncio.StreamReader | None,
                  path: Path) -> None:
    """Write both streams of a process to ``path`` (CRI format) until both end."""
    with open(path, "ab", buffering=0) as out:
        await asyncio.gather(*(_pump(s, n, out) for s, n in ((stdout, "stdout"),
                                                               (stderr, "stderr"))
                               if s is not None))


@dataclass(frozen=True)
class LogLine:
    time: float
    stamp: str
    stream: str
    text: bytes
    full: bool


def parse_line(raw: bytes) -> LogLine | None:
    parts = raw.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    stamp = parts[0].decode(errors="replace")
    try:
        t = float(timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")))
        t += float("0" + stamp[19:].rstrip("Z")) if stamp[19:20] == "." else 0.0
    except ValueError:
        return None
    return LogLine(t, stamp, parts[1].decode(), parts[3] if len(parts) == 4 else b"",
                   parts[2] != b"P")


def read_lines(path: Path, offset: int = 0) -> tuple[list[LogLine], int]:
    """Complete lines of ``path`` from ``offset``; returns them and the new offset."""
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    lines = [parsed for raw in data[:end].splitlines()
             if (parsed := parse_line(raw)) is not None]
    return lines, offset + end


@dataclass(frozen=True)
class LogQuery:
    """The query of ``GET .../pods/NAME/log`` that shapes the output."""

    tail_lines: int | None = None
    since_time: float | None = None
    timestamps: bool = False
    limit_bytes: int | None = None

    def select(self, lines: list[LogLine]) -> list[LogLine]:
        if self.since_time is not None:
            lines = [ln for ln in lines if ln.time >= self.since_time]
        if self.tail_lines is not None:
            lines = lines[-self.tail_lines:] if self.tail_lines > 0 else []
        return lines

    def render(self, lines: list[LogLine]) -> Iterator[bytes]:
        for ln in lines:
            text = ln.text + (b"\n" if ln.full else b"")
            yield (ln.stamp.encode() + b" " + text) if self.timestamps else text

    def body(self, lines: list[LogLine]) -> bytes:
        out = b"".join(self.render(self.select(lines)))
        if self.limit_bytes is not None:
            out = out[:self.limit_bytes]
        return out


def same_file(path: Path, inode: int) -> bool:
    with contextlib.suppress(OSError):
        return path.stat().st_ino == inode
    return False
