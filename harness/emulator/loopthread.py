"""An asyncio event loop on a daemon thread: the one way the emulator runs in-process.

:class:`LoopThread` runs ``main(started)`` on a fresh loop in its own thread.
``main`` sets things up, calls ``started()`` once it serves, then awaits
:meth:`LoopThread.until_stopped` and tears down in ``finally``. :meth:`LoopThread.start`
blocks until ``started()`` (or raises ``RuntimeError`` with the failure or a timeout);
:meth:`LoopThread.stop` sets ``stopping`` from any thread and joins. Both the API
server (:class:`harness.emulator.api.process.Emulator`) and the controllers
(:class:`harness.emulator.local_cluster.LocalCluster`) run on one of these.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class LoopThread:
    """``main(started)`` on its own event loop in a daemon thread named ``name``."""

    def __init__(self, name: str, main: Callable[[Callable[[], None]], Awaitable[None]]) -> None:
        self.name = name
        self._main = main
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.stopping: asyncio.Event | None = None
        """Set (on the loop) when :meth:`stop` is called; ``main`` waits on it."""

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._loop

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start the thread and wait until ``main`` calls ``started()``."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already running")
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"{self.name} did not start within {timeout:.0f} s")
        if self._error is not None:
            error = self._error
            self._thread.join(STOP_TIMEOUT_S)
            self._thread = None
            raise RuntimeError(f"{self.name} failed to start: {error}") from error

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Ask ``main`` to finish and join the thread. Idempotent."""
        thread, loop, stopping = self._thread, self._loop, self.stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # the loop closed in between
                pass
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"{self.name} did not stop within {timeout:.0f} s")
        self._thread = None
        self._loop = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def until_stopped(self) -> None:
        """For ``main``: return once :meth:`stop` is called."""
        assert self.stopping is not None, "until_stopped() runs inside main()"
        await self.stopping.wait()

    async def _serve(self) -> None:
        self.stopping = asyncio.Event()
        await self._main(self._ready.set)
