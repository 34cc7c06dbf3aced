"""KServe's webhook certificate as cert-manager would make it (harness.upstream.kserve_cert):
the Secret's shape, and the certificate valid for the webhook Service's names under the CA
bundle returned for ``caBundle`` (strict path validation with ``cryptography``), written
through a real Kubernetes API (the emulator's)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from harness.emulator import Emulator
from harness.upstream.kserve_cert import (
    CertWriteError,
    dns_names,
    kserve_webhook_cert,
)
from harness.upstream.pki import serving_certificate

SVC = "kserve-webhook-server-service.kserve.svc"


def verify(cert_pem: bytes, ca_pem: bytes, name: str) -> None:
    """Server-certificate path validation of ``cert_pem`` for ``name`` under ``ca_pem``."""
    store = Store(x509.load_pem_x509_certificates(ca_pem))
    verifier = PolicyBuilder().store(store).build_server_verifier(x509.DNSName(name))
    verifier.verify(x509.load_pem_x509_certificate(cert_pem), [])


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    with Emulator() as emu, httpx.Client(base_url=emu.url, timeout=10) as client:
        yield client


def test_names_are_the_services_with_and_without_the_cluster_domain() -> None:
    assert dns_names() == [SVC, f"{SVC}.cluster.local"]
    assert dns_names("other", "example.org") == [
        "kserve-webhook-server-service.other.svc",
        "kserve-webhook-server-service.other.svc.example.org"]


def test_serving_certificate_is_valid_for_its_names_only() -> None:
    cert = serving_certificate(dns_names(), ca_name="selfsigned-issuer.kserve")
    for name in dns_names():
        verify(cert.cert, cert.ca, name)
    with pytest.raises(VerificationError):
        verify(cert.cert, cert.ca, "kserve-webhook-server-service.default.svc")
    other = serving_certificate(dns_names(), ca_name="another")
    with pytest.raises(VerificationError):   # a CA bundle from another run does not trust it
        verify(cert.cert, other.ca, SVC)
    key = serialization.load_pem_private_key(cert.key, None)
    leaf = x509.load_pem_x509_certificate(cert.cert)
    assert key.public_key() == leaf.public_key()


def test_secret_written_as_cert_manager_does_and_ca_bundle_returned(
        api: httpx.Client) -> None:
    api.post("/api/v1/namespaces", json={"metadata": {"name": "kserve"}}).raise_for_status()
    bundle = kserve_webhook_cert(api)
    secret = api.get("/api/v1/namespaces/kserve/secrets/kserve-webhook-server-cert").json()
    assert secret["type"] == "kubernetes.io/tls"
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert set(data) == {"tls.crt", "tls.key", "ca.crt"}
    assert data["ca.crt"] == bundle
    ann = secret["metadata"]["annotations"]
    assert ann["cert-manager.io/certificate-name"] == "serving-cert"
    assert ann["cert-manager.io/common-name"] == SVC
    for name in dns_names():
        verify(data["tls.crt"], bundle, name)
    key = serialization.load_pem_private_key(data["tls.key"], None)
    assert key.public_key() == x509.load_pem_x509_certificate(data["tls.crt"]).public_key()

    again = kserve_webhook_cert(api)   # a second bring-up replaces it
    assert again != bundle
    secret = api.get("/api/v1/namespaces/kserve/secrets/kserve-webhook-server-cert").json()
    tls = base64.b64decode(secret["data"]["tls.crt"])
    verify(tls, again, SVC)
    with pytest.raises(VerificationError):
        verify(tls, bundle, SVC)


def test_missing_namespace_is_an_error_naming_the_secret(api: httpx.Client) -> None:
    with pytest.raises(CertWriteError, match="hx-absent/kserve-webhook-server-cert"):
        kserve_webhook_cert(api, namespace="hx-absent")
