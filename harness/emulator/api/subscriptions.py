"""Watch subscriptions: a bounded queue of events filled by the store under its lock,
read either by asyncio code (``async for``, :meth:`Watch.next`) or by threads
(:meth:`Watch.get`).

An event's ``object`` is the stored dict itself; :meth:`Watch.next` and :meth:`Watch.get`
hand out deep copies, so in-process consumers may change what they receive. The HTTP layer
reads the shared dicts through :meth:`Watch.drain` and only serialises them.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from harness.emulator.api.registry import ResourceType
from harness.emulator.api.selectors import FieldSelector, LabelSelector


@dataclass(frozen=True)
class WatchEvent:
    """One event: ``type`` is ADDED, MODIFIED, DELETED, BOOKMARK or ERROR."""

    type: str
    object: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "object": self.object}


class Watch:
    """A live subscription created by :meth:`Store.watch`. Stop it with :meth:`stop`."""

    def __init__(self, rtype: ResourceType, *, namespace: str | None,
                 label_selector: LabelSelector, field_selector: FieldSelector,
                 max_queue: int, on_stop: Callable[[Watch], None],
                 current_rv: Callable[[Watch], int | None]) -> None:
        self.rtype = rtype
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.max_queue = max_queue
        self.closed_reason: str | None = None
        self._queue: deque[WatchEvent] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_event: asyncio.Event | None = None
        self._async_waiting = False
        self._on_stop = on_stop
        self._current_rv = current_rv

    # ------------------------------------------------------------ filled by the store

    def matches(self, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        return self.label_selector.matches(meta.get("labels")) and self.field_selector.matches(
            obj)

    def offer(self, etype: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        """Queue what this watcher sees of a store change (selectors decide the type)."""
        new_ok = self.matches(obj)
        if etype == "MODIFIED":
            old_ok = old is not None and self.matches(old)
            if new_ok and not old_ok:
                etype = "ADDED"
            elif old_ok and not new_ok:
                etype = "DELETED"
            elif not new_ok:
                return
        elif not new_ok:
            return
        self.push(WatchEvent(etype, obj))

    def push(self, event: WatchEvent) -> None:
        with self._cond:
            if self.closed_reason is not None:
                return
            if len(self._queue) >= self.max_queue:
                self.closed_reason = "overflow"
            else:
                self._queue.append(event)
            self._cond.notify_all()
            wake = self._async_waiting
        if wake:
            self._wake()

    def close(self, reason: str = "closed") -> None:
        """End the stream (consumers see it end after the queued events)."""
        with self._cond:
            if self.closed_reason is None:
                self.closed_reason = reason
            self._cond.notify_all()
        self._wake()

    def _wake(self) -> None:
        loop, event = self._loop, self._async_event
        if loop is not None and event is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass

    # ------------------------------------------------------------ read by consumers

    @property
    def closed(self) -> bool:
        return self.closed_reason is not None

    def stop(self) -> None:
        """Unsubscribe and close; safe to call more than once."""
        self.close("stopped")
        self._on_stop(self)

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def bookmark_rv(self) -> int | None:
        """The store's resourceVersion if every event up to it has been read, else None."""
        return self._current_rv(self)

    def _take_all(self) -> list[WatchEvent]:
        with self._cond:
            out = list(self._queue)
            self._queue.clear()
            return out

    def _empty_locked(self) -> bool:
        return not self._queue

    async def wait(self, timeout: float | None) -> bool:
        """Wait until an event is queued or the watch closes; False on timeout."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._async_event = loop, asyncio.Event()
        assert self._async_event is not None
        with self._cond:
            if self._queue or self.closed_reason is not None:
                return True
            self._async_event.clear()
            self._async_waiting = True
        try:
            await asyncio.wait_for(self._async_event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._cond:
                self._async_waiting = False

    async def drain(self, timeout: float | None) -> list[WatchEvent]:
        """Everything queued (shared objects, read-only), waiting up to ``timeout`` for one."""
        await self.wait(timeout)
        return self._take_all()

    async def next(self, timeout: float | None = None) -> WatchEvent | None:
        """The next event (a private copy), or None on timeout or once closed and empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                if self._queue:
                    ev = self._queue.popleft()
                    return WatchEvent(ev.type, copy.deepcopy(ev.object))
                if self.closed_reason is not None:
                    return None
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            await self.wait(left)

    def get(self, timeout: float | None = None) -> WatchEvent | None:
        """Blocking variant of :meth:`next` for threads."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._queue:
                if self.closed_reason is not None:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            ev = self._queue.popleft()
        return WatchEvent(ev.type, copy.deepcopy(ev.object))

    def __iter__(self) -> Iterator[WatchEvent]:
        """Blocking iteration until the watch is closed (stop it from another thread)."""
        while True:
            ev = self.get()
            if ev is None:
                return
            yield ev

    async def __aiter__(self) -> AsyncIterator[WatchEvent]:
        while True:
            ev = await self.next()
            if ev is None:
                return
            yield ev
