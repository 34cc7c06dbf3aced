"""Supervised processes: the upstream cluster's components, each restarted with back-off
when it dies, all stopped in reverse order on the way out.

Every child runs in its own session (so a stop reaches its whole process group), writes
stdout and stderr to ``<logs>/<name>.log``, carries ``HARNESS_UPSTREAM_RUN=<run id>`` and
``HARNESS_UPSTREAM_OWNER=<pid of harness>`` in its environment (how
:mod:`harness.upstream.sweep` finds the leftovers of a crashed run) and gets SIGKILL from
the kernel when the supervising thread dies (``PR_SET_PDEATHSIG``), so a ``kill -9`` of
``harness cluster up`` leaves no component running.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.nodeagent.childproc import die_with_parent, run_env, stop_group

_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)



@dataclass
class Spec:
    """One component: its command line, environment additions and stop grace."""

    name: str
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    grace_s: float = 10.0


@dataclass
class _Child:
    spec: Spec
    proc: subprocess.Popen[bytes]
    started: float
    restarts: int = 0


class Supervisor:
    """Starts components, restarts the ones that die, stops them all."""

    def __init__(self, run_id: str, logs: Path,
                 on_event: Callable[[str], None] | None = None) -> None:
        self.run_id = run_id
        self.logs = logs
        self.on_event = on_event or (lambda line: None)
        self._children: dict[str, _Child] = {}
        self._order: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._requests: list[Spec] = []
        self._wake = threading.Condition(self._lock)
        self._thread.start()

    # The watcher thread forks every child, so PR_SET_PDEATHSIG is tied to a thread that
    # lives as long as the supervisor (the signal follows the *thread* that forked).

    def start(self, spec: Spec, timeout: float = 30.0) -> int:
        """Start ``spec`` (from the watcher thread) and return its pid."""
        with self._wake:
            self._requests.append(spec)
            self._wake.notify_all()
            deadline = time.monotonic() + timeout
            while spec.name not in self._children:
                if self._stopping.is_set():
                    raise RuntimeError("supervisor stopping")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"could not start {spec.name}")
                self._wake.wait(left)
            return self._children[spec.name].proc.pid

    def pids(self) -> dict[str, int]:
        with self._lock:
            return {n: c.proc.pid for n, c in self._children.items()}

    def restarts(self, name: str) -> int:
        with self._lock:
            return self._children[name].restarts

    def alive(self, name: str) -> bool:
        with self._lock:
            child = self._children.get(name)
            return child is not None and child.proc.poll() is None

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def _spawn(self, spec: Spec) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **spec.env, **run_env(self.run_id)}
        with open(self.log_path(spec.name), "ab") as log:
            return subprocess.Popen(list(spec.argv), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True, preexec_fn=die_with_parent)

    def _watch(self) -> None:
        due: dict[str, float] = {}
        while True:
            with self._wake:
                for spec in self._requests:
                    self._children[spec.name] = _Child(spec, self._spawn(spec), time.monotonic())
                    if spec.name not in self._order:
                        self._order.append(spec.name)
                self._requests.clear()
                self._wake.notify_all()
                if self._stopping.is_set():
                    self._stop_all()
                    self._wake.notify_all()
                    return
                now = time.monotonic()
                for name, child in self._children.items():
                    code = child.proc.poll()
                    if code is None:
                        continue
                    if name not in due:
                        wait = _BACKOFF_S[min(child.restarts, len(_BACKOFF_S) - 1)]
                        if now - child.started > 60:
                            wait = _BACKOFF_S[0]
                        due[name] = now + wait
                        self.on_event(f"{name} exited with code {code}; restarting in "
                                      f"{wait:.0f} s (log: {self.log_path(name)})")
                    elif now >= due[name]:
                        del due[name]
                        restarts = child.restarts + 1
                        self._children[name] = _Child(child.spec, self._spawn(child.spec),
                                                      now, restarts)
                self._wake.wait(0.5)

    def _stop_all(self) -> None:
        for name in reversed(self._order):
            child = self._children[name]
            stop_group(child.proc, child.spec.grace_s)

    def stop(self) -> None:
        """Stop every child (reverse start order: SIGTERM, SIGKILL after its grace)."""
        with self._wake:
            self._stopping.set()
            self._wake.notify_all()
        self._thread.join()
