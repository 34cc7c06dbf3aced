"""The recorder: events arrive stamped with the local receive time and complete (every
object's every version, across dropped watches and a compaction), the JSONL file holds
the same events, the frames build from them, and panic comes from the autoscaler's
gauge when its endpoint answers (and only then). The Prometheus text itself:
``tests/test_prometheus.py``."""

from __future__ import annotations

import http.server
import json
import pickle
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.emulator import Emulator
from harness.kube.client import Kube
from harness.observe.recorder import Recorder, read_jsonl

REV = "sk-predictor-00001"


def pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"serving.knative.dev/revision": REV}},
            "spec": {"containers": [{"name": "kserve-container", "image": "m"}]}}


def set_pod_status(emulator: Emulator, ns: str, name: str, ready: bool) -> None:
    obj = emulator.store.get("pods", name, namespace=ns)
    status = "True" if ready else "False"
    obj["status"] = {"phase": "Running" if ready else "Pending", "conditions": [
        {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": status}]}
    emulator.store.update("pods", obj, namespace=ns, subresource="status")


def test_events_arrive_stamped_and_complete(kube: Kube, emulator: Emulator, namespace: str,
                                            tmp_path: Path) -> None:
    store = emulator.store
    store.create("pods", pod("pre-existing"), namespace=namespace)
    jsonl = tmp_path / "events.jsonl"
    with Recorder(kube, namespace, jsonl=jsonl) as rec:
        t_start = time.time()
        for i in range(6):
            store.create("pods", pod(f"p{i}"), namespace=namespace)
            if i == 2:
                emulator.drop_watches()
            set_pod_status(emulator, namespace, f"p{i}", ready=True)
        store.create("autoscaling.internal.knative.dev/podautoscalers",
                     {"metadata": {"name": REV}, "spec": {}}, namespace=namespace)
        store.create("serving.knative.dev/revisions", {"metadata": {"name": REV}},
                     namespace=namespace)
        store.create("events", {"metadata": {"name": "ev1"}, "reason": "Scheduled",
                                "involvedObject": {"kind": "Pod", "name": "p0"},
                                "message": "assigned", "type": "Normal"},
                     namespace=namespace)
        # what was never seen before a compaction cannot come back (Kubernetes semantics):
        # let the recorder see p5 ready first, then compact and delete it
        rec.wait_for(lambda e: e["object"]["metadata"]["name"] == "p5"
                     and e["object"].get("status", {}).get("phase") == "Running", timeout=10)
        emulator.compact()
        store.delete("pods", "p5", namespace=namespace)
        want = {o["metadata"]["name"]: o["metadata"]["resourceVersion"]
                for o in store.list("pods", namespace=namespace)["items"]}
        rec.wait_for(lambda e: e["type"] == "DELETED"
                     and e["object"]["metadata"]["name"] == "p5", timeout=10)
        rec.wait_for(lambda e: e["kind"] == "Event", timeout=10)
        t_end = time.time()
    recording = rec.stop()
    events = recording.events
    assert recording.stats["pods"]["lists"] >= 2  # the compaction forced a re-list
    # stamped: local receive time, in arrival order, within the recording
    stamps = [e["received"] for e in events]
    assert stamps == sorted(stamps)
    assert recording.start <= stamps[0] and stamps[-1] <= recording.end
    assert all(t_start - 1 <= s <= t_end + 1 for s in stamps[1:])
    # complete: every kind, every pod's final version, the delete
    assert {e["kind"] for e in events} == {"Pod", "PodAutoscaler", "Revision", "Event"}
    last: dict[str, str] = {}
    for e in recording.of_kind("Pod"):
        if e["type"] != "DELETED":
            last[e["object"]["metadata"]["name"]] = e["object"]["metadata"]["resourceVersion"]
    assert {k: last[k] for k in want} == want
    ready_seen = {e["object"]["metadata"]["name"] for e in recording.of_kind("Pod")
                  if any(c["type"] == "Ready" and c["status"] == "True"
                         for c in (e["object"].get("status") or {}).get("conditions", []))}
    assert ready_seen == {f"p{i}" for i in range(6)}
    # the file has the same events
    assert sorted(read_jsonl(jsonl), key=lambda e: e["received"]) == events
    # and the frames build from them
    frames = recording.frames(revision=REV)
    assert set(frames.pods["pod"]) == {"pre-existing"} | {f"p{i}" for i in range(6)}
    assert frames.ready["ready"].iloc[-1] == 5
    assert list(frames.scheduling["reason"]) == ["Scheduled"]
    assert frames.panic.empty and recording.metrics_url is None


@pytest.fixture
def metrics_server() -> Iterator[tuple[str, list[str]]]:
    body = ["# TYPE autoscaler_panic_mode gauge\n"]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            data = "".join(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/metrics", body
    srv.shutdown()
    srv.server_close()


def test_panic_comes_from_the_gauge_when_the_endpoint_answers(
        kube: Kube, namespace: str, metrics_server: tuple[str, list[str]]) -> None:
    url, body = metrics_server
    line = ('autoscaler_panic_mode{{namespace_name="{ns}",revision_name="{rev}",'
            'configuration_name="sk"}} {v}\n')
    body.append(line.format(ns=namespace, rev=REV, v=0))
    body.append(line.format(ns="other-ns", rev=REV, v=1))  # another namespace: ignored
    with Recorder(kube, namespace, kinds=("pods",), metrics_url=url,
                  metrics_interval_s=0.05) as rec:
        assert rec.metrics_active
        time.sleep(0.2)
        body[1] = line.format(ns=namespace, rev=REV, v=1)
        time.sleep(0.2)
        body[1] = line.format(ns=namespace, rev=REV, v=0)
        time.sleep(0.2)
    recording = rec.stop()
    assert recording.metrics_url == url
    panic = recording.frames(revision=REV).panic
    assert list(panic["panic"]) == [False, True, False]
    assert not panic["inferred"].any() and set(panic["source"]) == {"metrics"}


def test_an_unreachable_endpoint_is_not_used(kube: Kube, namespace: str) -> None:
    with Recorder(kube, namespace, kinds=("pods",),
                  metrics_url="http://127.0.0.1:9/metrics") as rec:
        assert not rec.metrics_active
    assert rec.stop().panic_samples() is None


def test_a_prometheus_endpoint_that_is_not_the_autoscalers_is_not_taken(
        kube: Kube, namespace: str, metrics_server: tuple[str, list[str]]) -> None:
    """Any Prometheus endpoint on the autoscaler's port (a Prometheus server on 9090, an
    exporter) used to be taken for the autoscaler, and panic then read as "never". Only
    one serving Knative's autoscaler families counts: otherwise panic is inferred."""
    url, body = metrics_server
    body[:] = ["# TYPE go_goroutines gauge\n", "go_goroutines 12\n",
               'prometheus_ready{instance="x"} 1\n']
    with Recorder(kube, namespace, kinds=("pods",), metrics_url=url,
                  metrics_interval_s=0.05) as rec:
        time.sleep(0.3)
    recording = rec.stop()
    assert recording.metrics_url is None and recording.panic_samples() is None
    # Knative 1.21's name (OpenTelemetry, metrics-protocol: prometheus) is accepted
    body[:] = [f'kn_revision_panic_mode{{k8s_namespace_name="{namespace}",'
               f'kn_revision_name="{REV}"}} 1\n']
    with Recorder(kube, namespace, kinds=("pods",), metrics_url=url,
                  metrics_interval_s=0.05) as rec:
        time.sleep(0.3)
    recording = rec.stop()
    assert recording.metrics_url == url
    assert {v for _, v in recording.panic_samples(REV)} == {1.0}


def test_the_run_summary_says_once_that_panic_was_inferred(tmp_path: Path) -> None:
    from harness.observe.frames import build_frames
    from harness.report.bundle import Case
    from harness.suite.session_end import PARTS, finish_report

    parts = tmp_path / PARTS
    parts.mkdir()
    for i, how in enumerate(("inferred (metrics-protocol none)", "scraped",
                             "inferred (metrics-protocol none)")):
        case = Case(f"c{i}", build_frames([]), [], meta={"panic_gauge": how})
        (parts / f"c{i}.pkl").write_bytes(pickle.dumps(case))
    notes: list[str] = []
    finish_report(tmp_path, run_id="r", meta={"profile": "fast"}, notes=notes)
    line = ("panic gauge unavailable (metrics-protocol none): panic inferred from the "
            "trajectory")
    assert notes == [f"harness: {line}"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["meta"]["panic_gauge"] == line
    # every case with the gauge: no line
    for i in range(2):
        case = Case(f"c{i}", build_frames([]), [], meta={"panic_gauge": "scraped"})
        parts.mkdir(exist_ok=True)
        (parts / f"c{i}.pkl").write_bytes(pickle.dumps(case))
    notes = []
    finish_report(tmp_path, run_id="r", meta={"profile": "fast"}, notes=notes)
    assert notes == []
