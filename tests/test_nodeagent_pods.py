"""The node agent's pod handling against a recording fake API: an image missing from the
table is kubelet's ErrImagePull (status and events naming the table), a pod on another
node is left alone, a deleted pod with no process is removed with grace 0 and its uid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from harness.nodeagent.network import Network
from harness.nodeagent.pods import PodAgent


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.calls.append((request.method, request.url.path, body))
        return httpx.Response(200, json={})


def _agent(rec: Recorder, tmp_path: Path) -> PodAgent:
    client = httpx.Client(transport=httpx.MockTransport(rec), base_url="https://api")
    return PodAgent(client, ["cpu-1"], network=Network("000000"), logs=tmp_path,
                    run_id="000000")


def _pod(image: str, node: str = "cpu-1", **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "n", "uid": "u-1", **meta},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": image}],
                     "initContainers": [{"name": "init", "image": "registry.k8s.io/pause:3.10"}]}}


def test_unknown_image_is_err_image_pull_naming_the_table(tmp_path: Path) -> None:
    rec = Recorder()
    _agent(rec, tmp_path).handle(_pod("example.invalid/app:1"))
    patch = next(b for m, p, b in rec.calls if m == "PATCH")
    status = patch["status"]
    waiting = status["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "ErrImagePull"
    assert waiting["message"].startswith('Failed to pull image "example.invalid/app:1"')
    assert "fixtures/nodeagent/images.yaml" in waiting["message"]
    assert status["phase"] == "Pending"
    assert status["initContainerStatuses"][0]["state"]["waiting"]["reason"] == \
        "PodInitializing"
    events = [b for m, p, b in rec.calls if p.endswith("/events")]
    assert [e["reason"] for e in events] == ["Failed", "Failed"]
    assert events[1]["message"] == "Error: ErrImagePull"
    assert events[0]["source"] == {"component": "kubelet", "host": "cpu-1"}


def test_pods_of_other_nodes_are_left_alone(tmp_path: Path) -> None:
    rec = Recorder()
    _agent(rec, tmp_path).handle(_pod("example.invalid/app:1", node="elsewhere"))
    assert rec.calls == []


def test_deleted_pod_without_processes_is_removed_with_grace_zero(tmp_path: Path) -> None:
    rec = Recorder()
    _agent(rec, tmp_path).handle(_pod("example.invalid/app:1",
                                      deletionTimestamp="2026-01-01T00:00:00Z"))
    assert rec.calls == [("DELETE", "/api/v1/namespaces/n/pods/p",
                          {"gracePeriodSeconds": 0, "preconditions": {"uid": "u-1"}})]
