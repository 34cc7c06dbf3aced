"""Starting and stopping the emulated API server.

- :class:`Emulator`: in-process, on a background thread with its own asyncio loop, on a
  free 127.0.0.1 port. ``with Emulator() as emu:`` gives ``emu.url``, ``emu.store`` (the
  in-process API), ``emu.faults`` and ``emu.write_kubeconfig(path)``; leaving the block
  closes every watch, stops the server and joins the thread.
- :class:`ChildEmulator`: the same server in a child process (``python -m
  harness.emulator``), for tests that must not share the interpreter; ``stop()`` sends
  SIGTERM, then SIGKILL after a grace period, and always reaps the child.
- :func:`serve`: run in the foreground until SIGINT/SIGTERM (the ``harness cluster up``
  command).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from harness.emulator.api.apiserver import ServerSettings, build_app
from harness.emulator.api.faults import Faults
from harness.emulator.api.kubeconfig import write_kubeconfig
from harness.emulator.api.store import Store
from harness.emulator.cluster_config import ClusterConfig, load_cluster_config, node_object
from harness.emulator.loopthread import LoopThread
from harness.objects import format_time

T = TypeVar("T")

_START_TIMEOUT_S = 15.0
_STOP_TIMEOUT_S = 10.0


def populate(store: Store, cluster: ClusterConfig) -> None:
    """Create the configured nodes (Ready) in a fresh store."""
    now = format_time(store.clock())
    for spec in cluster.nodes:
        store.create("nodes", node_object(spec, now))


def _cluster(cluster: ClusterConfig | str | Path | None) -> ClusterConfig:
    return cluster if isinstance(cluster, ClusterConfig) else load_cluster_config(cluster)


class Emulator:
    """The emulated API server, in this process, on a background thread."""

    def __init__(self, *, cluster: ClusterConfig | str | Path | None = None,
                 store: Store | None = None, faults: Faults | None = None,
                 settings: ServerSettings | None = None, host: str = "127.0.0.1",
                 port: int = 0, **store_options: Any) -> None:
        self.cluster = _cluster(cluster)
        if store is None:
            store = Store(**store_options)
            populate(store, self.cluster)
        self.store = store
        self.faults = faults or Faults()
        self.settings = settings or ServerSettings()
        self.host = host
        self._want_port = port
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._thread = LoopThread("the emulator", self._main)
        self.pod_logs_root: Path | None = None
        """Where the kubelet keeps container logs (set by the local cluster before start);
        without it ``pods/NAME/log`` says the container is waiting to start."""

    # ------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The server's event loop (controllers may schedule their tasks on it)."""
        return self._thread.loop

    def start(self) -> Emulator:
        self._thread.start()
        return self

    async def _main(self, started: Callable[[], None]) -> None:
        app = build_app(self.store, faults=self.faults, settings=self.settings,
                        pod_logs_root=self.pod_logs_root)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._want_port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        started()
        try:
            await self._thread.until_stopped()
        finally:
            self.store.drop_watches("server stopping")
            await self._runner.cleanup()

    def stop(self) -> None:
        """Close every watch, stop serving, join the thread. Idempotent."""
        self._thread.stop()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ helpers

    def run_coroutine(self, factory: Callable[[], Awaitable[T]],
                      timeout: float | None = 30.0) -> T:
        """Run a coroutine on the server's loop from another thread and wait for it."""
        async def wrapper() -> T:
            return await factory()
        fut: Future[T] = asyncio.run_coroutine_threadsafe(wrapper(), self.loop)
        return fut.result(timeout)

    def write_kubeconfig(self, path: str | Path, *, context: str | None = None) -> Path:
        return write_kubeconfig(path, self.url, context=context or self.cluster.name)

    def drop_watches(self) -> int:
        """Fault: end every open watch stream now (clients reconnect from their last RV)."""
        return self.store.drop_watches("fault: dropped")

    def compact(self, *, drop_watches: bool = True) -> int:
        """Fault: forget the history so resumes get 410 Expired; by default also end the
        open watches, so their clients do resume right away."""
        mark = self.store.compact()
        if drop_watches:
            self.drop_watches()
        return mark


# ---------------------------------------------------------------------------- child process


class ChildEmulator:
    """The emulator in a child process; ``url`` and ``kubeconfig`` once started."""

    def __init__(self, workdir: str | Path, *, cluster: str | Path | None = None,
                 extra_args: list[str] | None = None) -> None:
        self.workdir = Path(workdir)
        self.kubeconfig = self.workdir / "kubeconfig"
        self.state_file = self.workdir / "state.json"
        self.cluster = cluster
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.port = 0

    def start(self) -> ChildEmulator:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state_file.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "harness.emulator", "--kubeconfig", str(self.kubeconfig),
               "--state-file", str(self.state_file), *self.extra_args]
        if self.cluster is not None:
            cmd += ["--config", str(self.cluster)]
        log = open(self.workdir / "emulator.log", "wb")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the emulator exited with {self.proc.returncode}; see "
                                   f"{self.workdir / 'emulator.log'}")
            state = read_state(self.state_file)
            if state is not None:
                self.url, self.port = state["url"], int(state["port"])
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the emulator did not start within {_START_TIMEOUT_S:.0f} s")

    def stop(self) -> int | None:
        """SIGTERM, wait, SIGKILL if needed; returns the exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(_STOP_TIMEOUT_S)
        return proc.returncode

    def __enter__(self) -> ChildEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_state(path: str | Path) -> dict[str, Any] | None:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "url" in data else None


def write_state(path: str | Path, data: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def serve(*, cluster: str | Path | None, kubeconfig: str | Path, state_file: str | Path,
          port: int = 0, announce: Callable[[Emulator], None] | None = None) -> int:
    """Run the emulator until SIGINT or SIGTERM (see :func:`run_until_signal`)."""
    emu = Emulator(cluster=cluster, port=port)
    return run_until_signal(
        emu, kubeconfig=kubeconfig, state_file=state_file, announce=announce,
        state=lambda: {"url": emu.url, "port": emu.port, "context": emu.cluster.name})


class StartInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived while the cluster was still starting (``signum``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def run_until_signal(running: Any, *, kubeconfig: str | Path, state_file: str | Path,
                     state: Callable[[], dict[str, Any]],
                     announce: Callable[[Any], None] | None = None) -> int:
    """Start ``running`` (an Emulator or a LocalCluster), write its kubeconfig and a state
    file (pid, kubeconfig and ``state()``: urls, port, context) that ``harness cluster
    down`` reads, then wait for SIGINT or SIGTERM; stop it and remove the state file on
    the way out, also when starting fails.

    A signal during ``start()`` (which can wait minutes: builds, Knative and KServe coming
    up) interrupts it at once: the first one raises :class:`StartInterrupted` in the main
    thread, wherever it waits, so ``start()`` unwinds and what it had started is stopped.
    Later signals, and any signal once the cluster runs or is stopping, only ask it to
    stop, so a teardown is never cut short."""
    stop = threading.Event()
    starting = True

    def on_signal(signum: int, frame: object) -> None:
        first = not stop.is_set()
        stop.set()
        if starting and first:
            raise StartInterrupted(signum)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        running.start()
        starting = False
        running.write_kubeconfig(kubeconfig)
        write_state(state_file, {"pid": os.getpid(),
                                 "kubeconfig": str(Path(kubeconfig).expanduser()), **state()})
        if announce is not None:
            announce(running)
        while not stop.wait(0.5):
            pass
    finally:
        starting = False
        running.stop()
        Path(state_file).unlink(missing_ok=True)
        for s, handler in old.items():
            signal.signal(s, handler)
    return 0
