"""The emulated cluster's ground truth: the true instant of each transition, in-process.

The controllers, the kubelet and the ingress append to one :class:`TruthLog` (held by
:class:`~harness.emulator.local_cluster.LocalCluster` as ``truth``) at the moment they make a
change, before any watch event or response leaves the process, so what the harness
measures from outside can be compared with what really happened
(``benchmarks/measurement_accuracy.py``). Times are ``time.time()`` (epoch seconds), the
clock the recorder and the load records use.

Kinds: ``pod-ready`` / ``pod-unready`` (the kubelet wrote the Ready condition),
``pod-terminating`` (the Deployment controller deleted the pod), ``desired-scale`` (the
KPA wrote a new PA ``status.desiredScale``), ``request`` (the ingress's arrival and
response instants of one request, with its status).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TruthEvent:
    """One true transition: ``time`` epoch s, ``kind``, namespace, object name, details."""

    time: float
    kind: str
    namespace: str
    name: str
    data: dict[str, Any] = field(default_factory=dict)


class TruthLog:
    """A bounded, thread-safe, append-only list of :class:`TruthEvent`."""

    def __init__(self, limit: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._events: list[TruthEvent] = []
        self.limit = limit

    def add(self, kind: str, namespace: str, name: str, when: float | None = None,
            **data: Any) -> None:
        event = TruthEvent(time.time() if when is None else when, kind, namespace, name, data)
        with self._lock:
            if len(self._events) < self.limit:
                self._events.append(event)

    def events(self, kind: str | None = None, namespace: str | None = None) -> list[TruthEvent]:
        with self._lock:
            out = list(self._events)
        return [e for e in out if (kind is None or e.kind == kind)
                and (namespace is None or e.namespace == namespace)]

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
