"""The host's one upstream-cluster slot: the lock file every holder of an upstream cluster
takes for the cluster's whole life (198.18.0.0/15 and kube-proxy's nftables tables are
host-wide). ``harness cluster up --upstream`` takes it itself; so do ``tests/upstream``
(its conftest) and ``harness conformance --cluster upstream``, whose clusters then run
inside the slot they hold.

:func:`hold` takes it in this order:

1. **Inherited descriptor.** An open descriptor of the lock file this process inherited
   (``pass_fds`` from ``harness conformance``, ``flock(1)`` around a command) whose open
   file holds the lock: the slot is already ours (the kernel's lock belongs to the open
   file, shared by every process that has it).
2. **Held by an ancestor.** The holder named in ``/proc/locks`` started this process
   (directly or not): a test session or a script that holds the slot and runs ``harness
   cluster up --upstream`` inside it. It stays held as long as that ancestor lives.
3. **Wait.** One line naming the holder (its pid and command line, when it can tell), then
   a *blocking* ``flock``: the kernel wakes the waiters the moment the holder lets go, so a
   waiter is not overtaken by others polling, as it was with a sleep-and-retry loop. Up to
   ``timeout_s`` (``--lock-wait``; ``HARNESS_UPSTREAM_LOCK_WAIT``, default 1800 s), a line
   every minute, then a refusal in one line (exit 2). Waiting rather than refusing at once:
   the holders are test sessions and CI steps that end by themselves within minutes.
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from harness.errors import UserError

DEFAULT_LOCK = "/tmp/harness-upstream.lock"
LOCK_ENV = "HARNESS_UPSTREAM_LOCK"          # another path (tests)
WAIT_ENV = "HARNESS_UPSTREAM_LOCK_WAIT"
DEFAULT_WAIT_S = 1800.0
_REMIND_S = 60.0                            # a "still waiting" line this often


def lock_path() -> Path:
    return Path(os.environ.get(LOCK_ENV) or DEFAULT_LOCK)


def wait_s() -> float:
    text = os.environ.get(WAIT_ENV) or str(DEFAULT_WAIT_S)
    try:
        return max(0.0, float(text))
    except ValueError:
        raise UserError(f"{WAIT_ENV}={text!r} is not a number of seconds") from None


@contextmanager
def hold(say: Callable[[str], None], *, timeout_s: float | None = None,
         longer: str = WAIT_ENV) -> Iterator[IO[str]]:
    """Hold the host's upstream-cluster slot for the block (see the module docstring);
    yields an open file of the lock, which a child process may inherit (``pass_fds``) so
    the slot stays held until it has exited too. Released when every holder of the open
    file has closed it (the kernel closes it when a process dies)."""
    path = lock_path()
    timeout = wait_s() if timeout_s is None else timeout_s
    try:
        handle = path.open("a")
    except OSError as exc:
        raise UserError(f"cannot open the host's upstream-cluster lock: {exc.strerror}",
                        where=str(path)) from None
    try:
        inherited = _inherited_holder(path, handle)
        if inherited is not None:
            say(inherited)
        else:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                _wait(handle, path, timeout, say, longer)
                say("got the host's upstream-cluster slot")
        yield handle
    finally:
        handle.close()   # closing the descriptor releases the lock (unless shared)


class _TimedOut(Exception):
    pass


def _wait(handle: IO[str], path: Path, timeout: float, say: Callable[[str], None],
          longer: str) -> None:
    """A blocking flock, with a line now, one every minute and a refusal at ``timeout``."""
    who = holder(path)
    say(f"waiting up to {timeout:.0f} s for the host's upstream-cluster slot ({path}): "
        f"another upstream cluster holds it ({who or 'holder unknown'})")

    def refusal() -> UserError:
        return UserError(f"another upstream cluster held the host's slot ({path}) for "
                         f"{timeout:.0f} s ({holder(path) or who or 'holder unknown'}); one "
                         f"upstream cluster runs per host (wait longer with {longer})")

    if timeout <= 0:
        raise refusal()
    if threading.current_thread() is not threading.main_thread():
        _poll(handle, timeout, refusal)   # no SIGALRM outside the main thread
        return
    deadline = time.monotonic() + timeout

    def on_alarm(signum: int, frame: object) -> None:
        left = deadline - time.monotonic()
        if left <= 0.01:
            raise _TimedOut   # flock gives up (EINTR, and the handler raised)
        say(f"still waiting for the host's upstream-cluster slot after "
            f"{timeout - left:.0f} s ({holder(path) or 'holder unknown'})")
        signal.setitimer(signal.ITIMER_REAL, min(_REMIND_S, left))

    previous = signal.signal(signal.SIGALRM, on_alarm)
    old_timer = signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        signal.setitimer(signal.ITIMER_REAL, min(_REMIND_S, timeout))
        fcntl.flock(handle, fcntl.LOCK_EX)
    except _TimedOut:
        raise refusal() from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_timer[0] > 0:
            signal.setitimer(signal.ITIMER_REAL, *old_timer)


def _poll(handle: IO[str], timeout: float, refusal: Callable[[], UserError]) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise refusal() from None
            time.sleep(0.2)


# ---------------------------------------------------------------- who holds it

def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _inherited_holder(path: Path, mine: IO[str]) -> str | None:
    """The line to say when the slot is already this process's (an inherited descriptor
    of the lock, or an ancestor holding it), else None."""
    st = os.fstat(mine.fileno())
    for fd in _open_fds():
        if fd == mine.fileno():
            continue
        try:
            if not _same_file(os.fstat(fd), st):
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)   # ours already, or now
        except OSError:
            continue
        return (f"holding the host's upstream-cluster slot ({path}) through descriptor "
                f"{fd}, inherited from the process that started this one")
    ancestors = _ancestors()
    for pid in _lock_pids(path, blocked=False):
        if pid in ancestors:
            return (f"the host's upstream-cluster slot ({path}) is held by pid {pid} "
                    f"({_command(pid)}), which started this process")
    return None


def _open_fds() -> list[int]:
    try:
        return sorted(int(name) for name in os.listdir("/proc/self/fd"))
    except OSError:
        return []


def _ancestors() -> set[int]:
    found: set[int] = set()
    pid = os.getppid()
    while pid > 1 and pid not in found:
        found.add(pid)
        pid = _ppid(pid)
    return found


def _ppid(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _lock_pids(path: Path, *, blocked: bool) -> list[int]:
    """Pids ``/proc/locks`` names for ``flock`` locks on ``path``: the holders, or with
    ``blocked`` the processes waiting for it (``->`` lines)."""
    try:
        st = path.stat()
        table = Path("/proc/locks").read_text()
    except OSError:
        return []
    pids = []
    for line in table.splitlines():
        fields = line.split()
        waiting = len(fields) > 1 and fields[1] == "->"
        if waiting:
            fields = [fields[0], *fields[2:]]
        if waiting != blocked or len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            pid = int(fields[4])
            inode = int(fields[5].rsplit(":", 1)[1])
        except (ValueError, IndexError):
            continue
        if inode == st.st_ino and pid > 0:
            pids.append(pid)
    return pids


def waiters(path: Path | None = None) -> list[int]:
    """The pids blocked in ``flock`` on the lock (queued in the kernel)."""
    return _lock_pids(path or lock_path(), blocked=True)


def holder(path: Path | None = None) -> str | None:
    """Who holds the lock, as ``pid N (command line)``, when this host can tell: the pid
    ``/proc/locks`` names if it still runs, else a process that has the file open and is
    not waiting for it (the lock passed to a child that outlived its taker)."""
    path = path or lock_path()
    for pid in _lock_pids(path, blocked=False):
        if Path(f"/proc/{pid}").exists():
            return f"pid {pid}: {_command(pid)}"
    skip = {os.getpid(), *waiters(path)}
    with suppress(OSError):
        target = os.stat(path)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in skip:
                continue
            with suppress(OSError):
                for fd in (entry / "fd").iterdir():
                    with suppress(OSError):
                        if _same_file(fd.stat(), target):
                            return f"pid {entry.name}: {_command(int(entry.name))}"
    return None


def _command(pid: int, limit: int = 120) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    text = " ".join(raw.replace(b"\0", b" ").decode(errors="replace").split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
