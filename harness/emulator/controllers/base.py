"""A minimal level-triggered controller: watches feed a de-duplicating work queue of keys,
one worker reconciles each key; errors are logged and the key retried after a pause.

Subclasses list the resources they watch in :attr:`Controller.resources`, map each watch
event to the keys it affects in :meth:`Controller.keys_for`, and implement
:meth:`Controller.reconcile`. :meth:`Controller.enqueue` may be called from any thread.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Hashable, Iterable
from typing import Any

from harness.emulator.api.status import ApiError
from harness.emulator.api.store import Store
from harness.emulator.api.subscriptions import WatchEvent
from harness.objects import format_time

log = logging.getLogger(__name__)

_RETRY_S = 0.5
_WATCH_POLL_S = 0.5


class Controller:
    """Base class: run with :meth:`run` until :meth:`stop`."""

    name = "controller"
    resources: tuple[str, ...] = ()

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: asyncio.Queue[Hashable] | None = None
        self._queued: set[Hashable] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self.errors = 0

    # ------------------------------------------------------------------ to override

    def keys_for(self, resource: str, event: WatchEvent) -> Iterable[Hashable]:
        meta = event.object.get("metadata") or {}
        return [(meta.get("namespace", ""), meta.get("name", ""))]

    async def reconcile(self, key: Hashable) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def on_stop(self) -> None:
        """Release what the controller holds (processes, servers)."""

    # ------------------------------------------------------------------ machinery

    def enqueue(self, key: Hashable) -> None:
        loop, queue = self._loop, self._queue
        if loop is None or queue is None or self._stopping:
            return

        def put() -> None:
            if key not in self._queued:
                self._queued.add(key)
                queue.put_nowait(key)

        try:
            if asyncio.get_running_loop() is loop:
                put()
                return
        except RuntimeError:
            pass
        try:
            loop.call_soon_threadsafe(put)
        except RuntimeError:
            pass

    async def start(self) -> None:
        """Open the watches and start the worker on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        for resource in self.resources:
            watch = self.store.watch(resource)
            self._tasks.append(asyncio.create_task(self._pump(resource, watch),
                                                   name=f"{self.name}-watch-{resource}"))
        self._tasks.append(asyncio.create_task(self._work(), name=f"{self.name}-worker"))

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        self._tasks.clear()
        await self.on_stop()

    async def _pump(self, resource: str, watch: Any) -> None:
        try:
            while not self._stopping:
                event = await watch.next(_WATCH_POLL_S)
                if event is None:
                    if watch.closed:
                        watch.stop()
                        watch = self.store.watch(resource)  # resynced by initial ADDEDs
                    continue
                try:
                    self.on_event(resource, event)
                    for key in self.keys_for(resource, event):
                        self.enqueue(key)
                except Exception:  # noqa: BLE001 - one bad event must not stop the pump
                    log.exception("%s: handling a %s event", self.name, resource)
        finally:
            watch.stop()

    def on_event(self, resource: str, event: WatchEvent) -> None:
        """Hook for controllers that react to an event itself (e.g. deletions)."""

    async def _work(self) -> None:
        assert self._queue is not None
        while not self._stopping:
            key = await self._queue.get()
            self._queued.discard(key)
            try:
                await self.reconcile(key)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.code in (404, 409):
                    self._retry(key)
                else:
                    self.errors += 1
                    log.warning("%s: reconcile %s: %s", self.name, key, exc)
                    self._retry(key)
            except Exception:  # noqa: BLE001 - logged, retried
                self.errors += 1
                log.exception("%s: reconcile %s", self.name, key)
                self._retry(key)

    def _retry(self, key: Hashable) -> None:
        loop = self._loop
        if loop is not None and not self._stopping:
            loop.call_later(_RETRY_S, self.enqueue, key)


# ---------------------------------------------------------------------------- helpers


def owner_ref(obj: dict[str, Any], *, controller: bool = True) -> dict[str, Any]:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
            "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"],
            "controller": controller, "blockOwnerDeletion": True}


def condition(type_: str, status: str, reason: str = "", message: str = "",
              previous: list[dict[str, Any]] | None = None,
              severity: str | None = None) -> dict[str, Any]:
    """A condition whose ``lastTransitionTime`` only moves when its status changes."""
    when = format_time()
    for old in previous or []:
        if old.get("type") == type_ and old.get("status") == status:
            when = old.get("lastTransitionTime") or when
    cond: dict[str, Any] = {"type": type_, "status": status, "lastTransitionTime": when}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    if severity:
        cond["severity"] = severity
    return cond


def apply(store: Store, resource: str, desired: dict[str, Any]) -> dict[str, Any]:
    """Create ``desired`` or update the stored object's spec/labels/annotations to match."""
    meta = desired["metadata"]
    current = store.try_get(resource, meta["name"], namespace=meta.get("namespace"))
    if current is None:
        return store.create(resource, desired, namespace=meta.get("namespace"))
    new = copy.deepcopy(current)
    changed = False
    for field in ("labels", "annotations", "ownerReferences"):
        if field in meta and current["metadata"].get(field) != meta[field]:
            new["metadata"][field] = meta[field]
            changed = True
    for part, value in desired.items():
        if part in ("metadata", "status", "apiVersion", "kind"):
            continue
        if current.get(part) != value:
            new[part] = value
            changed = True
    if not changed:
        return current
    return store.update(resource, new, namespace=meta.get("namespace"))


def set_status(store: Store, resource: str, obj: dict[str, Any],
               status: dict[str, Any]) -> dict[str, Any]:
    """Write ``status`` (whole) when it differs from the stored one."""
    if (obj.get("status") or {}) == status:
        return obj
    meta = obj["metadata"]
    return store.patch(resource, meta["name"], [{"op": "add", "path": "/status", "value": status}],
                       namespace=meta.get("namespace"), patch_type="json",
                       subresource="status")
