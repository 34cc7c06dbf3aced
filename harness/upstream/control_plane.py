"""The upstream cluster: real etcd, kube-apiserver, kube-controller-manager and
kube-scheduler (built by :mod:`harness.upstream.build`) as supervised local processes, with
our node agent (:mod:`harness.nodeagent`) in place of kubelets: it registers the nodes of
``fixtures/emulator/cluster.yaml``, runs their pods as processes in network namespaces on
the run's bridge and serves their logs.

:class:`UpstreamCluster` has the interface :func:`harness.emulator.api.process.run_until_signal`
drives (``start``, ``write_kubeconfig``, ``stop``), so ``harness cluster up --upstream``
runs it in the foreground exactly like ``--local``. Everything of one run lives under
``<state dir>/upstream-<run id>/`` (PKI, kubeconfigs, etcd's data, logs) and is removed on
stop; every process carries the run id (:mod:`harness.upstream.supervisor`).

Addresses come from 198.18.0.0/15 (RFC 2544, never routed): Services 198.19.0.0/16, pods
198.18.0.0/16. The API server listens on the run's bridge address 198.18.0.1 only (no other
address) and advertises it, so the ``kubernetes`` Service (198.19.0.1:443) reaches it the
way it does on a real node: kube-proxy DNATs to the endpoint 198.18.0.1:<secure port>, which
is where the API server really listens; no extra NAT rule, no ``route_localnet``. Host-side
clients (the kubeconfig, the components) use the same address: it is local to the host.
Webhooks are called by ClusterIP (kube-apiserver's default ``ClusterIPServiceResolver``, as
on kubeadm and kind), through kube-proxy's OUTPUT rules and the run's host route for the
Service range (:mod:`harness.nodeagent.network`). The other components listen on 127.0.0.1.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from harness.errors import UserError
from harness.nodeagent.network import API_SERVICE_IP
from harness.upstream import build, sweep
from harness.upstream.pki import Pki, make_pki
from harness.upstream.supervisor import Spec, Supervisor

SERVICE_CIDR = "198.19.0.0/16"
SERVICE_IP = API_SERVICE_IP         # the kubernetes Service (first address of the range)
POD_CIDR = "198.18.0.0/16"
ADVERTISE_IP = "198.18.0.1"         # the API server's address for pods (the node bridge)
CLUSTER_DOMAIN = "cluster.local"
CONTEXT = "harness-upstream"
READY_TIMEOUT_S = 120.0


def check_host() -> None:
    """The upstream cluster needs Linux and root (network namespaces); one line if not."""
    if not sys.platform.startswith("linux"):
        raise UserError(f"the upstream cluster needs Linux (network namespaces); this host "
                        f"is {sys.platform}")
    if os.geteuid() != 0:
        raise UserError("the upstream cluster needs root (it creates network namespaces, "
                        "links and routes for its pods); run it as root")
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            raise UserError(f"the upstream cluster needs '{tool}' on PATH (Debian package "
                            f"{package}: the pods' network and kube-proxy's rules)")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def kubeconfig_dict(server: str, pki: Pki, user: str, *, embed: bool,
                    context: str = CONTEXT) -> dict[str, Any]:
    """A kubeconfig for one client certificate of ``pki`` (embedded or by path)."""
    def ref(kind: str, path: Path) -> dict[str, str]:
        if embed:
            return {f"{kind}-data": base64.b64encode(path.read_bytes()).decode()}
        return {kind: str(path)}

    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": context, "cluster": {
            "server": server, **ref("certificate-authority", pki.ca_cert)}}],
        "users": [{"name": user, "user": {
            **ref("client-certificate", pki.client_cert(user)),
            **ref("client-key", pki.client_key(user))}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user,
                                                   "namespace": "default"}}],
        "current-context": context,
    }


def write_yaml(path: Path, data: dict[str, Any], mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    os.chmod(tmp, mode)
    tmp.replace(path)
    return path


class UpstreamCluster:
    """One run of the real control plane (see the module docstring)."""

    def __init__(self, *, state_dir: Path, cluster: str | Path | None = None,
                 profile: str | Path | None = None, serving: bool = False,
                 out: Callable[[str], None] | None = None) -> None:
        self.state_dir = state_dir
        self.cluster_file = cluster
        self.profile = profile
        self.serving = serving
        self.run_id = secrets.token_hex(3)
        self.run_dir = state_dir / f"upstream-{self.run_id}"
        self.out = out or (lambda line: print(line, flush=True))
        self.bin: Path | None = None
        self.supervisor: Supervisor | None = None
        self.apiserver_port = 0
        self.pki: Pki | None = None
        self.agent: Any = None
        self.pods: Any = None
        self.logs: Any = None
        self.network: Any = None
        self.ready_s = 0.0
        self.ingress_ports: dict[str, int] = {}

    @property
    def ingress_url(self) -> str:
        """Our Knative ingress's public listener on the host (ExternalIP rules)."""
        port = self.ingress_ports.get("public")
        return f"http://127.0.0.1:{port}" if port else ""

    @property
    def url(self) -> str:
        return f"https://{ADVERTISE_IP}:{self.apiserver_port}"

    # ------------------------------------------------------------ lifecycle

    def start(self) -> UpstreamCluster:
        check_host()
        from harness.emulator.cluster_config import load_cluster_config
        from harness.nodeagent.network import run_bridges
        from harness.profiles import load_profile

        nodes = load_cluster_config(self.cluster_file)   # fail early on a bad file
        others = run_bridges()
        if others:
            raise UserError(f"another upstream cluster is running on this host (bridge "
                            f"{others[0]}, 198.18.0.0/15 is taken); stop it with 'harness "
                            "cluster down', or 'harness gc --local-only' if it crashed")
        self._first_node = nodes.nodes[0].name
        autoscaler = ({str(k): str(v) for k, v in load_profile(self.profile).config.items()}
                      if self.profile is not None else {})
        self.bin = build.build(progress=sys.stdout)
        started = time.monotonic()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        sweep.register(self.run_id, self.run_dir)
        self.pki = make_pki(self.run_dir / "pki", service_ip=SERVICE_IP,
                            advertise_ip=ADVERTISE_IP,
                            extra_serving={"nodeagent": ["localhost", "127.0.0.1"]})
        self.supervisor = Supervisor(self.run_id, self.run_dir / "logs",
                                     on_event=lambda line: self.out(f"harness cluster: {line}"))
        try:
            from harness.nodeagent.agent import NodeAgent
            from harness.nodeagent.logs import LogServer
            from harness.nodeagent.network import Network, NetworkBusy
            from harness.nodeagent.pods import PodAgent

            self.network = Network(self.run_id)
            try:
                self.network.setup()
            except NetworkBusy as exc:
                self.network = None
                raise UserError(f"{exc}; stop it with 'harness cluster down', or 'harness "
                                "gc --local-only' if it crashed") from None
            self._start_control_plane()
            pki = self.pki
            self.logs = LogServer(self._log_lookup, cert=pki.directory / "nodeagent.crt",
                                  key=pki.directory / "nodeagent.key", ca=pki.ca_cert).start()
            self.agent = NodeAgent(self.client(), nodes, run_id=self.run_id,
                                   port=self.logs.port)
            self.agent.start()
            self.pods = PodAgent(self.client(), self.agent.node_names, network=self.network,
                                 logs=self.run_dir / "pods", run_id=self.run_id,
                                 upstream_bin=self.bin).start()
            self._wait_ready(started)
            if self.serving:
                self._install_serving(autoscaler)
            elif autoscaler:
                self._publish_profile(autoscaler)
        except BaseException:
            self.stop()
            raise
        self.ready_s = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Stop the node agent and every process, remove the run's folder. Idempotent.
        Says how long the pods and the components took, when they took a while."""
        t0 = time.monotonic()
        if self.pods is not None:
            self.pods.stop()
            self.pods = None
        if self.agent is not None:
            self.agent.stop()
            self.agent = None
        if self.logs is not None:
            self.logs.stop()
            self.logs = None
        t1 = time.monotonic()
        if self.supervisor is not None:
            self.supervisor.stop()
            self.supervisor = None
        t2 = time.monotonic()
        if self.network is not None:
            self.network.teardown()   # with kube-proxy's nftables tables
            self.network = None
        if time.monotonic() - t0 > 5:
            self.out(f"harness cluster: stopped the pods in {t1 - t0:.1f} s, the components "
                     f"in {t2 - t1:.1f} s, the network in {time.monotonic() - t2:.1f} s")
        shutil.rmtree(self.run_dir, ignore_errors=True)
        sweep.unregister(self.run_id)

    def write_kubeconfig(self, path: str | Path) -> Path:
        assert self.pki is not None
        return write_yaml(Path(path).expanduser(),
                          kubeconfig_dict(self.url, self.pki, "admin", embed=True))

    def client(self, user: str = "admin") -> httpx.Client:
        assert self.pki is not None
        tls = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        tls.load_cert_chain(str(self.pki.client_cert(user)), str(self.pki.client_key(user)))
        return httpx.Client(base_url=self.url, verify=tls, timeout=10.0)

    def _log_lookup(self, namespace: str, pod: str, container: str, previous: bool) -> Any:
        if self.pods is None:
            return None
        return self.pods.log_source(namespace, pod, container, previous)

    # ------------------------------------------------------------ components

    def _start_control_plane(self) -> None:
        assert self.bin is not None and self.pki is not None and self.supervisor is not None
        b, pki, d = self.bin, self.pki, self.run_dir
        etcd_port, peer_port = free_port(), free_port()
        self.apiserver_port = free_port(ADVERTISE_IP)   # the run's bridge is up
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self.supervisor.start(Spec("etcd", [
            str(b / "etcd"), "--name=harness", f"--data-dir={d / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=harness={peer_url}", "--unsafe-no-fsync",
            "--log-level=warn"]))
        self._wait(lambda: _http_ok(f"{etcd_url}/health"), "etcd", 30)
        self.supervisor.start(Spec("kube-apiserver", [
            str(b / "kube-apiserver"), f"--etcd-servers={etcd_url}",
            f"--bind-address={ADVERTISE_IP}", f"--secure-port={self.apiserver_port}",
            f"--advertise-address={ADVERTISE_IP}",
            f"--tls-cert-file={pki.apiserver_cert}",
            f"--tls-private-key-file={pki.apiserver_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--kubelet-client-certificate={pki.client_cert('apiserver-kubelet-client')}",
            f"--kubelet-client-key={pki.client_key('apiserver-kubelet-client')}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--service-account-issuer=https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC", "--allow-privileged=true",
            "--profiling=false"]))
        admin = self.client()
        self._wait(lambda: _ok(admin, "/readyz"), "kube-apiserver", 60)
        kcm_port, sched_port = free_port(), free_port()
        kcm_conf = write_yaml(d / "controller-manager.kubeconfig",
                              kubeconfig_dict(self.url, pki, "controller-manager", embed=False))
        sched_conf = write_yaml(d / "scheduler.kubeconfig",
                                kubeconfig_dict(self.url, pki, "scheduler", embed=False))
        self.supervisor.start(Spec("kube-controller-manager", [
            str(b / "kube-controller-manager"), f"--kubeconfig={kcm_conf}",
            f"--authentication-kubeconfig={kcm_conf}", f"--authorization-kubeconfig={kcm_conf}",
            "--bind-address=127.0.0.1", f"--secure-port={kcm_port}",
            f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca_cert}",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--use-service-account-credentials=true", "--controllers=*",
            "--leader-elect=false", "--profiling=false"]))
        sched_cfg = write_yaml(d / "scheduler.yaml", {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": str(sched_conf)},
            "leaderElection": {"leaderElect": False}})
        self.supervisor.start(Spec("kube-scheduler", [
            str(b / "kube-scheduler"), f"--config={sched_cfg}",
            f"--authentication-kubeconfig={sched_conf}",
            f"--authorization-kubeconfig={sched_conf}",
            "--bind-address=127.0.0.1", f"--secure-port={sched_port}"]))
        self._health = {"kube-controller-manager": kcm_port, "kube-scheduler": sched_port}
        self._start_proxy_and_dns()
        self._start_ingress()

    def _start_ingress(self) -> None:
        """Our Knative ingress (:mod:`harness.upstream.ingress`), a supervised host-side
        process: public and private listeners on 127.0.0.1 (for the host) and on the
        bridge address (for pods, behind its selector-less Services), its RBAC."""
        from harness.upstream.ingress.objects import cluster_objects

        assert self.pki is not None and self.supervisor is not None
        ports = {"public": free_port(), "private": free_port()}
        admin = self.client()
        for path, body in cluster_objects(gateway_ip=ADVERTISE_IP,
                                          public_port=ports["public"],
                                          private_port=ports["private"]):
            r = admin.post(path, json=body)
            if r.status_code not in (201, 409):
                r.raise_for_status()
        conf = write_yaml(self.run_dir / "knative-ingress.kubeconfig",
                          kubeconfig_dict(self.url, self.pki, "knative-ingress", embed=False))
        argv = [sys.executable, "-m", "harness.upstream.ingress", f"--kubeconfig={conf}"]
        for name, port in ports.items():
            argv += [f"--{name}=127.0.0.1:{port}", f"--{name}={ADVERTISE_IP}:{port}"]
        self.supervisor.start(Spec("knative-ingress", argv, grace_s=5.0))
        self.ingress_ports = ports
        self._wait(lambda: _tcp_open("127.0.0.1", ports["public"]), "knative-ingress", 30)

    def _start_proxy_and_dns(self) -> None:
        """kube-proxy (nftables mode, NodePorts only on the bridge address, masquerading
        so a pod reaches a Service backed by a pod on the same bridge) and CoreDNS on the
        kube-dns address, with kubeadm's RBAC for it."""
        assert self.bin is not None and self.pki is not None and self.supervisor is not None
        b, pki, d = self.bin, self.pki, self.run_dir
        proxy_conf = write_yaml(d / "kube-proxy.kubeconfig",
                                kubeconfig_dict(self.url, pki, "kube-proxy", embed=False))
        proxy_cfg = write_yaml(d / "kube-proxy.yaml", {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration", "mode": "nftables",
            "clientConnection": {"kubeconfig": str(proxy_conf)},
            "hostnameOverride": self._first_node, "clusterCIDR": POD_CIDR,
            "detectLocalMode": "ClusterCIDR",
            "nodePortAddresses": [f"{ADVERTISE_IP}/32"],
            "healthzBindAddress": f"127.0.0.1:{free_port()}",
            "metricsBindAddress": f"127.0.0.1:{free_port()}",
            # 0: leave the host's conntrack sysctls alone (as hack/local-up-cluster.sh)
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                          "tcpCloseWaitTimeout": "0s"},
            "nftables": {"masqueradeAll": True}})
        self.supervisor.start(Spec("kube-proxy", [str(b / "kube-proxy"),
                                                  f"--config={proxy_cfg}"]))
        admin = self.client()
        for path, body in _dns_objects():
            r = admin.post(path, json=body)
            if r.status_code not in (201, 409):
                r.raise_for_status()
        dns_conf = write_yaml(d / "coredns.kubeconfig",
                              kubeconfig_dict(self.url, pki, "coredns", embed=False))
        self._dns_health = free_port()
        corefile = d / "Corefile"
        corefile.write_text(
            f".:53 {{\n    bind {ADVERTISE_IP}\n    errors\n"
            f"    health 127.0.0.1:{self._dns_health}\n"
            f"    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{\n"
            f"        kubeconfig {dns_conf}\n        pods insecure\n"
            "        fallthrough in-addr.arpa ip6.arpa\n        ttl 30\n    }\n"
            "    cache 30\n    reload\n    loadbalance\n}\n")
        self.supervisor.start(Spec("coredns", [str(b / "coredns"), "-conf", str(corefile)]))

    def _wait_ready(self, started: float) -> None:
        admin = self.client()
        for name, port in self._health.items():
            self._wait(lambda p=port: _http_ok(f"https://127.0.0.1:{p}/healthz", verify=False),
                       name, READY_TIMEOUT_S - (time.monotonic() - started))
        # the controllers run: the default namespace gets its ServiceAccount
        self._wait(lambda: _ok(admin, "/api/v1/namespaces/default/serviceaccounts/default"),
                   "kube-controller-manager (ServiceAccount default/default)",
                   READY_TIMEOUT_S - (time.monotonic() - started))
        self._wait(lambda: _http_ok(f"http://127.0.0.1:{self._dns_health}/health"),
                   "coredns", READY_TIMEOUT_S - (time.monotonic() - started))
        assert self.agent is not None
        self._wait(self.agent.all_ready, "the nodes (Ready)",
                   READY_TIMEOUT_S - (time.monotonic() - started))

    def _install_serving(self, autoscaler: dict[str, str]) -> None:
        """Knative Serving and KServe (:mod:`harness.upstream.serving`), the profile's
        ``config-autoscaler`` among Knative's ConfigMaps."""
        from harness.upstream.serving import Installer

        Installer(self.client(), out=self.out, autoscaler=autoscaler).install()

    def _publish_profile(self, data: dict[str, str]) -> None:
        """The profile's ``config-autoscaler`` in ``knative-serving``, as ``--local`` has it
        (Knative itself comes with the next step; its autoscaler reads this ConfigMap)."""
        admin = self.client()
        admin.post("/api/v1/namespaces", json={"metadata": {"name": "knative-serving"}})
        r = admin.post("/api/v1/namespaces/knative-serving/configmaps", json={
            "metadata": {"name": "config-autoscaler"}, "data": data})
        r.raise_for_status()

    def _wait(self, ready: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + max(timeout, 1.0)
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.25)
        log = ""
        if self.supervisor is not None:
            name = what.split(" ")[0]
            path = self.supervisor.log_path(name)
            if path.is_file():
                tail = path.read_text(errors="replace").strip().splitlines()[-5:]
                log = f"; last lines of {path}:\n" + "\n".join(tail)
        raise UserError(f"{what} did not become ready within {timeout:.0f} s{log}")


def _dns_objects() -> list[tuple[str, dict[str, Any]]]:
    """kubeadm's CoreDNS RBAC (ClusterRole ``system:coredns``), the kube-dns Service and
    its endpoints."""
    from harness.nodeagent.network import DNS_IP

    rbac = "/apis/rbac.authorization.k8s.io/v1"
    return [
        (f"{rbac}/clusterroles", {
            "metadata": {"name": "system:coredns"},
            "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods",
                                                        "namespaces"],
                       "verbs": ["list", "watch"]},
                      {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                       "verbs": ["list", "watch"]}]}),
        (f"{rbac}/clusterrolebindings", {
            "metadata": {"name": "system:coredns"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "system:coredns"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": "system:coredns"}]}),
        # CoreDNS is no pod: the Service has no selector and one EndpointSlice, CoreDNS
        # on the bridge address, so kube-proxy sends 198.19.0.10:53 there
        ("/api/v1/namespaces/kube-system/services", {
            "metadata": {"name": "kube-dns", "labels": {"k8s-app": "kube-dns"}},
            "spec": {"clusterIP": DNS_IP,
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                               {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}}),
        ("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices", {
            "metadata": {"name": "kube-dns-coredns",
                         "labels": {"kubernetes.io/service-name": "kube-dns",
                                    "endpointslice.kubernetes.io/managed-by": "harness"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ADVERTISE_IP], "conditions": {"ready": True}}],
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                      {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}),
    ]


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _ok(client: httpx.Client, path: str) -> bool:
    try:
        return client.get(path).status_code == 200
    except httpx.HTTPError:
        return False


def _http_ok(url: str, verify: bool = True) -> bool:
    try:
        return httpx.get(url, timeout=2.0, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False
