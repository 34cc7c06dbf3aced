"""Pod networking for the node agent: one network namespace per pod, on one bridge.

Everything carries the run id ``R`` (6 hex digits): the bridge ``hxb<R>`` holding the
gateway address 198.18.0.1/16, each pod's namespace ``hxp<R>-<n>`` with the veth
``hxv<R><n>`` (its host end, a bridge port) and ``eth0`` inside holding the pod's address
from 198.18.0.0/16. Pods get no default route: only 198.18.0.0/15 (pods, and Services via
the gateway) is reachable from a pod, so nothing a pod sends can leave the machine. The
host gets an ``unreachable 198.18.0.0/15`` route (metric :data:`UNREACHABLE_METRIC`,
below the bridge's own /16), so a Service address never leaves through the default route,
and a more specific ``198.19.0.0/16 dev hxb<R>`` route: a host-side process (the API
server calling a webhook Service, our ingress proxying to a Service) gets past connect()
to a ClusterIP, kube-proxy's OUTPUT chain DNATs it to a pod on the bridge; an address no
Service holds is only ever ARPed for on the bridge, which has nothing but the pods on it.
That route is the bridge's (it goes with the link). kube-proxy's nftables tables go with
the last run. The host's existing interfaces and
routes are not touched. The bridge's alias records the
owner's pid, so ``harness gc`` can tell a live run's network from a crashed one's.
:func:`teardown` (and :func:`sweep_run` for a crashed run) remove every namespace, link
and route of a run.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

POD_NET = ipaddress.ip_network("198.18.0.0/16")
RESERVED_NET = ipaddress.ip_network("198.18.0.0/15")   # RFC 2544: pods and Services
GATEWAY = ipaddress.ip_address("198.18.0.1")
SERVICE_NET = "198.19.0.0/16"
DNS_IP = "198.19.0.10"          # the kube-dns Service (kube-proxy sends it to CoreDNS)
API_SERVICE_IP = "198.19.0.1"   # the kubernetes Service (first address of the range)
CLUSTER_DOMAIN = "cluster.local"
UNREACHABLE_METRIC = 4242
OWNER_ALIAS = "harness-upstream owner="
LOCK = Path("/run/lock/harness-upstream-network.lock")


class NetworkError(RuntimeError):
    """An ``ip`` command failed."""


class NetworkBusy(NetworkError):
    """Another run's network holds the address range (one upstream run per host)."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and proc.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def bridge_name(run_id: str) -> str:
    return f"hxb{run_id}"


def netns_prefix(run_id: str) -> str:
    return f"hxp{run_id}-"


@dataclass(frozen=True)
class PodNet:
    netns: str
    veth: str
    address: str


class Network:
    """The run's bridge and the pods' namespaces on it."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.bridge = bridge_name(run_id)
        self._lock = threading.Lock()
        self._next = 2              # .0.1 is the gateway
        self._free: list[int] = []
        self.pods: dict[str, PodNet] = {}

    def setup(self, *, alone: bool = True) -> None:
        """Create the bridge and the route. ``alone``: refuse (:class:`NetworkBusy`) when
        another run's bridge holds 198.18.0.0/15 on this host (checked under a host-wide
        lock, so two runs starting at once cannot both take it)."""
        LOCK.parent.mkdir(parents=True, exist_ok=True)
        with open(LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            others = run_bridges()
            if alone and others:
                raise NetworkBusy(f"another upstream run's bridge {others[0]} holds "
                                  f"{RESERVED_NET} on this host")
            self._create()

    def _create(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        # the owner's pid on the link itself: harness gc leaves a live run's network alone
        ip("link", "set", "dev", self.bridge, "alias", f"{OWNER_ALIAS}{os.getpid()}")
        ip("addr", "add", f"{GATEWAY}/{POD_NET.prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        # forward what pods send to a Service (kube-proxy DNATs it back onto the bridge);
        # this link's setting only, the host's ip_forward is left alone
        Path(f"/proc/sys/net/ipv4/conf/{self.bridge}/forwarding").write_text("1\n")
        ip("route", "replace", "unreachable", str(RESERVED_NET), "metric",
           str(UNREACHABLE_METRIC))
        # the host reaches Service ClusterIPs through kube-proxy (its OUTPUT DNAT): the
        # connect() needs a route first; the bridge's own, gone with it
        ip("route", "replace", SERVICE_NET, "dev", self.bridge, "src", str(GATEWAY))

    def add_pod(self, key: str, namespace: str = "default",
                hosts: Callable[[str], str] | None = None) -> PodNet:
        """A fresh namespace with ``lo`` and ``eth0`` up, an address on the bridge and a
        ``resolv.conf`` naming CoreDNS (``ip netns exec`` mounts
        ``/etc/netns/<name>/resolv.conf`` over ``/etc/resolv.conf``), as kubelet writes it
        for ``dnsPolicy: ClusterFirst``; ``hosts(address)``: the pod's ``/etc/hosts`` (the
        same way, over the host's)."""
        with self._lock:
            index = self._free.pop(0) if self._free else self._next
            if index == self._next:
                self._next += 1
        if index >= POD_NET.num_addresses - 1:
            raise NetworkError("no pod address left in 198.18.0.0/16")
        address = str(POD_NET.network_address + index)
        net = PodNet(f"{netns_prefix(self.run_id)}{index:x}", f"hxv{self.run_id}{index:x}",
                     address)
        ip("netns", "add", net.netns)
        etc = Path("/etc/netns") / net.netns
        etc.mkdir(parents=True, exist_ok=True)
        d = CLUSTER_DOMAIN
        (etc / "resolv.conf").write_text(
            f"search {namespace}.svc.{d} svc.{d} {d}\nnameserver {DNS_IP}\noptions ndots:5\n")
        if hosts is not None:
            (etc / "hosts").write_text(hosts(address))
        try:
            ip("link", "add", net.veth, "type", "veth", "peer", "name", "eth0", "netns",
               net.netns)
            ip("link", "set", net.veth, "master", self.bridge, "up")
            # a pod reaching itself through its Service: kube-proxy's DNAT sends the
            # frame back out of the port it came in on (kubelet sets this too)
            ip("link", "set", "dev", net.veth, "type", "bridge_slave", "hairpin", "on")
            for args in (("addr", "add", f"{address}/{POD_NET.prefixlen}", "dev", "eth0"),
                         ("link", "set", "lo", "up"), ("link", "set", "eth0", "up"),
                         ("route", "add", SERVICE_NET, "via", str(GATEWAY))):
                ip("-n", net.netns, *args)
        except NetworkError:
            _del_netns(net.netns)
            raise
        with self._lock:
            self.pods[key] = net
        return net

    def remove_pod(self, key: str) -> None:
        with self._lock:
            net = self.pods.pop(key, None)
        if net is None:
            return
        # the pair first: 'ip netns del' only unmounts the namespace, which (with its
        # eth0, and so the host end) lives on while anything still refers to it
        ip("link", "del", net.veth, check=False)
        _del_netns(net.netns)
        with self._lock:
            self._free.append(int(net.netns.rsplit("-", 1)[1], 16))

    def teardown(self) -> None:
        for key in list(self.pods):
            self.remove_pod(key)
        sweep_run(self.run_id)


def _del_netns(name: str) -> None:
    ip("netns", "del", name, check=False)   # takes its veth pair with it
    shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)


def run_netns(run_id: str) -> list[str]:
    out = ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines()
            if line.startswith(netns_prefix(run_id))]


def run_links(run_id: str) -> list[str]:
    """The host ends of the run's pod veth pairs (``hxv<run><n>``) still on the host."""
    out = ip("-o", "link", "show", check=False).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()
             if line.count(":") >= 2]
    return [name for name in names if name.startswith(f"hxv{run_id}")]


def sweep_run(run_id: str) -> list[str]:
    """Remove every namespace and link of ``run_id``, and the unreachable route when no
    other run's bridge is left; returns what was removed."""
    removed = []
    for ns in run_netns(run_id):
        _del_netns(ns)
        removed.append(f"netns {ns}")
    for link in run_links(run_id):
        ip("link", "del", link, check=False)
        removed.append(f"link {link}")
    if ip("link", "show", bridge_name(run_id), check=False).returncode == 0:
        ip("link", "del", bridge_name(run_id), check=False)
        removed.append(f"link {bridge_name(run_id)}")
    if not run_bridges():
        if ip("route", "del", "unreachable", str(RESERVED_NET), "metric",
              str(UNREACHABLE_METRIC), check=False).returncode == 0:
            removed.append(f"route unreachable {RESERVED_NET}")
        removed += remove_kube_proxy_tables()
    return removed


def remove_kube_proxy_tables() -> list[str]:
    """kube-proxy's nftables tables (upstream names them ``kube-proxy``; it leaves them on
    exit). Only called when no run's bridge is left, so no live cluster needs them."""
    removed = []
    if shutil.which("nft") is None:
        return removed
    for family in ("ip", "ip6"):
        proc = subprocess.run(["nft", "delete", "table", family, "kube-proxy"],
                              capture_output=True, check=False)
        if proc.returncode == 0:
            removed.append(f"nftables table {family} kube-proxy")
    return removed


def run_bridges() -> list[str]:
    out = ip("-br", "link", "show", "type", "bridge", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith("hxb")]


def runs_on_host() -> set[str]:
    """Run ids that have a bridge or a pod namespace on this host."""
    runs = {b[3:] for b in run_bridges()}
    out = ip("netns", "list", check=False).stdout
    runs |= {line.split()[0][3:].split("-")[0] for line in out.splitlines()
             if line.startswith("hxp")}
    return runs


def bridge_owner(run_id: str) -> int:
    """The pid recorded on the run's bridge (0 when there is no bridge or no record)."""
    out = ip("-d", "link", "show", bridge_name(run_id), check=False).stdout
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("alias " + OWNER_ALIAS):
            try:
                return int(line.removeprefix("alias " + OWNER_ALIAS))
            except ValueError:
                return 0
    return 0
