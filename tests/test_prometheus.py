"""The autoscaler's Prometheus text: parsed with ``prometheus_client``'s parser
(:mod:`harness.observe.prometheus`), rendered by the emulator with ``prometheus_client``
(:mod:`harness.emulator.dataplane.metrics`), and the two agree over real HTTP."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Iterator

import pytest

from harness.emulator.dataplane.metrics import MetricsServer, render
from harness.observe.prometheus import (
    MetricsParseError,
    PanicScraper,
    first_reachable,
    panic_gauges,
    parse,
    scrape,
)


def test_prometheus_text_parses_labels_escapes_and_specials() -> None:
    text = ('# HELP autoscaler_panic_mode 1 if panicking\n'
            '# TYPE autoscaler_panic_mode gauge\n'
            'autoscaler_panic_mode{namespace_name="ns",revision_name="r-1"} 1\n'
            'kn_autoscaler_panic_mode{k8s_namespace_name="ns",kn_revision_name="r-2",} 0 17\n'
            'odd{msg="a \\"q\\" \\\\ b\\nc"} NaN\n'
            'up +Inf\n')
    samples = parse(text)
    assert samples[1].timestamp_ms == 17
    assert samples[2].labels["msg"] == 'a "q" \\ b\nc' and math.isnan(samples[2].value)
    assert samples[3].value == math.inf
    assert panic_gauges(samples, "ns") == {("ns", "r-1"): 1.0, ("ns", "r-2"): 0.0}


@pytest.mark.parametrize("text", ['broken{a="1" 2\n', "x abc\n", 'x{a=b} 1\n'])
def test_text_that_is_not_prometheus_is_one_error(text: str) -> None:
    with pytest.raises(MetricsParseError, match="not Prometheus text format"):
        parse(text)


NS, REV = "k8s_namespace_name", "kn_revision_name"
GAUGES = [
    ("kn_revision_pods_desired", {NS: "ns", REV: "r-1"}, 3.0),
    ("kn_revision_pods_desired", {NS: "other", REV: "r-1"}, 0.0),
    ("kn_revision_panic_mode", {NS: "ns", REV: "r-1"}, 1.0),
    ("kn_revision_panic_mode", {NS: "ns", REV: 'odd "r"\\\n'}, 0.0),
    ("kn_revision_concurrency_stable", {NS: "ns"}, 2.5),
]


def test_the_emulators_rendering_parses_back_to_the_same_gauges() -> None:
    text = render(GAUGES)
    assert "# TYPE kn_revision_panic_mode gauge" in text
    got = {(s.name, tuple(sorted(s.labels.items())), s.value) for s in parse(text)}
    assert got == {(n, tuple(sorted(labels.items())), v) for n, labels, v in GAUGES}
    assert panic_gauges(parse(text), "ns") == {("ns", "r-1"): 1.0, ("ns", 'odd "r"\\\n'): 0.0}


@pytest.fixture
def served() -> Iterator[tuple[str, list]]:
    """A MetricsServer on its own loop thread; the list is what ``gauges()`` returns."""
    gauges: list = list(GAUGES)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = MetricsServer(lambda: list(gauges))
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield server.url + "/metrics", gauges
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_the_endpoint_over_http_is_read_at_each_scrape(served: tuple[str, list]) -> None:
    url, gauges = served
    assert first_reachable(["http://127.0.0.1:9/metrics", url]) == url
    samples = scrape(url)
    assert samples is not None and len(samples) == len(GAUGES)
    scraper = PanicScraper(url, "ns", clock=iter(range(100)).__next__)
    assert scraper.scrape_once()
    gauges[2] = ("kn_revision_panic_mode", {NS: "ns", REV: "r-1"}, 0.0)
    assert scraper.scrape_once()
    assert scraper.series("r-1") == [(0, 1.0), (1, 0.0)]
    assert scraper.failures == 0 and scraper.autoscaler
