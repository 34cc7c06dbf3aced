"""The host's one upstream-cluster slot: the lock file every holder of an upstream cluster
takes for the cluster's whole life (198.18.0.0/15 and kube-proxy's nftables tables are
host-wide). ``tests/upstream`` (its conftest) and ``harness conformance --cluster upstream``
take it; a hand-run cluster takes it with ``flock /tmp/harness-upstream.lock ...``.

:func:`hold` waits for it with a visible line, up to ``HARNESS_UPSTREAM_LOCK_WAIT`` seconds
(default 1800, as the tests), then refuses with one line. Waiting, not refusing at once:
the holders are test sessions and CI steps that end by themselves within minutes, and a
conformance run queued behind them is what its caller wants.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from harness.errors import UserError

DEFAULT_LOCK = "/tmp/harness-upstream.lock"
LOCK_ENV = "HARNESS_UPSTREAM_LOCK"          # another path (tests)
WAIT_ENV = "HARNESS_UPSTREAM_LOCK_WAIT"
DEFAULT_WAIT_S = 1800.0


def lock_path() -> Path:
    return Path(os.environ.get(LOCK_ENV) or DEFAULT_LOCK)


def wait_s() -> float:
    text = os.environ.get(WAIT_ENV) or str(DEFAULT_WAIT_S)
    try:
        return max(0.0, float(text))
    except ValueError:
        raise UserError(f"{WAIT_ENV}={text!r} is not a number of seconds") from None


@contextmanager
def hold(say: Callable[[str], None], *, timeout_s: float | None = None) -> Iterator[IO[str]]:
    """Hold the host's upstream-cluster slot for the block; yields the lock's open file,
    which a child process may inherit (``pass_fds``) so the slot stays held until it has
    exited too. Released when every holder of the file has closed it (the kernel closes
    it when a process dies)."""
    path = lock_path()
    timeout = wait_s() if timeout_s is None else timeout_s
    try:
        handle = path.open("a")
    except OSError as exc:
        raise UserError(f"cannot open the host's upstream-cluster lock: {exc.strerror}",
                        where=str(path)) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting up to {timeout:.0f} s for the host's upstream-cluster slot ({path}): "
                "another upstream cluster holds it")
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise UserError(f"another upstream cluster held the host's slot "
                                        f"({path}) for {timeout:.0f} s; one upstream cluster "
                                        f"runs per host (wait longer with {WAIT_ENV})") \
                            from None
                    time.sleep(0.5)
            say("got the host's upstream-cluster slot")
        yield handle
    finally:
        handle.close()   # closing the descriptor releases the lock
