"""The background recorder: watches a test namespace and keeps every change, stamped.

``with Recorder(kube, namespace) as rec: ...`` starts one :class:`~harness.kube.watch.
ResumingWatch` thread per kind (pods, PodAutoscalers, Revisions, events by default),
waits until each has listed what already exists, and records every event as
:mod:`harness.observe.frames` reads it: ``received`` (``time.time()`` at receipt),
``type``, ``object``, plus ``kind``, ``resource`` and ``synthetic`` (True for changes
recovered by a re-list after a 410 or a restart). Events are kept in memory (the
recording sorts them by receive time) and, with ``jsonl=path``, appended to a file
line by line as they come (so a crashed run still leaves its timeline).
:meth:`Recorder.stop` (or leaving the block) returns a :class:`Recording`: the events,
the panic samples and the frames.

When the autoscaler's metrics endpoint answers (``metrics_url``, or ``"auto"`` to try
:func:`harness.kube.knative.autoscaler_metrics_urls`), a scraper records its
``panic_mode`` gauge; otherwise panic is left to inference by the frame builder.
The recorder only reads the Kubernetes API and that endpoint: it never sends a request
to the inference service (a probe would keep it from scaling to zero).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from harness.kube.client import Kube
from harness.kube.resources import (
    CONFIGMAPS,
    EVENTS,
    PODAUTOSCALERS,
    PODS,
    REVISIONS,
    Resource,
)
from harness.kube.watch import ResumingWatch
from harness.observe.prometheus import PanicScraper, first_reachable

if TYPE_CHECKING:
    from harness.observe.frames import Frames
    from harness.params import KPAParams

KINDS: dict[str, Resource] = {"pods": PODS, "podautoscalers": PODAUTOSCALERS,
                              "revisions": REVISIONS, "events": EVENTS,
                              "config-autoscaler": CONFIGMAPS}
DEFAULT_KINDS = ("pods", "podautoscalers", "revisions", "events")
ELSEWHERE: dict[str, tuple[str, str]] = {
    "config-autoscaler": ("knative-serving", "metadata.name=config-autoscaler")}
"""Kinds watched outside the test namespace: (namespace, field selector). Opt-in, since
reading ``knative-serving`` may need more rights than the test namespace."""

Event = dict[str, Any]


@dataclass
class Recording:
    """What a recorder saw: ``events`` in receive-time order, ``panic`` gauge samples per
    revision (empty when the endpoint was not reachable), the recording's ``start`` and
    ``end`` (epoch seconds) and each watch's ``stats``."""

    events: list[Event]
    start: float
    end: float
    panic: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    metrics_url: str | None = None
    stats: dict[str, dict[str, int]] = field(default_factory=dict)

    def panic_samples(self, revision: str | None = None) -> list[tuple[float, float]] | None:
        """Gauge samples of one revision (or the max over all), None without a scraper."""
        if self.metrics_url is None:
            return None
        if revision is not None:
            return list(self.panic.get(revision, []))
        merged: dict[float, float] = {}
        for pairs in self.panic.values():
            for t, v in pairs:
                merged[t] = max(merged.get(t, 0.0), v)
        return sorted(merged.items())

    def frames(self, *, revision: str | None = None, pa: str | None = None,
               params: KPAParams | None = None) -> Frames:
        """The frames of this recording (:func:`harness.observe.frames.build_frames`):
        panic from the gauge when scraped, else inferred when ``params`` are given."""
        from harness.observe.frames import build_frames

        return build_frames(self.events, revision=revision, pa=pa,
                            panic_samples=self.panic_samples(revision), params=params)

    def of_kind(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.get("kind") == kind]

    def config_changes(self) -> list[tuple[float, dict[str, str]]]:
        """``(received, data)`` of each version of ``config-autoscaler`` seen (the first is
        the one in force at the start), when the recorder watched ``config-autoscaler``."""
        out: list[tuple[float, dict[str, str]]] = []
        for e in self.events:
            obj = e.get("object") or {}
            if (e.get("kind") == "ConfigMap" and e.get("type") != "DELETED"
                    and (obj.get("metadata") or {}).get("name") == "config-autoscaler"):
                data = {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
                if not out or out[-1][1] != data:
                    out.append((float(e["received"]), data))
        return out


class Recorder:
    """Record a namespace's pods, PodAutoscalers, Revisions and events in the background.

    Parameters: ``api`` a :class:`~harness.kube.client.Kube` (or an official
    ``ApiClient``, wrapped read-only); ``namespace``; ``kinds`` names from :data:`KINDS`;
    ``jsonl`` a file to append events to; ``metrics_url`` the autoscaler's metrics URL,
    ``"auto"`` to look it up, or None for none; ``sync_timeout_s`` how long
    :meth:`start` waits for the first lists.
    """

    def __init__(self, api: Kube | Any, namespace: str, kinds: Sequence[str] = DEFAULT_KINDS,
                 *, jsonl: str | Path | None = None, metrics_url: str | None = None,
                 metrics_interval_s: float = 1.0, sync_timeout_s: float = 30.0,
                 clock: Callable[[], float] = time.time, **watch_options: Any) -> None:
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown kinds {unknown}; choose from {sorted(KINDS)}")
        self.kube = api if isinstance(api, Kube) else Kube(api)
        self.namespace = namespace
        self.kinds = tuple(kinds)
        self.jsonl = Path(jsonl) if jsonl else None
        self.metrics_url = metrics_url
        self.metrics_interval_s = metrics_interval_s
        self.sync_timeout_s = sync_timeout_s
        self.clock = clock
        self.watch_options = watch_options
        self._events: list[Event] = []
        self._lock = threading.Condition()
        self._file: IO[str] | None = None
        self._watches: dict[str, ResumingWatch] = {}
        self._scraper: PanicScraper | None = None
        self._start = float("nan")
        self._recording: Recording | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Recorder:
        if self._watches:
            raise RuntimeError("the recorder is already running")
        self._start = self.clock()
        if self.jsonl is not None:
            self.jsonl.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.jsonl.open("a", encoding="utf-8")
        for kind in self.kinds:
            namespace, options = self.namespace, dict(self.watch_options)
            if kind in ELSEWHERE:
                namespace, options["field_selector"] = ELSEWHERE[kind]
            self._watches[kind] = ResumingWatch(self.kube, KINDS[kind], namespace,
                                                on_event=self._add, clock=self.clock,
                                                **options).start()
        deadline = time.monotonic() + self.sync_timeout_s
        for kind, w in self._watches.items():
            if not w.synced.wait(max(0.0, deadline - time.monotonic())):
                self._halt()
                raise TimeoutError(f"recorder: could not list {kind} in {self.namespace} "
                                   f"within {self.sync_timeout_s:g} s "
                                   f"(last error: {w.last_error})")
        url = self._metrics_url()
        if url is not None:
            self._scraper = PanicScraper(url, self.namespace,
                                         interval_s=self.metrics_interval_s,
                                         clock=self.clock).start()
        return self

    def _metrics_url(self) -> str | None:
        if self.metrics_url is None:
            return None
        if self.metrics_url == "auto":
            from harness.kube.knative import autoscaler_metrics_urls

            candidates: Iterable[str] = autoscaler_metrics_urls(self.kube)
        else:
            candidates = [self.metrics_url]
        return first_reachable(candidates, timeout=1.0)

    def _halt(self) -> None:
        for w in self._watches.values():
            w.stop()
        if self._scraper is not None:
            self._scraper.stop()
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def stop(self) -> Recording:
        """Stop every thread, close the file, return the recording (idempotent)."""
        if self._recording is not None:
            return self._recording
        self._halt()
        scraper = self._scraper
        with self._lock:
            # threads stamp before they take the lock, so arrival order can differ from
            # stamp order by microseconds; a stable sort keeps each watch's own order
            events = sorted(self._events, key=lambda e: e["received"])
        self._recording = Recording(
            events=events, start=self._start, end=self.clock(),
            panic={rev: list(v) for rev, v in scraper.samples.items()} if scraper else {},
            # the endpoint counts as the autoscaler's only if it served Knative's families
            metrics_url=scraper.url if scraper and scraper.autoscaler else None,
            stats={k: dict(w.stats) for k, w in self._watches.items()})
        return self._recording

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ events

    def _add(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)
            if self._file is not None:
                self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
                self._file.flush()
            self._lock.notify_all()

    @property
    def events(self) -> list[Event]:
        """A snapshot of the events so far."""
        with self._lock:
            return list(self._events)

    def wait_for(self, predicate: Callable[[Event], bool], *, timeout: float = 30.0
                 ) -> Event:
        """Block until an event matching ``predicate`` has been recorded; return it."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._lock:
            while True:
                for e in self._events[seen:]:
                    if predicate(e):
                        return e
                seen = len(self._events)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"recorder: no matching event within {timeout:g} s")
                self._lock.wait(left)

    @property
    def metrics_active(self) -> bool:
        return self._scraper is not None


def read_jsonl(path: str | Path) -> list[Event]:
    """Events back from a recorder's JSONL file (a torn last line is skipped)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
