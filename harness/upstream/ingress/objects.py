"""What our Knative ingress needs in the cluster: its RBAC (the client certificate user
``harness-knative-ingress``, :data:`harness.upstream.pki.CLIENTS`), and the Services
Knative's route reconciler points its placeholder Services at.

The proxy runs on the host, so its Services have no selector: an EndpointSlice names the
run's bridge address (where the proxy also listens) and the listener's port, as CoreDNS's
kube-dns Service does; a pod resolving ``harness-ingress.harness-ingress.svc.cluster.local``
reaches the proxy through kube-proxy on port 80. The public Service serves ExternalIP
rules, the ``-internal`` one every rule (Kourier's ``kourier`` / ``kourier-internal``).
"""

from __future__ import annotations

from typing import Any

from harness.upstream.ingress.routes import CLUSTER_DOMAIN, GROUP

NAMESPACE = "harness-ingress"
PUBLIC_SERVICE = "harness-ingress"
PRIVATE_SERVICE = "harness-ingress-internal"
USER = "harness-knative-ingress"
SERVICE_PORT = 80


def domain(service: str, domain: str = CLUSTER_DOMAIN) -> str:
    return f"{service}.{NAMESPACE}.svc.{domain}"


def cluster_objects(*, gateway_ip: str, public_port: int,
                    private_port: int) -> list[tuple[str, dict[str, Any]]]:
    """(collection path, object) to create in order (409 = already there)."""
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    objs: list[tuple[str, dict[str, Any]]] = [
        (f"{rbac}/clusterroles", {
            "metadata": {"name": USER},
            "rules": [
                {"apiGroups": [GROUP], "resources": ["ingresses"],
                 "verbs": ["get", "list", "watch"]},
                {"apiGroups": [GROUP], "resources": ["ingresses/status"],
                 "verbs": ["get", "update", "patch"]},
                {"apiGroups": [""], "resources": ["services"],
                 "verbs": ["get", "list", "watch"]}]}),
        (f"{rbac}/clusterrolebindings", {
            "metadata": {"name": USER},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": USER},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": USER}]}),
        ("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}}),
    ]
    for name, port in ((PUBLIC_SERVICE, public_port), (PRIVATE_SERVICE, private_port)):
        objs.append((f"/api/v1/namespaces/{NAMESPACE}/services", {
            "metadata": {"name": name, "labels": {"app": NAMESPACE}},
            "spec": {"ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": port,
                                "protocol": "TCP"}]}}))
        objs.append((f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices", {
            "metadata": {"name": f"{name}-host",
                         "labels": {"kubernetes.io/service-name": name,
                                    "endpointslice.kubernetes.io/managed-by": "harness"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [gateway_ip], "conditions": {"ready": True}}],
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}))
    return objs
