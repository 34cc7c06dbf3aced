"""The upstream cluster's network beyond pod to pod: a pod reaches the API server through
the ``kubernetes`` Service (198.19.0.1:443, kube-proxy's DNAT to the advertise address
where the API server listens), the API server calls an admission webhook behind a Service
(by its ClusterIP, as kube-apiserver's default resolver does), the host reaches Service
ClusterIPs, and the run listens on no address but loopback and its own bridge."""

from __future__ import annotations

import base64
import ipaddress
import os
import ssl
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from test_upstream_cluster import _until, model_server, pods, ready_pods

from harness.upstream.pki import make_pki
from harness.upstream.sweep import run_processes

MODEL = "harness-modelserver:0.1.0"   # its entry runs `python`: the scripts below use it
API_SERVICE = "198.19.0.1"


@pytest.fixture
def ns(upstream: Any) -> Any:
    name = f"hx-net-{uuid.uuid4().hex[:8]}"
    upstream.kubectl("create", "namespace", name)
    yield name
    upstream.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


def _cluster_ca(upstream: Any) -> str:
    config = yaml.safe_load(upstream.kubeconfig.read_text())
    return base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]
                            ).decode()


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "stringData": data}


def _script_pod(name: str, script: str, env: list[dict[str, Any]],
                **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {
        "app": name}}, "spec": {"containers": [{
            "name": "main", "image": MODEL, "command": ["python", "-c", script],
            "env": env}], **spec}}


def _from_secret(var: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


# ----------------------------------------------------------------- pod -> API server

# The Python client's in-cluster configuration: the kubernetes Service's variables the
# node agent sets (as kubelet does), and the token, CA and namespace files of the
# kube-api-access volume the ServiceAccount admission plugin adds, at their fixed paths.
LISTER = """
from kubernetes import client, config
config.load_incluster_config()
print("host", client.Configuration.get_default_copy().host, flush=True)
names = [n.metadata.name for n in client.CoreV1Api().list_namespace().items]
print("namespaces", " ".join(sorted(names)), flush=True)
"""


def test_pod_lists_namespaces_through_the_kubernetes_service(upstream: Any, ns: str) -> None:
    upstream.kubectl("create", "serviceaccount", "lister", "-n", ns)
    binding = f"hx-lister-{ns}"
    upstream.kubectl("create", "clusterrolebinding", binding, "--clusterrole=view",
                     f"--serviceaccount={ns}:lister")
    try:
        pod = _script_pod("lister", LISTER, [], restartPolicy="Never",
                          serviceAccountName="lister")
        upstream.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(pod))

        def done() -> str:
            phase = upstream.json("get", "pod", "-n", ns, "lister")["status"].get("phase")
            return phase if phase in ("Succeeded", "Failed") else ""
        phase = _until("the lister pod to finish", done, timeout=120)
        logs = upstream.kubectl("logs", "-n", ns, "lister").stdout
        assert phase == "Succeeded", logs
        assert f"host https://{API_SERVICE}:443" in logs
        listed = next(line for line in logs.splitlines() if line.startswith("namespaces "))
        assert {"default", "kube-system", ns} <= set(listed.split()[1:])
    finally:
        upstream.kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found")


def test_the_kubernetes_service_goes_through_kube_proxy_to_the_advertise_address(
        upstream: Any) -> None:
    """The API server's own endpoint: the advertise address and the secure port, where
    it listens (kube-proxy DNATs 198.19.0.1:443 there); reachable from the host too."""
    svc = upstream.json("get", "service", "-n", "default", "kubernetes")
    assert svc["spec"]["clusterIP"] == API_SERVICE
    slices = upstream.json("get", "endpointslices", "-n", "default", "-l",
                           "kubernetes.io/service-name=kubernetes")["items"]
    (address,) = {a for s in slices for e in s["endpoints"] for a in e["addresses"]}
    (port,) = {p["port"] for s in slices for p in s["ports"]}
    assert address == "198.18.0.1"
    assert upstream.state["url"] == f"https://198.18.0.1:{port}"
    tls = ssl.create_default_context(cadata=_cluster_ca(upstream))
    for url in (f"https://{API_SERVICE}/version", f"https://198.18.0.1:{port}/version"):
        r = httpx.get(url, verify=tls, timeout=10)
        assert r.status_code == 200 and r.json()["gitVersion"] == "v1.34.0", url


# ----------------------------------------------------------------- API server -> webhook

WEBHOOK = """
import json, os, pathlib, ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
home = pathlib.Path(os.environ["HOME"])
(home / "tls.crt").write_text(os.environ["TLS_CRT"])
(home / "tls.key").write_text(os.environ["TLS_KEY"])
class Review(BaseHTTPRequestHandler):
    def do_POST(self):
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = review["request"]
        obj = request["object"]
        deny = "deny" in (obj.get("data") or {})
        answer = {"uid": request["uid"], "allowed": not deny}
        if deny:
            answer["status"] = {"code": 403, "message": "harness test webhook %s refuses "
                                "configmap %s" % (os.environ["POD_NAME"],
                                                  obj["metadata"]["name"])}
        print("reviewed", obj["metadata"]["name"], "from", self.client_address[0],
              "allowed" if not deny else "denied", flush=True)
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "response": answer}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(home / "tls.crt", home / "tls.key")
server = ThreadingHTTPServer(("0.0.0.0", 8443), Review)
server.socket = tls.wrap_socket(server.socket, server_side=True)
print("webhook serving on 8443", flush=True)
server.serve_forever()
"""


def test_api_server_calls_a_validating_webhook_behind_a_service(upstream: Any, ns: str,
                                                                tmp_path: Path) -> None:
    # the webhook's serving certificate for <service>.<namespace>.svc, as the API server
    # names it when it calls a Service (harness.upstream.pki, a CA of its own)
    pki = make_pki(tmp_path / "pki", service_ip=API_SERVICE, advertise_ip="198.18.0.1",
                   extra_serving={"webhook": [f"webhook.{ns}.svc"]})
    secret = _secret("webhook-tls", {"tls.crt": (pki.directory / "webhook.crt").read_text(),
                                     "tls.key": (pki.directory / "webhook.key").read_text()})
    pod = _script_pod("webhook", WEBHOOK, [
        _from_secret("TLS_CRT", "webhook-tls", "tls.crt"),
        _from_secret("TLS_KEY", "webhook-tls", "tls.key"),
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])
    pod["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": 8443},
                                                      "periodSeconds": 1}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "webhook"},
               "spec": {"selector": {"app": "webhook"},
                        "ports": [{"port": 443, "targetPort": 8443}]}}
    docs = "---\n".join(yaml.safe_dump(d) for d in (secret, pod, service))
    upstream.kubectl("apply", "-n", ns, "-f", "-", input=docs)
    ready_pods(upstream, ns, "webhook", 1)
    config_name = f"hx-deny-{ns}"
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration", "metadata": {"name": config_name},
        "webhooks": [{
            "name": "deny.harness.test", "admissionReviewVersions": ["v1"],
            "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 10,
            "clientConfig": {"service": {"namespace": ns, "name": "webhook",
                                         "path": "/validate", "port": 443},
                             "caBundle": base64.b64encode(pki.ca_cert.read_bytes()).decode()},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["configmaps"]}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}]}
    upstream.kubectl("apply", "-f", "-", input=yaml.safe_dump(config))
    try:
        # the API server picks the configuration up from its informer, kube-proxy the
        # webhook's endpoint from its EndpointSlice: a moment; the last error tells
        webhook_pod = pods(upstream, ns, "webhook")[0]["metadata"]["name"]
        denial = ('admission webhook "deny.harness.test" denied the request: harness test '
                  f"webhook {webhook_pod} refuses configmap bad-")
        errors: list[str] = []

        def refused() -> bool:
            proc = upstream.kubectl("create", "configmap", f"bad-{uuid.uuid4().hex[:6]}",
                                    "-n", ns, "--from-literal=deny=yes", check=False)
            if proc.returncode != 0:
                errors.append(proc.stderr)
            return denial in proc.stderr
        try:
            _until("the webhook's denial", refused, timeout=60)
        except AssertionError:
            raise AssertionError(f"no denial from the webhook; last error: "
                                 f"{errors[-1:] or 'none, the create went through'}") from None
        upstream.kubectl("create", "configmap", "good", "-n", ns, "--from-literal=a=b")
        logs = upstream.kubectl("logs", "-n", ns, "webhook").stdout
        # the API server called it (from the host's bridge address, through the ClusterIP)
        assert "reviewed good from 198.18.0.1 allowed" in logs, logs
        assert upstream.json("get", "configmap", "-n", ns, "good")["data"] == {"a": "b"}
    finally:
        upstream.kubectl("delete", "validatingwebhookconfiguration", config_name,
                         "--ignore-not-found")


# ----------------------------------------------------------------- host -> ClusterIP

def test_host_reaches_a_service_cluster_ip(upstream: Any, ns: str) -> None:
    docs = "---\n".join(yaml.safe_dump(d) for d in model_server("web", 2))
    upstream.kubectl("apply", "-n", ns, "-f", "-", input=docs)
    replicas = {p["metadata"]["name"] for p in ready_pods(upstream, ns, "web", 2)}
    cluster_ip = upstream.json("get", "service", "-n", ns, "web")["spec"]["clusterIP"]
    assert ipaddress.ip_address(cluster_ip) in ipaddress.ip_network("198.19.0.0/16")

    errors: list[str] = []

    def both_answer() -> set[str]:   # once kube-proxy has both replicas' endpoints
        seen = set()
        for _ in range(20):
            try:
                r = httpx.get(f"http://{cluster_ip}/", timeout=5)   # port 80 -> 8080
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
                return set()
            assert r.status_code == 200
            seen.add(r.headers["X-Pod-Name"])
        return seen if seen == replicas else set()
    try:
        _until("both replicas answering on the ClusterIP", both_answer, timeout=60)
    except AssertionError:
        raise AssertionError(f"the host did not get both replicas through {cluster_ip}; "
                             f"last error: {errors[-1:]}") from None


def test_run_listens_on_loopback_and_its_bridge_only(upstream: Any) -> None:
    """Every listening socket of the run in the host's network namespace (the components,
    and the harness process with its node agent) is on 127.0.0.0/8 or the run's bridge
    address; the pods listen in their own namespaces."""
    run = upstream.state["run_id"]
    pids = {pid for pid, (r, _o) in run_processes().items() if r == run}
    pids.add(int(upstream.state["pid"]))
    host_ns = os.readlink("/proc/self/ns/net")
    listening = _listening_inodes()
    found: dict[str, str] = {}
    for pid in pids:
        try:
            if os.readlink(f"/proc/{pid}/ns/net") != host_ns:
                continue
            fds = os.listdir(f"/proc/{pid}/fd")
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in listening:
                found[listening[target[8:-1]]] = comm
    assert any(c == "kube-apiserver" for c in found.values()), found
    for address, comm in found.items():
        ip = ipaddress.ip_address(address.rsplit(":", 1)[0].strip("[]"))
        assert ip.is_loopback or str(ip) == "198.18.0.1", f"{comm} listens on {address}"
    assert {a for a, c in found.items() if c == "kube-apiserver"} == {
        upstream.state["url"].removeprefix("https://")}


def _listening_inodes() -> dict[str, str]:
    """inode -> "address:port" of the host namespace's listening TCP sockets."""
    out = {}
    for name, family in (("tcp", 4), ("tcp6", 6)):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            f = line.split()
            if f[3] != "0A":   # LISTEN
                continue
            addr, port = f[1].split(":")
            raw = bytes.fromhex(addr)
            if family == 4:
                ip = ipaddress.ip_address(raw[::-1])
            else:
                ip = ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
            out[f[9]] = f"{ip}:{int(port, 16)}" if family == 4 else f"[{ip}]:{int(port, 16)}"
    return out

