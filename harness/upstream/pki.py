"""The upstream cluster's PKI, made with ``cryptography``: one CA, the API server's serving
certificate, a client certificate per component, and the service-account key pair.

Names and groups follow kubeadm's (``kubernetes-admin`` in ``system:masters``,
``system:kube-controller-manager``, ``system:kube-scheduler``, ``system:kube-proxy``), so
the API server's bootstrap RBAC grants each component what it needs and nothing more.
Keys are ECDSA P-256 (fast to make; every component accepts them). Files are PEM, keys
mode 0600, under one directory per run.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_FOR = dt.timedelta(days=2)
"""A cluster lives for one run; short-lived certificates are all it needs."""

CLIENTS: dict[str, tuple[str, str | None]] = {
    # file stem -> (common name, organisation)
    "admin": ("kubernetes-admin", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", None),
    "scheduler": ("system:kube-scheduler", None),
    "kube-proxy": ("system:kube-proxy", None),
    "node-agent": ("harness-node-agent", "system:masters"),
    "coredns": ("system:coredns", None),
    "knative-ingress": ("harness-knative-ingress", None),   # RBAC: ingress/objects.py
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", "system:masters"),
}


@dataclass(frozen=True)
class Pki:
    """Paths of the files :func:`make_pki` wrote."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def apiserver_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def apiserver_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def sa_key(self) -> Path:
        return self.directory / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.directory / "sa.pub"

    def client_cert(self, name: str) -> Path:
        return self.directory / f"{name}.crt"

    def client_key(self, name: str) -> Path:
        return self.directory / f"{name}.key"


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = _pem_key(key)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _builder(subject: x509.Name, issuer: x509.Name,
             key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + VALID_FOR))


def _leaf(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, subject: x509.Name,
          usage: list[x509.ObjectIdentifier],
          sans: list[x509.GeneralName] | None = None
          ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    b = (_builder(subject, ca.subject, key)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                      content_commitment=False, data_encipherment=False,
                                      key_agreement=False, key_cert_sign=False,
                                      crl_sign=False, encipher_only=False,
                                      decipher_only=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                        critical=False))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(ca_key, hashes.SHA256()), key


def _ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    name = _name(common_name)
    cert = (_builder(name, name, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False,
                                         content_commitment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


@dataclass(frozen=True)
class ServingCert:
    """PEM bytes of a serving certificate, its key and the CA that signed it."""

    cert: bytes
    key: bytes
    ca: bytes


def serving_certificate(dns_names: list[str], *, ca_name: str) -> ServingCert:
    """A fresh CA named ``ca_name`` and a serving certificate for ``dns_names`` (the first
    is its common name) signed by it, for a webhook's Service."""
    ca, ca_key = _ca(ca_name)
    cert, key = _leaf(ca, ca_key, _name(dns_names[0]), [ExtendedKeyUsageOID.SERVER_AUTH],
                      [x509.DNSName(n) for n in dns_names])
    return ServingCert(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key),
                       ca.public_bytes(serialization.Encoding.PEM))


def serving_sans(*, service_ip: str, advertise_ip: str,
                 cluster_domain: str = "cluster.local") -> list[x509.GeneralName]:
    """The API server's names: loopback, its advertised and first Service address,
    ``kubernetes.default.svc[.<domain>]`` (as ``hack/local-up-cluster.sh``)."""
    names = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             f"kubernetes.default.svc.{cluster_domain}"]
    ips = ["127.0.0.1", service_ip, advertise_ip]
    return ([x509.DNSName(n) for n in names]
            + [x509.IPAddress(ipaddress.ip_address(i)) for i in dict.fromkeys(ips)])


def make_pki(directory: Path, *, service_ip: str, advertise_ip: str,
             extra_serving: dict[str, list[str]] | None = None) -> Pki:
    """Write a fresh CA, the serving and client certificates and the SA keys.

    ``extra_serving`` adds serving certificates: stem -> DNS names / IP addresses.
    """
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory)
    ca, ca_key = _ca("harness-upstream-ca")
    _write_cert(pki.ca_cert, ca)
    _write_key(pki.ca_key, ca_key)

    cert, key = _leaf(ca, ca_key, _name("kube-apiserver"), [ExtendedKeyUsageOID.SERVER_AUTH],
                      serving_sans(service_ip=service_ip, advertise_ip=advertise_ip))
    _write_cert(pki.apiserver_cert, cert)
    _write_key(pki.apiserver_key, key)
    for stem, names in (extra_serving or {}).items():
        sans: list[x509.GeneralName] = []
        for n in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        cert, key = _leaf(ca, ca_key, _name(names[0]), [ExtendedKeyUsageOID.SERVER_AUTH], sans)
        _write_cert(directory / f"{stem}.crt", cert)
        _write_key(directory / f"{stem}.key", key)

    for stem, (cn, org) in CLIENTS.items():
        cert, key = _leaf(ca, ca_key, _name(cn, org), [ExtendedKeyUsageOID.CLIENT_AUTH])
        _write_cert(pki.client_cert(stem), cert)
        _write_key(pki.client_key(stem), key)

    sa = _key()
    _write_key(pki.sa_key, sa)
    pki.sa_pub.write_bytes(sa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return pki
