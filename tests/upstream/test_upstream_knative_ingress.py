"""Our Knative ingress on the live upstream cluster: Knative networking's Ingress CRD (from
the Go module cache, as upstream ships it), model-server Deployments behind Services, an
Ingress of our class with an 80/20 split by host, a header-matched path, appended headers
and a cluster-local rule; its status Ready as Knative waits for it; requests from the host
(127.0.0.1, Host header) and from a pod (through an ExternalName Service pointing at the
status's ``domainInternal``, as Knative's route reconciler makes it), each answered by the
right backend through the Service's ClusterIP (kube-proxy); a slow answer not cut."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_upstream_cluster import _until, model_server, netns_of, ready_pods  # noqa: E402

from harness.upstream.ingress.routes import CLASS_ANNOTATION, INGRESS_CLASS  # noqa: E402

SLOW_S = 11.0   # above Knative's conformance "large delay" of 10 s


def ingress_crd() -> str:
    """knative.dev/networking's Ingress CRD from the Go module cache, at the version
    Knative Serving's go.mod pins (harness.upstream.modcache)."""
    from harness.upstream import modcache

    return "---\n".join(yaml.safe_dump(d) for d in modcache.networking_crds(["ingress.yaml"]))


def get_ingress(upstream: Any, ns: str) -> dict[str, Any]:
    return upstream.json("get", "ingresses.networking.internal.knative.dev", "-n", ns, "demo")


def test_knative_ingress_routes_splits_and_reports_ready(upstream: Any) -> None:
    upstream.kubectl("apply", "-f", "-", input=ingress_crd())
    _until("the Ingress CRD established", lambda: upstream.kubectl(
        "get", "ingresses.networking.internal.knative.dev", "-A", check=False).returncode == 0,
        timeout=30)
    ns = f"hx-up-{uuid.uuid4().hex[:8]}"
    host = f"demo.{ns}.example.com"
    local = f"demo.{ns}.svc.cluster.local"
    upstream.kubectl("create", "namespace", ns)
    try:
        docs = [*model_server("a", 1), *model_server("b", 1), *model_server("slow", 1)]
        slow_env = docs[4]["spec"]["template"]["spec"]["containers"][0]["env"]
        slow_env.append({"name": "REQUEST_LATENCY", "value": f"{SLOW_S}s"})
        upstream.kubectl("apply", "-n", ns, "-f", "-",
                         input="---\n".join(yaml.safe_dump(d) for d in docs))

        def backend(svc: str, percent: int, **append: str) -> dict[str, Any]:
            return {"serviceName": svc, "serviceNamespace": ns, "servicePort": 80,
                    "percent": percent, **({"appendHeaders": append} if append else {})}

        ing = {"apiVersion": "networking.internal.knative.dev/v1alpha1", "kind": "Ingress",
               "metadata": {"name": "demo", "annotations": {CLASS_ANNOTATION: INGRESS_CLASS}},
               "spec": {"rules": [
                   {"hosts": [host], "visibility": "ExternalIP", "http": {"paths": [
                       {"headers": {"X-Slow": {"exact": "yes"}},
                        "splits": [backend("slow", 100)]},
                       {"appendHeaders": {"X-Harness-Path": "split"},
                        "splits": [backend("a", 80, **{"Knative-Serving-Revision": "a"}),
                                   backend("b", 20, **{"Knative-Serving-Revision": "b"})]}]}},
                   {"hosts": [local], "visibility": "ClusterLocal", "http": {"paths": [
                       {"splits": [backend("b", 100)]}]}}]}}
        upstream.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(ing))
        for app in ("a", "b", "slow"):
            ready_pods(upstream, ns, app, 1)

        def ready() -> dict[str, Any] | None:
            obj = get_ingress(upstream, ns)
            st = obj.get("status") or {}
            conds = {c["type"]: c["status"] for c in st.get("conditions") or []}
            ok = (conds == {"Ready": "True", "LoadBalancerReady": "True",
                            "NetworkConfigured": "True"}
                  and st.get("observedGeneration") == obj["metadata"]["generation"])
            return obj if ok else None
        status = _until("the Ingress Ready", ready, timeout=60)["status"]
        assert status["publicLoadBalancer"]["ingress"] == [
            {"domainInternal": "harness-ingress.harness-ingress.svc.cluster.local"}]
        private = status["privateLoadBalancer"]["ingress"][0]["domainInternal"]
        assert private == "harness-ingress-internal.harness-ingress.svc.cluster.local"

        url = upstream.state["ingress_url"]
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url, timeout=30.0) as client:
            # the EndpointSlice controller publishes the pods a moment after Ready (till
            # then kube-proxy refuses the ClusterIP): wait for every backend to answer
            _until("both split backends answering", lambda: all(
                client.get("/v2/health/ready", headers={"Host": host}).status_code == 200
                for _ in range(10)), timeout=30)
            _until("the slow backend answering", lambda: client.get(
                "/v2/health/ready", headers={"Host": host, "X-Slow": "yes"}).status_code == 200,
                timeout=30)
            seen: Counter[str] = Counter()
            overhead: list[float] = []
            for _ in range(100):
                t0 = time.perf_counter()
                r = client.get("/debug/headers", headers={"Host": host})
                overhead.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
                pod = r.headers["X-Pod-Name"]
                app = pod.split("-")[0]
                seen[app] += 1
                sent = r.json()["headers"]
                # the appended headers reach the backend: the path's, and the split's own
                assert sent["X-Harness-Path"] == ["split"]
                assert sent["Knative-Serving-Revision"] == [app]
            assert seen == {"a": 80, "b": 20}, seen
            # the header-matched path, and a slow answer the ingress does not cut
            t0 = time.monotonic()
            r = client.post("/v1/models/linear:predict", headers={"Host": host, "X-Slow": "yes"},
                            json={"instances": [[1.0, 2.0, 3.0, 4.0]]})
            took = time.monotonic() - t0
            assert r.status_code == 200, r.text
            assert r.headers["X-Pod-Name"].startswith("slow-")
            assert took >= SLOW_S
            # ClusterLocal hosts are not on the public listener
            assert client.get("/", headers={"Host": local}).status_code == 404
        overhead.sort()
        print(f"\ningress round trip (host -> ingress -> ClusterIP -> pod), 100 requests: "
              f"p50 {overhead[50] * 1000:.1f} ms, p90 {overhead[90] * 1000:.1f} ms")

        # from a pod, as Knative's placeholder Service routes it: an ExternalName Service
        # naming the private load balancer, resolved by CoreDNS, to the ingress's Service
        placeholder = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "demo"},
                       "spec": {"type": "ExternalName", "externalName": private,
                                "ports": [{"name": "http2", "port": 80, "targetPort": 80}]}}
        upstream.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(placeholder))
        client_pod = ready_pods(upstream, ns, "a", 1)[0]
        script = ("import urllib.request as u\n"
                  f"r = u.urlopen('http://{local}/', timeout=10)\n"
                  "print(r.status, r.headers['X-Pod-Name'])\n")
        out = subprocess.run(["ip", "netns", "exec", netns_of(upstream, client_pod),
                              sys.executable, "-c", script],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        code, pod = out.stdout.split()
        assert code == "200" and pod.startswith("b-"), out.stdout
    finally:
        upstream.kubectl("delete", "namespace", ns, "--timeout=120s", timeout=150)
