"""KServe's webhook serving certificate on the upstream cluster, where no cert-manager runs.

On a real cluster KServe's manifests (``config/certmanager``) ask cert-manager for the
Certificate ``serving-cert`` (issuer ``selfsigned-issuer``) for the webhook Service
``kserve-webhook-server-service.kserve.svc``, stored in the Secret
``kserve-webhook-server-cert`` that the manager mounts at
``/tmp/k8s-webhook-server/serving-certs``; cert-manager's cainjector then copies the CA into
the ``caBundle`` of the webhook configurations annotated
``cert-manager.io/inject-ca-from: kserve/serving-cert``.

:func:`kserve_webhook_cert` does both halves: it makes a fresh CA and a serving certificate
for the Service's names (``.svc`` and ``.svc.<cluster domain>``) with
:func:`harness.upstream.pki.serving_certificate`, writes the Secret as cert-manager does
(type ``kubernetes.io/tls``; ``tls.crt``, ``tls.key``, ``ca.crt``; cert-manager's
annotations), created or replaced, and returns the CA bundle (PEM) for ``caBundle``
(base64 of these bytes in a manifest's JSON). One difference from the kustomize default:
the certificate is issued by a CA instead of signing itself, so that it also passes strict
X.509 path validation (the API server accepts either).
"""

from __future__ import annotations

import base64
from typing import Any

import httpx

from harness.upstream.pki import ServingCert, serving_certificate

NAMESPACE = "kserve"
SERVICE = "kserve-webhook-server-service"
SECRET = "kserve-webhook-server-cert"
CERTIFICATE = "serving-cert"
ISSUER = "selfsigned-issuer"


class CertWriteError(RuntimeError):
    """The API server refused the Secret."""


def dns_names(namespace: str = NAMESPACE, cluster_domain: str = "cluster.local") -> list[str]:
    svc = f"{SERVICE}.{namespace}.svc"
    return [svc, f"{svc}.{cluster_domain}"]


def secret_manifest(cert: ServingCert, names: list[str],
                    namespace: str = NAMESPACE) -> dict[str, Any]:
    """The Secret cert-manager writes for KServe's ``serving-cert`` Certificate."""
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {
            "name": SECRET, "namespace": namespace,
            "labels": {"controller.cert-manager.io/fao": "true"},
            "annotations": {
                "cert-manager.io/alt-names": ",".join(names),
                "cert-manager.io/certificate-name": CERTIFICATE,
                "cert-manager.io/common-name": names[0],
                "cert-manager.io/ip-sans": "", "cert-manager.io/uri-sans": "",
                "cert-manager.io/issuer-group": "cert-manager.io",
                "cert-manager.io/issuer-kind": "Issuer",
                "cert-manager.io/issuer-name": ISSUER,
            },
        },
        "data": {"tls.crt": b64(cert.cert), "tls.key": b64(cert.key), "ca.crt": b64(cert.ca)},
    }


def kserve_webhook_cert(client: httpx.Client, *, namespace: str = NAMESPACE,
                        cluster_domain: str = "cluster.local") -> bytes:
    """Write a fresh ``kserve-webhook-server-cert`` into ``namespace`` (which must exist)
    through ``client`` (an API-server client, e.g. ``UpstreamCluster.client()``) and return
    the CA bundle (PEM) for the webhook configurations' ``caBundle``."""
    names = dns_names(namespace, cluster_domain)
    cert = serving_certificate(names, ca_name=f"{ISSUER}.{namespace}")
    body = secret_manifest(cert, names, namespace)
    base = f"/api/v1/namespaces/{namespace}/secrets"
    r = client.post(base, json=body)
    if r.status_code == 409:   # a cluster brought up again: replace it, as a renewal does
        r = client.put(f"{base}/{SECRET}", json=body)
    if r.status_code not in (200, 201):
        raise CertWriteError(f"cannot write Secret {namespace}/{SECRET}: HTTP "
                             f"{r.status_code} {r.text[:300]}")
    return cert.ca
