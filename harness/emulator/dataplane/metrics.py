"""The autoscaler's Prometheus endpoint: the decider's gauges, rendered by ``prometheus_client``.

:class:`MetricsServer` serves ``GET /metrics`` on 127.0.0.1 (free port by default) from a
``CollectorRegistry`` of its own (``generate_latest``): one gauge family per name with
Knative 1.21's names and labels (``kn_revision_panic_mode{k8s_namespace_name=...,
kn_revision_name=...}``, ...), read at each scrape from any source with a ``gauges()``
method returning ``(name, labels, value)`` triples. The local cluster starts it only when
``config-observability`` says ``metrics-protocol: prometheus``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

Gauge = tuple[str, dict[str, str], float]


class GaugeSource(Protocol):
    def gauges(self) -> list[Gauge]: ...


class GaugeCollector:
    """A ``prometheus_client`` collector: the source's gauges at the time of each scrape,
    grouped by name (labels missing from a sample of the family are empty)."""

    def __init__(self, gauges: Callable[[], list[Gauge]]) -> None:
        self._gauges = gauges

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_name: dict[str, list[tuple[dict[str, str], float]]] = {}
        for name, labels, value in self._gauges():
            by_name.setdefault(name, []).append((labels, value))
        for name in sorted(by_name):
            keys = sorted({k for labels, _ in by_name[name] for k in labels})
            family = GaugeMetricFamily(name, f"Knative autoscaler gauge {name} (emulated)",
                                       labels=keys)
            for labels, value in by_name[name]:
                family.add_metric([labels.get(k, "") for k in keys], value)
            yield family


def registry_for(gauges: Callable[[], list[Gauge]]) -> CollectorRegistry:
    """A registry of its own (not the process-wide default) holding one GaugeCollector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GaugeCollector(gauges))
    return registry


def render(gauges: list[Gauge]) -> str:
    """Prometheus text exposition of ``gauges`` (what ``/metrics`` answers)."""
    return generate_latest(registry_for(lambda: gauges)).decode("utf-8")


class MetricsServer:
    """An aiohttp server for ``/metrics``; start and stop on the running loop."""

    def __init__(self, source: GaugeSource | Callable[[], list[Gauge]], *,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.source = source
        self.host = host
        self.port = port
        self.url = ""
        self.registry = registry_for(self._gauges)
        self._runner: web.AppRunner | None = None

    def _gauges(self) -> list[Gauge]:
        src = self.source
        return src() if callable(src) else src.gauges()

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.url = f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
