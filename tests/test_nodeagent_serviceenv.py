"""Kubelet's Service variables and managed hosts file (:mod:`harness.nodeagent.serviceenv`),
as ``pkg/kubelet/envvars`` (``FromServices``, ``makeLinkVariables``), ``getServiceEnvVarMap``
and ``managedHostsFileContent`` make them."""

from __future__ import annotations

from typing import Any

from harness.nodeagent.serviceenv import (
    from_services,
    hostname_and_domain,
    kubernetes_service_env,
    managed_hosts,
    service_env,
)


def _svc(name: str, ip: str, *ports: dict[str, Any], ns: str = "ns1") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "ports": list(ports)}}


def test_from_services_names_every_port_and_the_docker_links() -> None:
    svc = _svc("model-server", "198.19.0.42", {"name": "http", "port": 80},
               {"name": "grpc-port", "port": 9000, "protocol": "TCP"},
               {"name": "metrics", "port": 9090, "protocol": "UDP"})
    assert from_services([svc]) == {
        "MODEL_SERVER_SERVICE_HOST": "198.19.0.42",
        "MODEL_SERVER_SERVICE_PORT": "80",
        "MODEL_SERVER_SERVICE_PORT_HTTP": "80",
        "MODEL_SERVER_SERVICE_PORT_GRPC_PORT": "9000",
        "MODEL_SERVER_SERVICE_PORT_METRICS": "9090",
        "MODEL_SERVER_PORT": "tcp://198.19.0.42:80",   # the first port only
        "MODEL_SERVER_PORT_80_TCP": "tcp://198.19.0.42:80",
        "MODEL_SERVER_PORT_80_TCP_PROTO": "tcp",
        "MODEL_SERVER_PORT_80_TCP_PORT": "80",
        "MODEL_SERVER_PORT_80_TCP_ADDR": "198.19.0.42",
        "MODEL_SERVER_PORT_9000_TCP": "tcp://198.19.0.42:9000",
        "MODEL_SERVER_PORT_9000_TCP_PROTO": "tcp",
        "MODEL_SERVER_PORT_9000_TCP_PORT": "9000",
        "MODEL_SERVER_PORT_9000_TCP_ADDR": "198.19.0.42",
        "MODEL_SERVER_PORT_9090_UDP": "udp://198.19.0.42:9090",
        "MODEL_SERVER_PORT_9090_UDP_PROTO": "udp",
        "MODEL_SERVER_PORT_9090_UDP_PORT": "9090",
        "MODEL_SERVER_PORT_9090_UDP_ADDR": "198.19.0.42",
    }


def test_the_kubernetes_service_is_always_there_and_the_namespaces_with_links() -> None:
    web = _svc("web", "198.19.0.7", {"port": 8080})   # an unnamed single port
    headless = _svc("peers", "None", {"name": "p", "port": 7000})
    external = {"metadata": {"name": "outside", "namespace": "ns1"},
                "spec": {"type": "ExternalName", "externalName": "example.com"}}
    env = service_env([web, headless, external])
    assert env == {**kubernetes_service_env(), "WEB_SERVICE_HOST": "198.19.0.7",
                   "WEB_SERVICE_PORT": "8080", "WEB_PORT": "tcp://198.19.0.7:8080",
                   "WEB_PORT_8080_TCP": "tcp://198.19.0.7:8080",
                   "WEB_PORT_8080_TCP_PROTO": "tcp", "WEB_PORT_8080_TCP_PORT": "8080",
                   "WEB_PORT_8080_TCP_ADDR": "198.19.0.7"}
    assert kubernetes_service_env() == {
        "KUBERNETES_SERVICE_HOST": "198.19.0.1", "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://198.19.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://198.19.0.1:443",
        "KUBERNETES_PORT_443_TCP_PROTO": "tcp", "KUBERNETES_PORT_443_TCP_PORT": "443",
        "KUBERNETES_PORT_443_TCP_ADDR": "198.19.0.1"}
    # enableServiceLinks: false keeps the master Service's variables only
    assert service_env([web], enable_service_links=False) == kubernetes_service_env()
    # a Service named kubernetes in the pod's namespace takes the master's place
    mine = _svc("kubernetes", "198.19.0.99", {"port": 80})
    assert service_env([mine])["KUBERNETES_SERVICE_HOST"] == "198.19.0.99"
    assert "KUBERNETES_SERVICE_PORT_HTTPS" not in service_env([mine])


def _pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "model-0", "namespace": "ns1"}, "spec": spec}


def test_managed_hosts_file_as_kubelet_writes_it() -> None:
    assert managed_hosts(_pod(), ["198.18.0.5"]) == (
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
        "fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
        "198.18.0.5\tmodel-0\n")
    pod = _pod(hostname="web-1", subdomain="web",
               hostAliases=[{"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]},
                            {"ip": "10.1.2.3", "hostnames": ["foo.remote"]}])
    assert managed_hosts(pod, ["198.18.0.6"]).endswith(
        "fe00::2\tip6-allrouters\n198.18.0.6\tweb-1.web.ns1.svc.cluster.local\tweb-1\n"
        "\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\n127.0.0.1\tbar.local\n"
        "10.1.2.3\tfoo.remote\n")


def test_a_long_pod_name_is_cut_to_63_characters_without_a_trailing_dash() -> None:
    name = "a" * 62 + "-b" + "c" * 10
    pod = {"metadata": {"name": name, "namespace": "ns1"}, "spec": {}}
    assert hostname_and_domain(pod) == ("a" * 62, "")
