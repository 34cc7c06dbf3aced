"""What kubelet puts in a container's environment about Services and the pod's host name:
the Service variables (``pkg/kubelet/envvars``: ``<NAME>_SERVICE_HOST``, ``_SERVICE_PORT``,
``_SERVICE_PORT_<PORT NAME>`` and the Docker-link ``<NAME>_PORT``, ``_PORT_<port>_<PROTO>``,
``..._PROTO``, ``..._PORT``, ``..._ADDR``) of the ``kubernetes`` Service always and of every
Service in the pod's namespace with a cluster IP when ``enableServiceLinks`` (default
true), as ``getServiceEnvVarMap`` picks them; and kubelet's managed ``/etc/hosts``
(``managedHostsFileContent``: localhost lines, the pod's IP with its host name, its
``hostAliases``)."""

from __future__ import annotations

from typing import Any

from harness.nodeagent.network import API_SERVICE_IP

CLUSTER_DOMAIN = "cluster.local"

# the master Service, from the default namespace, whatever the pod's namespace
KUBERNETES_SERVICE: dict[str, Any] = {
    "metadata": {"name": "kubernetes", "namespace": "default"},
    "spec": {"clusterIP": API_SERVICE_IP,
             "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}}


def _name(text: str) -> str:
    return text.replace("-", "_").upper()   # envvars.makeEnvVariableName


def _ip_set(service: dict[str, Any]) -> bool:
    ip = (service.get("spec") or {}).get("clusterIP") or ""
    return ip not in ("", "None")   # headless and ExternalName Services get none


def from_services(services: list[dict[str, Any]]) -> dict[str, str]:
    """``envvars.FromServices``: every Service with a cluster IP and ports."""
    env: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ports = spec.get("ports") or []
        if not _ip_set(svc) or not ports:
            continue
        prefix, ip = _name(svc["metadata"]["name"]), spec["clusterIP"]
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for p in ports:
            if p.get("name"):
                env[f"{prefix}_SERVICE_PORT_{_name(p['name'])}"] = str(p["port"])
        host = f"[{ip}]" if ":" in ip else ip   # net.JoinHostPort
        for i, p in enumerate(ports):
            proto = str(p.get("protocol") or "TCP")
            url = f"{proto.lower()}://{host}:{p['port']}"
            if i == 0:
                env[f"{prefix}_PORT"] = url
            pp = f"{prefix}_PORT_{p['port']}_{proto.upper()}"
            env.update({pp: url, f"{pp}_PROTO": proto.lower(), f"{pp}_PORT": str(p["port"]),
                        f"{pp}_ADDR": ip})
    return env


def service_env(namespace_services: list[dict[str, Any]], *,
                enable_service_links: bool = True) -> dict[str, str]:
    """``getServiceEnvVarMap``: the ``kubernetes`` Service's variables always (also with
    ``enableServiceLinks: false``: what in-cluster clients read to find the API server);
    the pod's namespace's Services with ``enableServiceLinks`` (one of the same name there
    takes the master's place)."""
    chosen = {"kubernetes": KUBERNETES_SERVICE}
    if enable_service_links:
        for svc in namespace_services:
            if _ip_set(svc):
                chosen[svc["metadata"]["name"]] = svc
    return from_services(list(chosen.values()))


def kubernetes_service_env() -> dict[str, str]:
    """The ``kubernetes`` Service's variables alone."""
    return from_services([KUBERNETES_SERVICE])


def hostname_and_domain(pod: dict[str, Any]) -> tuple[str, str]:
    """``GeneratePodHostNameAndDomain``: ``spec.hostname`` or the pod's name (63 characters
    at most), and ``<subdomain>.<namespace>.svc.<cluster domain>`` with a subdomain."""
    spec = pod.get("spec") or {}
    meta = pod["metadata"]
    hostname = spec.get("hostname") or meta["name"]
    if len(hostname) > 63:   # truncated at 63, without a trailing '-' or '.'
        hostname = hostname[:63].rstrip("-.")
    sub = spec.get("subdomain") or ""
    domain = f"{sub}.{meta['namespace']}.svc.{CLUSTER_DOMAIN}" if sub else ""
    return hostname, domain


def managed_hosts(pod: dict[str, Any], pod_ips: list[str]) -> str:
    """kubelet's ``managedHostsFileContent`` for a pod not on the host's network."""
    hostname, domain = hostname_and_domain(pod)
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
             "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    for ip in pod_ips:
        lines.append(f"{ip}\t{hostname}.{domain}\t{hostname}" if domain
                     else f"{ip}\t{hostname}")
    text = "\n".join(lines) + "\n"
    aliases = (pod.get("spec") or {}).get("hostAliases") or []
    if aliases:
        text += "\n# Entries added by HostAliases.\n"
        for alias in aliases:
            for name in alias.get("hostnames") or []:
                text += f"{alias['ip']}\t{name}\n"
    return text
