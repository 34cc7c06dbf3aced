"""The autoscaler's Prometheus endpoint: its samples, parsed, and a panic scraper.

:func:`parse` reads the Prometheus text exposition format into :class:`Sample` tuples
with ``prometheus_client``'s parser (the emulator renders its endpoint with
``prometheus_client`` too: :mod:`harness.emulator.dataplane.metrics`).
:func:`panic_gauges` picks the ``panic_mode`` gauge per revision (Knative <= 1.18 names
it ``autoscaler_panic_mode`` with ``namespace_name``/``revision_name`` labels; any name
ending in ``panic_mode`` and the ``k8s_namespace_name``/``kn_revision_name`` labels of
newer releases are accepted).
:class:`PanicScraper` polls an endpoint on a background thread, only when it answers, and
yields the ``(time, value)`` samples :func:`harness.observe.frames.panic_from_gauge`
takes. Nothing here sends a request to the inference service.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import NamedTuple

from prometheus_client.parser import text_string_to_metric_families


class Sample(NamedTuple):
    name: str
    labels: dict[str, str]
    value: float
    timestamp_ms: int | None = None


class MetricsParseError(ValueError):
    """Text that is not the Prometheus text format."""


def parse(text: str) -> list[Sample]:
    """Every sample in a Prometheus text exposition, read by ``prometheus_client``'s parser."""
    try:
        return [Sample(s.name, dict(s.labels), float(s.value),
                       None if s.timestamp is None else round(float(s.timestamp) * 1000))
                for family in text_string_to_metric_families(text) for s in family.samples]
    except ValueError as exc:
        raise MetricsParseError(f"not Prometheus text format: {exc}") from None


NAMESPACE_LABELS = ("namespace_name", "k8s_namespace_name", "namespace")
REVISION_LABELS = ("revision_name", "kn_revision_name", "revision")


def _label(labels: dict[str, str], names: Iterable[str]) -> str:
    for n in names:
        if n in labels:
            return labels[n]
    return ""


def panic_gauges(samples: Iterable[Sample], namespace: str | None = None
                 ) -> dict[tuple[str, str], float]:
    """(namespace, revision) -> panic-mode gauge value (1 panicking, 0 not)."""
    out: dict[tuple[str, str], float] = {}
    for s in samples:
        if not s.name.endswith("panic_mode"):
            continue
        ns = _label(s.labels, NAMESPACE_LABELS)
        if namespace is not None and ns != namespace:
            continue
        out[(ns, _label(s.labels, REVISION_LABELS))] = s.value
    return out


AUTOSCALER_PREFIXES = ("kn_revision_", "autoscaler_")


def autoscaler_families(samples: Iterable[Sample]) -> bool:
    """True if the samples hold Knative autoscaler families: the ``kn_revision_*`` names
    of 1.19+ (OpenTelemetry, ``metrics-protocol: prometheus``) or the ``autoscaler_*`` of
    older releases. Any other Prometheus endpoint is not the autoscaler's."""
    return any(s.name.startswith(AUTOSCALER_PREFIXES) for s in samples)


def scrape(url: str, timeout: float = 1.0) -> list[Sample] | None:
    """Samples from ``url``, or None if it does not answer (or is not Prometheus text)."""
    try:
        req = urllib.request.Request(url, headers={"Accept": "text/plain"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - http(s) only
            return parse(resp.read().decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None


def first_reachable(urls: Iterable[str], timeout: float = 1.0) -> str | None:
    """The first URL whose scrape parses, or None."""
    for url in urls:
        if scrape(url, timeout) is not None:
            return url
    return None


class PanicScraper:
    """Poll ``url`` every ``interval_s`` for one namespace's panic gauges.

    ``samples`` maps a revision name to its ``(time, value)`` list (``time.time()`` at
    receipt); ``failures`` counts scrapes that got no answer; ``autoscaler`` turns True
    once a scrape held Knative's autoscaler families (:func:`autoscaler_families`).
    """

    def __init__(self, url: str, namespace: str, *, interval_s: float = 1.0,
                 timeout_s: float = 1.0, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.namespace = namespace
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.clock = clock
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self.failures = 0
        self.autoscaler = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def scrape_once(self) -> bool:
        got = scrape(self.url, self.timeout_s)
        now = self.clock()
        if got is None:
            self.failures += 1
            return False
        with self._lock:
            self.autoscaler = self.autoscaler or autoscaler_families(got)
            for (_ns, rev), value in panic_gauges(got, self.namespace).items():
                self.samples.setdefault(rev, []).append((now, value))
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self.scrape_once()
            self._stop.wait(self.interval_s)

    def start(self) -> PanicScraper:
        self._thread = threading.Thread(target=self._run, daemon=True, name="panic-scraper")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout_s + 5)

    def series(self, revision: str | None = None) -> list[tuple[float, float]]:
        """(time, value) samples of one revision, or of every revision (max per time)."""
        with self._lock:
            if revision is not None:
                return list(self.samples.get(revision, []))
            merged: dict[float, float] = {}
            for pairs in self.samples.values():
                for t, v in pairs:
                    merged[t] = max(merged.get(t, 0.0), v)
            return sorted(merged.items())
