"""The upstream build's Knative Serving and KServe binaries (``make upstream``): each carries
the pinned module versions (``go version -m``, read by :func:`build.component_versions`);
the real queue-proxy, started with the environment Knative gives it, logs the release's
commit, answers kubelet's probe from its readiness probe of the user port, proxies to it
and fails the probe while it drains after SIGTERM; KServe's manager prints its flags.

In the opt-in ``HARNESS_UPSTREAM=1`` folder (``make test-upstream`` builds first); none of
these needs the cluster or the host lock. The queue-proxy binds its fixed admin (8022) and
metrics (9090) ports on the host.
"""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from harness.upstream import build

# config-logging's zap-logger-config as Knative's release ships it (SERVING_LOGGING_CONFIG)
ZAP_CONFIG = {
    "level": "info", "development": False, "outputPaths": ["stdout"],
    "errorOutputPaths": ["stderr"], "encoding": "json",
    "encoderConfig": {"timeKey": "timestamp", "levelKey": "severity", "nameKey": "logger",
                      "callerKey": "caller", "messageKey": "message",
                      "stacktraceKey": "stacktrace", "lineEnding": "", "levelEncoder": "",
                      "timeEncoder": "iso8601", "durationEncoder": "", "callerEncoder": ""}}
PROBE = {"User-Agent": "kube-probe/1.34", "K-Network-Probe": "queue"}


@pytest.fixture(scope="module")
def bin_dir() -> Path:
    return build.build(progress=sys.stderr)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_binary_carries_the_pinned_module_version(bin_dir: Path) -> None:
    mods = build.load_versions()["modules"]
    found = build.component_versions(bin_dir)
    assert sorted(f["binary"] for f in found) == sorted(build.binaries())
    for f in found:
        assert f["version"] == mods[f["module"]]["version"], f
    releases = {f["binary"]: f["release"] for f in found}
    assert releases["knative-queue"] == mods[build.KNATIVE]["release"] == "v1.21.1"
    assert releases["kserve-manager"] == "v0.20.0"


def test_each_is_linked_with_its_own_projects_dependency_versions(bin_dir: Path) -> None:
    go = build.go_binary()
    kserve = build.module_versions(go, bin_dir / "kserve-manager")
    assert kserve["sigs.k8s.io/controller-runtime"] == "v0.22.5"  # KServe's replace lines
    assert kserve["k8s.io/client-go"] == "v0.34.5"
    assert kserve[build.KNATIVE] == "v0.48.1"
    knative = build.module_versions(go, bin_dir / "knative-controller")
    assert knative["k8s.io/client-go"] == "v0.34.3"  # Serving v0.48.1's go.mod, unreplaced


def test_queue_proxy_probes_the_user_port_and_proxies_to_it(bin_dir: Path,
                                                            tmp_path: Path) -> None:
    for fixed in (8022, 9090):  # the queue-proxy's admin and metrics ports
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", fixed)) == 0:
                pytest.skip(f"port {fixed} is in use on this host")
    port, tls_port, user = _free_port(), _free_port(), _free_port()
    env = {  # what pkg/reconciler/revision/resources/queue.go gives the container
        "SERVING_NAMESPACE": "default", "SERVING_SERVICE": "s", "SERVING_CONFIGURATION": "s",
        "SERVING_REVISION": "s-00001", "SERVING_POD": "s-00001-deployment-abc",
        "SERVING_POD_IP": "127.0.0.1", "QUEUE_SERVING_PORT": str(port),
        "QUEUE_SERVING_TLS_PORT": str(tls_port), "USER_PORT": str(user),
        "CONTAINER_CONCURRENCY": "0", "REVISION_TIMEOUT_SECONDS": "300",
        "SERVING_LOGGING_CONFIG": json.dumps(ZAP_CONFIG), "SERVING_LOGGING_LEVEL": "info",
        "SERVING_READINESS_PROBE": json.dumps({"tcpSocket": {"port": user,
                                                             "host": "127.0.0.1"},
                                               "successThreshold": 1}),
        "SYSTEM_NAMESPACE": "knative-serving", "PATH": "/usr/bin:/bin"}
    log = tmp_path / "queue.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(bin_dir / "knative-queue")], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    server = None
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    probe = client.get("/", headers=PROBE)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.2)
            assert probe.status_code == 503  # nothing on the user port yet
            server = _serve(user)
            deadline = time.monotonic() + 10
            while (probe := client.get("/", headers=PROBE)).status_code != 200:
                assert time.monotonic() < deadline, probe
                time.sleep(0.2)
            assert probe.text == "queue"
            answer = client.get("/v1/models/m")
            assert (answer.status_code, answer.text) == (200, "user /v1/models/m")
            # SIGTERM: queue-proxy drains (30 s), failing kubelet's probe meanwhile
            proc.terminate()
            deadline = time.monotonic() + 10
            while (probe := client.get("/", headers=PROBE)).status_code != 503:
                assert time.monotonic() < deadline, probe
                time.sleep(0.2)
            assert "shutting down" in probe.text
            assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if server is not None:
            server.shutdown()
            server.server_close()
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    started = next(x for x in lines if x.get("message") == "Starting queue-proxy")
    commit = build.load_versions()["modules"][build.KNATIVE]["commit"]
    assert started["commit"] == commit[:7]  # knative.dev/pkg/changeset, as the release logs
    assert started["knative.dev/key"] == "default/s-00001"


def _serve(port: int) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = f"user {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_kserve_manager_prints_its_flags(bin_dir: Path) -> None:
    out = subprocess.run([str(bin_dir / "kserve-manager"), "-help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for flag in ("-leader-elect", "-metrics-addr", "-webhook-port", "-health-probe-addr"):
        assert flag in out.stderr, out.stderr
