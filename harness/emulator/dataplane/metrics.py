"""The autoscaler's Prometheus endpoint: the decider's and reconciler's gauges as text.

:class:`MetricsServer` serves ``GET /metrics`` on 127.0.0.1 (free port by default) in the
Prometheus text format 0.0.4, one gauge family per name with Knative 1.21's names and
labels (``kn_revision_panic_mode{k8s_namespace_name=..., kn_revision_name=...}``, ...), from
any source with a ``gauges()`` method returning ``(name, labels, value)`` triples. The
local cluster starts it only when ``config-observability`` says
``metrics-protocol: prometheus``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from aiohttp import web

Gauge = tuple[str, dict[str, str], float]


class GaugeSource(Protocol):
    def gauges(self) -> list[Gauge]: ...


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(gauges: list[Gauge]) -> str:
    """Prometheus text exposition of ``gauges`` (grouped by name, one TYPE line each)."""
    by_name: dict[str, list[tuple[dict[str, str], float]]] = {}
    for name, labels, value in gauges:
        by_name.setdefault(name, []).append((labels, value))
    lines: list[str] = []
    for name in sorted(by_name):
        lines.append(f"# TYPE {name} gauge")
        for labels, value in by_name[name]:
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{text}}} {value:g}" if text else f"{name} {value:g}")
    return "\n".join(lines) + "\n"


class MetricsServer:
    """An aiohttp server for ``/metrics``; start and stop on the running loop."""

    def __init__(self, source: GaugeSource | Callable[[], list[Gauge]], *,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.source = source
        self.host = host
        self.port = port
        self.url = ""
        self._runner: web.AppRunner | None = None

    def _gauges(self) -> list[Gauge]:
        src = self.source
        return src() if callable(src) else src.gauges()

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=render(self._gauges()),
                            content_type="text/plain", charset="utf-8",
                            headers={"X-Prometheus-Format": "0.0.4"})

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
