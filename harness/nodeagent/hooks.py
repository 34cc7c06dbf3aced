"""Container lifecycle handlers (``postStart``, ``preStop``) and exec probes, run as
kubelet runs them.

``exec`` runs the command inside the container: ``nsenter`` into the mount and network
namespaces, root and working folder of the container's process (so it sees the
container's volumes at their mountPaths), with the container's environment. ``httpGet`` asks the
pod's address (or ``host``) with ``User-Agent: kube-lifecycle/1.34``; as on a kubelet, only
a failed request fails the hook, not its status code. ``sleep`` waits.
:func:`grace_after_prestop` is kubelet's ``killContainer`` arithmetic: the hook's time
comes out of the grace period, and at least :data:`MIN_GRACE_S` remains for SIGTERM.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from harness.nodeagent.childproc import exited

LIFECYCLE_AGENT = "kube-lifecycle/1.34"
MIN_GRACE_S = 2.0


def in_container(pid: int, command: list[str]) -> list[str]:
    """``command`` run in the mount and network namespaces of process ``pid``, in its root
    (the mount setup may have chrooted it) and working folders."""
    return ["nsenter", "-t", str(pid), "-m", "-n", "-r", "-w", "--", *command]


def runs_command(pid: int) -> bool:
    """Whether process ``pid`` runs the container's command yet (it is past ``ip netns
    exec`` and the mount setup).

    An empty ``cmdline`` is "not yet": in the middle of an ``execve`` the new image's
    arguments are not set up (the kernel reads them as empty), and ``Popen`` returns as soon
    as its close-on-exec pipe closes, which is inside that window. Reading that as "past
    the setup" ran postStart hooks before the volumes were mounted (seen under load)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    argv = raw.split(b"\0")
    if not raw or not argv[0]:
        return False
    return argv[:2] != [b"ip", b"netns"] and not any(a.endswith(b"mountns.py") for a in argv)


def wait_for_command(pid: int, timeout: float = 10.0) -> bool:
    """Wait until :func:`runs_command`, so a hook sees the container as a runtime would
    have created it; False when it exited or the wait ran out."""
    deadline = time.monotonic() + timeout
    while not runs_command(pid):
        if time.monotonic() > deadline or exited(pid):   # pid: the agent's own child
            return False
        time.sleep(0.02)
    return True


def run_exec(pid: int, command: list[str], env: dict[str, str],
             timeout: float) -> tuple[bool, str]:
    """(succeeded, output) of ``command`` inside the container of ``pid``."""
    try:
        proc = subprocess.run(in_container(pid, command), env=env, capture_output=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"command timed out after {timeout:g}s"
    except OSError as exc:
        return False, str(exc)
    out = (proc.stdout + proc.stderr).decode(errors="replace")
    return proc.returncode == 0, out if proc.returncode == 0 else \
        f"command terminated with exit code {proc.returncode}: {out}"


def run_handler(handler: dict[str, Any], *, pid: int, env: dict[str, str], pod_ip: str,
                port_of: Callable[[Any], int], timeout: float) -> str | None:
    """Run one lifecycle handler; None when it succeeded, else the error."""
    if "exec" in handler:
        ok, out = run_exec(pid, list(handler["exec"].get("command") or []), env, timeout)
        return None if ok else out
    if "httpGet" in handler:
        g = handler["httpGet"]
        host = g.get("host") or pod_ip
        path = g.get("path", "")
        url = f"{g.get('scheme', 'HTTP').lower()}://{host}:{port_of(g.get('port', 80))}" \
              f"/{path.lstrip('/')}"
        headers = {"User-Agent": LIFECYCLE_AGENT, "Accept": "*/*"}
        for h in g.get("httpHeaders") or []:
            headers[h["name"]] = h["value"]
        try:
            httpx.get(url, headers=headers, timeout=timeout, verify=False)
        except httpx.HTTPError as exc:
            return f"Get {url!r}: {exc}"
        return None
    if "sleep" in handler:
        time.sleep(min(float(handler["sleep"].get("seconds", 0)), timeout))
        return None
    return f"Cannot run handler: invalid handler: {handler}"


def grace_after_prestop(grace_s: float, hook_s: float) -> float:
    return max(grace_s - hook_s, MIN_GRACE_S)
