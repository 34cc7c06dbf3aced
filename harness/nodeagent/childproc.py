"""What every process of an upstream-cluster run carries: the run id and its owner's pid in
the environment (how ``harness gc`` finds a crashed run's leftovers), and SIGKILL from the
kernel when the thread that started it dies (``PR_SET_PDEATHSIG``)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess

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
