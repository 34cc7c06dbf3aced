"""What every process of an upstream-cluster run carries: the run id and its owner's pid in
the environment (how ``harness gc`` finds a crashed run's leftovers), and SIGKILL from the
kernel when the thread that started it dies (``PR_SET_PDEATHSIG``); stopping a component's
process group, and a container as a runtime does (:func:`stop_container`)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from contextlib import suppress

RUN_ENV = "HARNESS_UPSTREAM_RUN"
OWNER_ENV = "HARNESS_UPSTREAM_OWNER"
_PR_SET_PDEATHSIG = 1


def run_env(run_id: str) -> dict[str, str]:
    """The environment entries that mark a process as this run's, owned by this process."""
    return {RUN_ENV: run_id, OWNER_ENV: str(os.getpid())}


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """``preexec_fn``: runs in the child between fork and exec (``sig``: SIGTERM for a
    child that must clean up after itself, e.g. an upstream cluster)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(sig))
    except (OSError, AttributeError):
        pass


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (signal 0; another user's counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM to a process's group, ``grace_s`` to exit, SIGKILL to what is left, reaped."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of its group
    except ProcessLookupError:
        pass
    proc.wait()


def exited(pid: int) -> bool:
    """Whether the child ``pid`` has ended (a zombie, or reaped), without reaping it: while
    it is a zombie its pid (the id of its process group) cannot be given to another
    process."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True   # reaped already


def container_ended(proc: subprocess.Popen[bytes]) -> bool:
    """Whether a container's first process has ended; when it has, what is left of its
    process group gets SIGKILL (a container's other processes die with its init, as in its
    PID namespace) before the first process is reaped."""
    if proc.returncode is not None:
        return True
    if not exited(proc.pid):
        return False
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def stop_container(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """A container runtime's stop: SIGTERM to the container's first process only (not its
    children: they get what it passes on), SIGKILL to it after ``grace_s``; then SIGKILL to
    whatever is left of its process group, and reaped (:func:`container_ended`)."""
    if proc.returncode is None and not exited(proc.pid):
        with suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while not exited(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not exited(proc.pid):
            with suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
    while not container_ended(proc):
        time.sleep(0.02)
