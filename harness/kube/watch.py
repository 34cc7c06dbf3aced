"""A watch that does not lose changes: resumes, re-lists on 410, survives restarts.

:class:`ResumingWatch` lists a resource, then watches from the list's resourceVersion
with bookmarks, and hands every change to ``on_event`` as a recorded event (the format
:mod:`harness.observe.frames` reads)::

    {"received": time.time() at receipt, "type": "ADDED"|"MODIFIED"|"DELETED",
     "object": {...}, "kind": "Pod", "resource": "pods", "synthetic": False}

How it copes with the API server:

* **stream ends** (server timeout, a dropped watch): resume from the last resourceVersion
  seen (an event's or a bookmark's); replayed events already seen are skipped (the
  server's initial ADDEDs come in key order, so a resume may repeat some).
* **410 Gone** (in the stream as an ERROR event, or as the HTTP status), or a server whose
  resourceVersions went backwards (restarted with its state lost): re-list and emit
  **synthetic** events (``"synthetic": True``) for what changed meanwhile: ADDED for new
  objects, MODIFIED for changed ones, DELETED (with the last known object) for those gone.
  A synthetic event's ``received`` is the re-list time, so it is late by up to the gap.
* **connection refused/reset, timeouts** (API server down or restarting): back off
  (exponential with jitter, up to ``max_backoff_s``) and re-list once it answers, which
  also covers a restart that lost state. 429/5xx on the watch request: back off
  (honouring ``Retry-After``) and resume without a re-list.

Objects are keyed by namespace/name and compared by uid and resourceVersion, so a
recreated object (new uid) shows as DELETED then ADDED.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes.client.exceptions import ApiException

from harness.kube.client import Kube, retry_after
from harness.kube.resources import Resource, known

log = logging.getLogger(__name__)

Event = dict[str, Any]
Key = tuple[str, str]


class Gone(Exception):
    """The resume point is too old (410) or the server's history was reset."""


class _Stopped(Exception):
    pass


def _rv_int(rv: Any) -> int | None:
    try:
        return int(str(rv))
    except (TypeError, ValueError):
        return None


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _uid_rv(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("uid") or ""), str(meta.get("resourceVersion") or "")


class ResumingWatch:
    """Watch one resource (in one namespace, or all) and never miss a change.

    ``on_event(event)`` runs on the watch thread for each change, in order. ``synced`` is
    set once the first list has been delivered. ``stats`` counts ``lists``, ``resumes``,
    ``gone`` (410s), ``errors`` and ``events``. Run it with :meth:`start`/:meth:`stop`
    (a daemon thread) or call :meth:`run` on your own thread.
    """

    def __init__(self, kube: Kube, resource: Resource | str, namespace: str | None = None,
                 *, on_event: Callable[[Event], None], label_selector: str | None = None,
                 field_selector: str | None = None, timeout_s: int = 60,
                 connect_timeout_s: float = 5.0, base_backoff_s: float = 0.05,
                 max_backoff_s: float = 2.0, clock: Callable[[], float] = time.time) -> None:
        self.kube = kube
        self.resource = known(resource)
        self.namespace = namespace if self.resource.namespaced else None
        self.on_event = on_event
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.clock = clock
        self.synced = threading.Event()
        self.stats = {"lists": 0, "resumes": 0, "gone": 0, "errors": 0, "events": 0}
        self.last_error: BaseException | None = None
        self.resource_version: str | None = None
        self._known: dict[Key, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._resp: Any = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ResumingWatch:
        self._thread = threading.Thread(target=self.run, daemon=True,
                                        name=f"watch-{self.resource.plural}")
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop, close the open stream, join the thread."""
        self._stop.set()
        self._abort_stream()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("watch on %s did not stop within %.0f s", self.resource, timeout)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def snapshot(self) -> dict[Key, dict[str, Any]]:
        """The objects as this watch currently knows them (namespace, name) -> object."""
        with self._lock:
            return dict(self._known)

    def _abort_stream(self) -> None:
        resp = self._resp
        if resp is None:
            return
        for method in ("shutdown", "close"):
            try:
                getattr(resp, method)()
            except Exception:  # noqa: BLE001 - best effort from another thread
                pass

    # ------------------------------------------------------------------ loop

    def run(self) -> None:
        need_list = True
        failures = 0
        while not self._stop.is_set():
            try:
                if need_list:
                    self._relist()
                    need_list = False
                    self.synced.set()
                else:
                    self.stats["resumes"] += 1
                self._stream()
                failures = 0
            except _Stopped:
                break
            except Gone as exc:
                self.stats["gone"] += 1
                log.debug("watch %s: %s; re-listing", self.resource, exc)
                need_list = True
            except Exception as exc:  # noqa: BLE001 - every failure: back off and retry
                if self._stop.is_set():
                    break
                if isinstance(exc, ApiException) and exc.status == 410:
                    self.stats["gone"] += 1
                    need_list = True
                    continue
                self.stats["errors"] += 1
                self.last_error = exc
                failures += 1
                # The server answered (429/5xx...): its state is intact, resume. Anything
                # else (refused, reset, timed out): it may have restarted, so re-list.
                answered = isinstance(exc, ApiException) and exc.status not in (0, None)
                need_list = need_list or not answered
                wait = min(self.max_backoff_s, self.base_backoff_s * 2 ** (failures - 1))
                wait *= random.uniform(0.5, 1.0)
                hinted = retry_after(exc)
                if hinted is not None:
                    wait = max(wait, hinted)
                log.debug("watch %s failed (%s); retry in %.2f s", self.resource, exc, wait)
                self._stop.wait(wait)
        self._resp = None

    def _emit(self, etype: str, obj: dict[str, Any], synthetic: bool,
              received: float | None = None) -> None:
        obj.setdefault("kind", self.resource.kind)
        obj.setdefault("apiVersion", self.resource.api_version)
        event = {"received": self.clock() if received is None else received, "type": etype,
                 "object": obj, "kind": self.resource.kind,
                 "resource": str(self.resource), "synthetic": synthetic}
        self.stats["events"] += 1
        self.on_event(event)

    def _relist(self) -> None:
        doc = self.kube.request(
            "GET", self.resource.path(self.namespace),
            query={"labelSelector": self.label_selector, "fieldSelector": self.field_selector},
            timeout=(self.connect_timeout_s, 60.0), retry=False)  # run() backs off, stoppably
        received = self.clock()
        self.stats["lists"] += 1
        first = self.resource_version is None and not self._known
        items: list[dict[str, Any]] = list((doc or {}).get("items") or [])
        fresh: dict[Key, dict[str, Any]] = {}
        for item in items:
            key = _key(item)
            fresh[key] = item
            old = self._known.get(key)
            if old is None:
                self._emit("ADDED", item, not first, received)
            elif _uid_rv(old)[0] != _uid_rv(item)[0]:
                self._emit("DELETED", old, True, received)
                self._emit("ADDED", item, True, received)
            elif _uid_rv(old)[1] != _uid_rv(item)[1]:
                self._emit("MODIFIED", item, True, received)
        for key, old in self._known.items():
            if key not in fresh:
                self._emit("DELETED", old, True, received)
        with self._lock:
            self._known = fresh
        self.resource_version = str(((doc or {}).get("metadata") or {}).get(
            "resourceVersion") or "") or None

    def _stream(self) -> None:
        query = {"watch": True, "resourceVersion": self.resource_version,
                 "allowWatchBookmarks": True, "timeoutSeconds": self.timeout_s,
                 "labelSelector": self.label_selector, "fieldSelector": self.field_selector}
        resp = self.kube.open_stream(self.resource.path(self.namespace), query=query,
                                     timeout=(self.connect_timeout_s, self.timeout_s + 15.0))
        self._resp = resp
        start_rv = _rv_int(self.resource_version)
        complete = False
        try:
            if self._stop.is_set():
                raise _Stopped
            for line in _lines(resp):
                if self._stop.is_set():
                    raise _Stopped
                self._handle(json.loads(line), start_rv)
            complete = True
        except _Stopped:
            raise
        except Exception:
            if self._stop.is_set():
                raise _Stopped from None
            raise
        finally:
            self._resp = None
            try:
                # a stream left half-read must not go back to the pool
                resp.release_conn() if complete else resp.close()
            except Exception:  # noqa: BLE001
                pass
        if self._stop.is_set():
            raise _Stopped

    def _handle(self, raw: dict[str, Any], start_rv: int | None) -> None:
        received = self.clock()
        etype = str(raw.get("type", ""))
        obj = raw.get("object") or {}
        if etype == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise Gone(obj.get("message") or "410 Gone")
            raise ApiException(status=int(code or 500),
                               reason=f"watch error: {obj.get('message', obj)}")
        uid, rv = _uid_rv(obj)
        rv_n = _rv_int(rv)
        if start_rv is not None and rv_n is not None and rv_n <= start_rv and \
                etype != "BOOKMARK":
            # after a resume every change is newer than the resume point; an older one
            # means the server's history was reset (restarted without its state)
            raise Gone(f"resourceVersion went back from {start_rv} to {rv_n}")
        if etype == "BOOKMARK":
            if rv:
                self.resource_version = rv
            return
        if etype not in ("ADDED", "MODIFIED", "DELETED"):
            return
        key = _key(obj)
        old = self._known.get(key)
        if old is not None and _uid_rv(old)[0] == uid:
            old_n = _rv_int(_uid_rv(old)[1])
            if etype != "DELETED" and old_n is not None and rv_n is not None and \
                    rv_n <= old_n:
                return  # a replay of what we already have
        if etype == "DELETED" and (old is None or _uid_rv(old)[0] != uid):
            return  # already gone, or an older incarnation's delete (a replay)
        with self._lock:
            if etype == "DELETED":
                self._known.pop(key, None)
            else:
                if old is not None and _uid_rv(old)[0] != uid and etype == "ADDED":
                    self._emit("DELETED", old, True, received)
                self._known[key] = obj
        if rv:
            self.resource_version = rv
        self._emit(etype, obj, False, received)


def _lines(resp: Any) -> Iterator[str]:
    """Newline-delimited JSON lines from a streaming urllib3 response."""
    buf = b""
    for chunk in resp.stream(amt=None, decode_content=False):
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield line.decode("utf-8")
    if buf.strip():
        yield buf.decode("utf-8")


def collect(kube: Kube, resource: Resource | str, namespace: str | None = None,
            **kwargs: Any) -> tuple[ResumingWatch, list[Event]]:
    """A started watch that appends every event to the returned list (for tests)."""
    events: list[Event] = []
    lock = threading.Lock()

    def add(e: Event) -> None:
        with lock:
            events.append(e)

    w = ResumingWatch(kube, resource, namespace, on_event=add, **kwargs).start()
    return w, events
