"""The node agent's volumes, hooks and previous logs on the live upstream cluster.

A pod reads every volume kind at its mountPath (configMap with items, mode and subPath,
secret, emptyDir written by an init container, ``medium: Memory``, downwardAPI, the
ServiceAccount admission plugin's ``kube-api-access-*`` projected volume and a projected
token with its own audience); the tokens pass the API server's TokenReview bound to the
pod; no mountPath appears on the host and the pod's volume folders go with the pod. A
missing ConfigMap is kubelet's ``FailedMount`` until it exists. A liveness kill runs the
exec preStop hook inside the container before SIGTERM, and ``kubectl logs --previous``
shows what that instance printed (kubelet's words before there is one); deleting the pod
runs an httpGet preStop hook the test counts."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from upstream_run import until as _until

PAUSE = "registry.k8s.io/pause:3.10"
HOST_PATHS = ["/var/run/secrets/kubernetes.io", "/var/run/secrets/tokens", "/mnt/models",
              "/tmp/k8s-webhook-server", "/cache", "/etc/podinfo", "/etc/app", "/etc/app.yaml"]



@pytest.fixture
def ns(upstream: Any) -> Iterator[str]:
    name = f"hx-vol-{uuid.uuid4().hex[:8]}"
    upstream.kubectl("create", "namespace", name)
    yield name
    upstream.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


def _apply(upstream: Any, ns: str, *docs: dict[str, Any]) -> None:
    upstream.kubectl("apply", "-n", ns, "-f", "-",
                     input="---\n".join(yaml.safe_dump(d) for d in docs))


def _phase(upstream: Any, ns: str, name: str) -> str:
    return str(upstream.json("get", "pod", "-n", ns, name).get("status", {}).get("phase"))


def _review(upstream: Any, token: str, audiences: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"token": token}
    if audiences:
        spec["audiences"] = audiences
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
    out = upstream.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(body))
    return dict(json.loads(out.stdout)["status"])


READER = r"""
d=/var/run/secrets/kubernetes.io/serviceaccount
echo "TOKEN=$(cat $d/token)"
echo "NS=$(cat $d/namespace)"
echo "CA=$(base64 -w0 $d/ca.crt)"
echo "AUD=$(cat /var/run/secrets/tokens/harness)"
echo "MODEL=$(cat /mnt/models/model.txt)"
echo "CACHEFS=$(stat -f -c %T /cache)"
echo "APP=$(cat /etc/app/conf/app.yaml)"
echo "APPMODE=$(stat -L -c %a /etc/app/conf/app.yaml)"
echo "SUB=$(cat /etc/app.yaml)"
echo "SECRET=$(cat /tmp/k8s-webhook-server/serving-certs/password)"
echo "SECRETMODE=$(stat -L -c %a /tmp/k8s-webhook-server/serving-certs/password)"
echo "LABELS=$(tr '\n' ';' < /etc/podinfo/labels)"
echo "MEM=$(cat /etc/podinfo/mem)"
echo "DATA=$(readlink /etc/app/..data)"
touch /etc/app/conf/x 2>/dev/null && echo RO=no || echo RO=yes
"""


def test_pod_reads_every_volume_kind_at_its_mount_path(upstream: Any, ns: str) -> None:
    before = {p for p in HOST_PATHS if os.path.lexists(p)}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-config"},
              "data": {"app.yaml": "k: v", "other": "x"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-secret"},
              "stringData": {"password": "s3cret"}}
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "reader", "labels": {"app": "reader", "tier": "test"}},
           "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 2,
                    "initContainers": [{
                        "name": "init", "image": PAUSE,
                        "command": ["sh", "-c", "echo -n from-init > /mnt/models/model.txt"],
                        "volumeMounts": [{"name": "models", "mountPath": "/mnt/models"}]}],
                    "containers": [{
                        "name": "main", "image": PAUSE, "command": ["sh", "-c", READER],
                        "resources": {"requests": {"cpu": "100m", "memory": "32Mi"},
                                      "limits": {"memory": "64Mi"}},
                        "volumeMounts": [
                            {"name": "models", "mountPath": "/mnt/models"},
                            {"name": "cache", "mountPath": "/cache"},
                            {"name": "cfg", "mountPath": "/etc/app", "readOnly": True},
                            {"name": "cfg", "mountPath": "/etc/app.yaml",
                             "subPath": "conf/app.yaml"},
                            {"name": "certs", "mountPath": "/tmp/k8s-webhook-server/serving-certs",
                             "readOnly": True},
                            {"name": "info", "mountPath": "/etc/podinfo"},
                            {"name": "aud", "mountPath": "/var/run/secrets/tokens"}]}],
                    "volumes": [
                        {"name": "models", "emptyDir": {}},
                        {"name": "cache", "emptyDir": {"medium": "Memory"}},
                        {"name": "cfg", "configMap": {"name": "app-config", "items": [
                            {"key": "app.yaml", "path": "conf/app.yaml", "mode": 0o600}]}},
                        {"name": "certs", "secret": {"secretName": "app-secret",
                                                     "defaultMode": 0o400}},
                        {"name": "info", "downwardAPI": {"items": [
                            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                            {"path": "mem", "resourceFieldRef": {
                                "containerName": "main", "resource": "limits.memory",
                                "divisor": "1Mi"}}]}},
                        {"name": "aud", "projected": {"sources": [{"serviceAccountToken": {
                            "audience": "harness-test", "expirationSeconds": 600,
                            "path": "harness"}}]}}]}}
    _apply(upstream, ns, config, secret, pod)
    # the ServiceAccount admission plugin added the kube-api-access volume
    live = upstream.json("get", "pod", "-n", ns, "reader")
    assert any(v["name"].startswith("kube-api-access-") and "projected" in v
               for v in live["spec"]["volumes"])
    _until("the reader pod to finish", lambda: _phase(upstream, ns, "reader") in
           ("Succeeded", "Failed"), timeout=90)
    log = upstream.kubectl("logs", "-n", ns, "reader").stdout
    assert _phase(upstream, ns, "reader") == "Succeeded", log
    out = dict(line.split("=", 1) for line in log.splitlines() if "=" in line)
    assert out["NS"] == ns
    assert out["MODEL"] == "from-init"
    assert out["CACHEFS"] == "tmpfs"
    assert out["APP"] == "k: v" and out["APPMODE"] == "600" and out["SUB"] == "k: v"
    assert out["SECRET"] == "s3cret" and out["SECRETMODE"] == "400"
    assert out["LABELS"] == 'app="reader";tier="test"'
    assert out["MEM"] == "64"
    assert out["DATA"].startswith("..20") and out["RO"] == "yes"
    import base64

    root_ca = upstream.json("get", "configmap", "-n", ns, "kube-root-ca.crt")["data"]["ca.crt"]
    assert base64.b64decode(out["CA"]).decode() == root_ca
    # the token is the API server's, for this ServiceAccount, bound to this pod
    review = _review(upstream, out["TOKEN"])
    assert review.get("authenticated") is True, review
    assert review["user"]["username"] == f"system:serviceaccount:{ns}:default"
    assert review["user"]["extra"]["authentication.kubernetes.io/pod-name"] == ["reader"]
    assert review["user"]["extra"]["authentication.kubernetes.io/pod-uid"] == \
        [live["metadata"]["uid"]]
    aud = _review(upstream, out["AUD"], ["harness-test"])
    assert aud.get("authenticated") is True and aud["audiences"] == ["harness-test"]
    assert not _review(upstream, out["TOKEN"], ["harness-test"]).get("authenticated")
    # nothing appeared on the host at a mountPath; the volumes go with the pod
    assert {p for p in HOST_PATHS if os.path.lexists(p)} == before
    run_dir = upstream.kubeconfig.parent / f"upstream-{upstream.state['run_id']}"
    volumes = run_dir / "pods" / ns / f"reader_{live['metadata']['uid']}" / "volumes"
    # the pod ran to its end (restartPolicy Never): its volumes are torn down then, as
    # kubelet's volume manager does for a terminated pod; its logs stay until it is deleted
    _until("the finished pod's volumes removed", lambda: not volumes.exists(), timeout=20)
    upstream.kubectl("delete", "pod", "-n", ns, "reader", "--timeout=60s", timeout=90)
    assert not list(Path("/dev/shm").glob(f"hxm{upstream.state['run_id']}-"
                                          f"{live['metadata']['uid']}-*"))


def test_missing_config_map_is_failed_mount_until_it_exists(upstream: Any, ns: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "waiting"},
           "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": PAUSE,
                                    "command": ["cat", "/etc/late/key"],
                                    "volumeMounts": [{"name": "late",
                                                      "mountPath": "/etc/late"}]}],
                    "volumes": [{"name": "late", "configMap": {"name": "late"}}]}}
    _apply(upstream, ns, pod)

    def failed_mount() -> list[dict[str, Any]]:
        return [e for e in upstream.json("get", "events", "-n", ns, "--field-selector",
                                         "reason=FailedMount")["items"]
                if e["involvedObject"]["name"] == "waiting"]
    event = _until("a FailedMount event", failed_mount)[0]
    assert event["message"] == \
        'MountVolume.SetUp failed for volume "late" : configmaps "late" not found'
    assert event["source"]["component"] == "kubelet" and event["type"] == "Warning"
    assert _phase(upstream, ns, "waiting") == "Pending"
    _apply(upstream, ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"},
                          "data": {"key": "arrived"}})
    _until("the pod to run once the ConfigMap exists",
           lambda: _phase(upstream, ns, "waiting") == "Succeeded", timeout=60)
    assert upstream.kubectl("logs", "-n", ns, "waiting").stdout == "arrived"


class _Hooks(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, float]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        _Hooks.seen.append((self.path, self.headers.get("User-Agent", ""), time.monotonic()))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


HOOKED = r"""
rm -f /data/kill
trap 'echo "TERM after preStop: $(cat /data/prestop 2>/dev/null || echo none)"; exit 0' TERM
echo "instance started"
if [ ! -e /data/once ]; then touch /data/once; (sleep 2; touch /data/kill) & fi
while :; do sleep 0.2; done
"""


def test_prestop_hooks_and_previous_logs(upstream: Any, ns: str) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hooks.seen = []
    try:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hooked"},
               "spec": {"terminationGracePeriodSeconds": 10, "containers": [
                   {"name": "main", "image": PAUSE, "command": ["sh", "-c", HOOKED],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    "livenessProbe": {"exec": {"command": ["sh", "-c", "test ! -e /data/kill"]},
                                      "initialDelaySeconds": 1, "periodSeconds": 1,
                                      "failureThreshold": 1},
                    "lifecycle": {"preStop": {"exec": {"command": [
                        "sh", "-c", "echo prestop-ran > /data/prestop"]}}}},
                   {"name": "side", "image": PAUSE,
                    "lifecycle": {"preStop": {"httpGet": {
                        "host": "127.0.0.1", "port": server.server_address[1],
                        "path": "/prestop/side"}}}}],
                   "volumes": [{"name": "data", "emptyDir": {}}]}}
        _apply(upstream, ns, pod)
        _until("hooked running", lambda: _phase(upstream, ns, "hooked") == "Running")
        # no earlier instance yet: kubelet's words through the API server
        proc = upstream.kubectl("logs", "-n", ns, "hooked", "-c", "main", "--previous",
                                check=False)
        assert proc.returncode != 0
        assert 'previous terminated container "main" in pod "hooked" not found' in proc.stderr
        # the liveness probe fails: preStop (inside the container: it sees /data) then TERM

        def restarted() -> bool:
            statuses = upstream.json("get", "pod", "-n", ns, "hooked")["status"].get(
                "containerStatuses") or []
            main = next((s for s in statuses if s["name"] == "main"), {})
            return main.get("restartCount") == 1 and "running" in main.get("state", {})
        _until("main restarted after its liveness kill", restarted, timeout=60)
        previous = upstream.kubectl("logs", "-n", ns, "hooked", "-c", "main",
                                    "--previous").stdout
        # (sh may also report its killed foreground sleep: the process group gets TERM)
        lines = previous.splitlines()
        assert lines[0] == "instance started", previous
        assert lines[-1] == "TERM after preStop: prestop-ran", previous
        current = upstream.kubectl("logs", "-n", ns, "hooked", "-c", "main").stdout
        assert current == "instance started\n"
        events = upstream.json("get", "events", "-n", ns)["items"]
        assert any(e["reason"] == "Killing" and "failed liveness probe" in e["message"]
                   for e in events)
        assert _Hooks.seen == []
        # deletion: the side container's httpGet preStop reaches the test's server
        asked = time.monotonic()
        upstream.kubectl("delete", "pod", "-n", ns, "hooked", "--timeout=60s", timeout=90)
        assert [(p, ua) for p, ua, _t in _Hooks.seen] == [("/prestop/side", "kube-lifecycle/1.34")]
        assert _Hooks.seen[0][2] >= asked
    finally:
        server.shutdown()
        server.server_close()


WATCHER = r"""
while :; do echo "dir=$(cat /etc/cfg/level) sub=$(cat /etc/level)"; sleep 1; done
"""


def test_config_map_edits_reach_a_running_pod_but_not_its_sub_path(upstream: Any,
                                                                   ns: str) -> None:
    """Kubelet's sync (every 60 s here too) rewrites the volume through the ..data swap; a
    subPath mount keeps the file it was started with, as on a kubelet."""
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "levels"},
              "data": {"level": "one"}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "watcher"},
           "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
               "name": "main", "image": PAUSE, "command": ["sh", "-c", WATCHER],
               "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"},
                                {"name": "cfg", "mountPath": "/etc/level", "subPath": "level"}]}],
                    "volumes": [{"name": "cfg", "configMap": {"name": "levels"}}]}}
    _apply(upstream, ns, config, pod)

    def last_line() -> str:
        lines = upstream.kubectl("logs", "-n", ns, "watcher", "--tail=1",
                                 check=False).stdout.splitlines()
        return lines[-1] if lines else ""
    _until("the watcher's first line", lambda: last_line() == "dir=one sub=one")
    config["data"]["level"] = "two"
    _apply(upstream, ns, config)
    _until("the edit to reach the running pod", lambda: last_line() == "dir=two sub=one",
           timeout=100)
