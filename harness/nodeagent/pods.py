"""The pods the real scheduler binds to the node agent's nodes: their status, their events
and their deletion, as a kubelet reports them.

One thread lists and watches every scheduled pod (``fieldSelector=spec.nodeName!=``) and
keeps those on this agent's nodes. A pod whose image (init containers first) is not in the
image table (:mod:`harness.nodeagent.images`) gets kubelet's ``ErrImagePull`` waiting
state, a ``Failed`` Warning event from ``kubelet`` on its node, and stays Pending. Any other
pod runs as processes in its own network namespace (:mod:`harness.nodeagent.runtime`). A
pod being deleted (``deletionTimestamp``) has its processes stopped within its grace
period, then is removed for good with grace 0 and a uid precondition, which is what a
kubelet does once its containers are gone; without that the API server keeps bound pods
Terminating forever.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

from harness.nodeagent.images import Image, ImageNotFound, load_table, resolve
from harness.nodeagent.network import Network
from harness.nodeagent.runtime import PodRunner
from harness.objects import format_time

SCHEDULED = "spec.nodeName!="


def _cond(type_: str, status: bool, now: str, reason: str | None = None,
          message: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"type": type_, "status": "True" if status else "False",
                         "lastProbeTime": None, "lastTransitionTime": now}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def image_pull_failed_status(pod: dict[str, Any], container: str, message: str,
                             host_ip: str) -> dict[str, Any]:
    """Kubelet's status of a pod whose container image cannot be pulled."""
    now = format_time()
    spec = pod["spec"]
    inits = [c["name"] for c in spec.get("initContainers", [])]
    names = [c["name"] for c in spec["containers"]]
    failing_init = container in inits

    def status_of(c: dict[str, Any]) -> dict[str, Any]:
        reason = "ErrImagePull" if c["name"] == container else "PodInitializing"
        waiting: dict[str, Any] = {"reason": reason}
        if c["name"] == container:
            waiting["message"] = message
        return {"name": c["name"], "image": c["image"], "imageID": "", "ready": False,
                "restartCount": 0, "started": False, "state": {"waiting": waiting},
                "lastState": {}}

    unready = ", ".join(names)
    status: dict[str, Any] = {
        "phase": "Pending", "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "startTime": pod.get("status", {}).get("startTime") or now,
        "conditions": [
            _cond("PodReadyToStartContainers", True, now),
            _cond("Initialized", not failing_init, now,
                  *(("ContainersNotInitialized",
                     f"containers with incomplete status: [{', '.join(inits)}]")
                    if failing_init else ())),
            _cond("Ready", False, now, "ContainersNotReady",
                  f"containers with unready status: [{unready}]"),
            _cond("ContainersReady", False, now, "ContainersNotReady",
                  f"containers with unready status: [{unready}]"),
        ],
        "containerStatuses": [status_of(c) for c in spec["containers"]],
    }
    if inits:
        status["initContainerStatuses"] = [status_of(c) for c in spec["initContainers"]]
    return status


class PodAgent:
    """Watches the pods bound to ``nodes`` and reports them (see the module docstring)."""

    def __init__(self, client: httpx.Client, nodes: Iterable[str], *, network: Network,
                 logs: Path, run_id: str, host_ip: str = "127.0.0.1",
                 upstream_bin: Path | None = None) -> None:
        self.client = client
        self.nodes = set(nodes)
        self.host_ip = host_ip
        self.network = network
        self.logs = logs
        self.run_id = run_id
        self.runners: dict[str, PodRunner] = {}
        self._lock = threading.Lock()
        self.table = load_table(upstream_bin=upstream_bin)  # the upstream build's images
        self.reported: dict[str, str] = {}   # pod uid -> what was reported
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._run, name="node-agent-pods", daemon=True)

    def start(self) -> PodAgent:
        self._thread.start()
        return self

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop watching, stop every pod's processes (within ``grace_s``)."""
        self._stop.set()
        response = self._response
        if response is not None:
            try:
                response.close()
            except Exception:  # noqa: BLE001 - closing under the reader's feet
                pass
        self._thread.join(timeout=5)
        with self._lock:
            runners = list(self.runners.values())
        for runner in runners:
            runner.on_gone = lambda uid: None
            runner.terminate(grace_s)
        for runner in runners:
            runner.join(grace_s + 10)

    def runner(self, namespace: str, name: str) -> PodRunner | None:
        with self._lock:
            return next((r for r in self.runners.values()
                         if (r.ns, r.name) == (namespace, name)), None)

    def log_source(self, namespace: str, pod: str, container: str,
                   previous: bool = False) -> tuple[Path, Callable[[], bool]] | None:
        """The log server's lookup (:data:`harness.nodeagent.logs.LogLookup`)."""
        runner = self.runner(namespace, pod)
        return runner.log_source(container, previous) if runner is not None else None

    # ------------------------------------------------------------ loop

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rv = self._list()
                self._watch(rv)
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                if self._stop.is_set():
                    return
                self.errors = [*self.errors[-20:], f"watch: {exc!r}"]
                self._stop.wait(1.0)

    def _list(self) -> str:
        r = self.client.get("/api/v1/pods", params={"fieldSelector": SCHEDULED})
        r.raise_for_status()
        body = r.json()
        for pod in body["items"]:
            self.handle(pod)
        return str(body["metadata"]["resourceVersion"])

    def _watch(self, rv: str) -> None:
        params = {"fieldSelector": SCHEDULED, "watch": "1", "resourceVersion": rv,
                  "allowWatchBookmarks": "true", "timeoutSeconds": "300"}
        timeout = httpx.Timeout(10.0, read=330.0)
        with self.client.stream("GET", "/api/v1/pods", params=params,
                                timeout=timeout) as response:
            self._response = response
            response.raise_for_status()
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if not line:
                    continue
                event = json.loads(line)
                if event["type"] == "ERROR":
                    return  # e.g. 410 Gone: list again
                if event["type"] in ("ADDED", "MODIFIED"):
                    self.handle(event["object"])
                elif event["type"] == "DELETED":
                    self.reported.pop(event["object"]["metadata"]["uid"], None)

    # ------------------------------------------------------------ one pod

    def handle(self, pod: dict[str, Any]) -> None:
        if pod["spec"].get("nodeName") not in self.nodes:
            return
        meta = pod["metadata"]
        try:
            if meta.get("deletionTimestamp"):
                self._finish_deletion(pod)
                return
            if meta["uid"] in self.reported:
                return
            self._report(pod)
        except httpx.HTTPError as exc:
            self.errors = [*self.errors[-20:], f"{meta['namespace']}/{meta['name']}: {exc}"]

    def _images(self, pod: dict[str, Any]) -> tuple[dict[str, Image], tuple[str, str] | None]:
        """Each container's table entry, or the first (container, message) not found."""
        found: dict[str, Image] = {}
        for c in [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]:
            try:
                found[c["name"]] = resolve(self.table, c["image"])
            except ImageNotFound as exc:
                return found, (c["name"], str(exc))
        return found, None

    def _report(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return  # finished before this agent started: nothing to run again
        images, missing = self._images(pod)
        if missing is None:
            with self._lock:
                if meta["uid"] in self.runners:
                    return
                self.runners[meta["uid"]] = PodRunner(
                    pod, images, client=self.client, network=self.network, logs=self.logs,
                    run_id=self.run_id, host_ip=self.host_ip, on_gone=self._gone)
            self.runners[meta["uid"]].start()
            self.reported[meta["uid"]] = "running"
            return
        container, message = missing
        status = image_pull_failed_status(pod, container, message, self.host_ip)
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status"
        r = self.client.patch(path, json={"metadata": {"uid": meta["uid"]}, "status": status},
                              headers={"Content-Type": "application/strategic-merge-patch+json"})
        r.raise_for_status()
        self._event(pod, container, "Failed", message)
        self._event(pod, container, "Failed", "Error: ErrImagePull")
        self.reported[meta["uid"]] = "ErrImagePull"

    def _event(self, pod: dict[str, Any], container: str, reason: str, message: str) -> None:
        meta = pod["metadata"]
        now = format_time()
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta["uid"],
                               "fieldPath": f"spec.containers{{{container}}}"},
            "reason": reason, "message": message, "type": "Warning",
            "source": {"component": "kubelet", "host": pod["spec"]["nodeName"]},
            "reportingComponent": "kubelet", "reportingInstance": pod["spec"]["nodeName"],
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        self.client.post(f"/api/v1/namespaces/{meta['namespace']}/events", json=body)

    def _finish_deletion(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        with self._lock:
            runner = self.runners.get(meta["uid"])
        if runner is not None:  # its processes stop first; _gone deletes the pod
            runner.pod["metadata"]["deletionTimestamp"] = meta["deletionTimestamp"]
            runner.terminate(float(meta.get("deletionGracePeriodSeconds") or 0))
            return
        self._delete(meta)

    def _gone(self, uid: str) -> None:
        with self._lock:
            runner = self.runners.pop(uid, None)
        if runner is not None and runner.pod["metadata"].get("deletionTimestamp"):
            try:
                self._delete(runner.pod["metadata"])
            except httpx.HTTPError as exc:
                self.errors = [*self.errors[-20:], f"{runner.key}: {exc}"]

    def _delete(self, meta: dict[str, Any]) -> None:
        r = self.client.request(
            "DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
            json={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}})
        if r.status_code not in (200, 404, 409):
            r.raise_for_status()
        self.reported.pop(meta["uid"], None)

