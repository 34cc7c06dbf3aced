"""The cluster a conformance session runs against.

:func:`open_cluster` gives a :class:`ClusterHandle` for ``--cluster``:

* ``local`` with ``--kubeconfig``: an emulated cluster that is already running (``harness
  cluster up --local``, started once by ``harness conformance`` and shared by every
  pytest-xdist worker);
* ``local`` without: a :class:`~harness.emulator.local_cluster.LocalCluster` started in this
  process (one per worker under xdist) and stopped by :meth:`ClusterHandle.close`;
* ``kind``: the kind cluster of ``make kind-up`` (context ``kind-harness`` unless
  ``--kube-context``);
* ``upstream``: a running ``harness cluster up --upstream --serving`` (real Kubernetes,
  Knative Serving and KServe; ``--kubeconfig`` required, ``harness conformance --cluster
  upstream`` starts one and passes its kubeconfig and ingress);
* ``current``: the kubeconfig's current context (or ``--kube-context``), written to
  only when it is on the allow-list (:class:`harness.kube.safety.Guard`).

Every mode goes through :mod:`harness.kube` with a guard that only lets the run write to
namespaces it created.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.kube.client import Kube
from harness.kube.safety import Guard

MODES = ("local", "kind", "current", "upstream")
KIND_CONTEXT = "kind-harness"


@dataclass
class ClusterHandle:
    """A connected cluster: ``kube`` (client + guard), where to send requests, and what
    started it (``local`` is the in-process emulator, or None)."""

    mode: str
    kube: Kube
    ingress_url: str
    metrics_url: str | None
    profile: str
    local: Any = None
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    metrics_protocol: str = "none"
    gateway: str = ""
    preflight: Any = None  # harness.suite.preflight.Preflight on kind/current

    @property
    def context(self) -> str:
        return self.kube.context

    def node_labels(self) -> dict[str, dict[str, str]]:
        """Node name -> labels (read once, then cached)."""
        if not self.nodes:
            from harness.kube.apply import list_objects
            from harness.kube.resources import NODES

            self.nodes = {n["metadata"]["name"]: dict(n["metadata"].get("labels") or {})
                          for n in list_objects(self.kube, NODES)}
        return self.nodes

    def close(self) -> None:
        try:
            self.kube.close()
        finally:
            if self.local is not None:
                self.local.stop()
                self.local = None


def open_cluster(*, mode: str, profile: str, run_id: str, kubeconfig: str | None = None,
                 context: str | None = None, allowed: list[str] | None = None,
                 ingress_url: str | None = None, workdir: Path | None = None
                 ) -> ClusterHandle:
    """Start or connect to the cluster for ``mode``; UserError (one line) if impossible."""
    if mode not in MODES:
        raise UserError(f"--cluster must be one of {', '.join(MODES)}, not {mode!r}")
    local = None
    if mode == "local" and not kubeconfig:
        from harness.emulator.local_cluster import LocalCluster

        local = LocalCluster(profile=profile).start()
        try:
            path = Path(workdir or local.workdir) / "kubeconfig"
            kubeconfig = str(local.write_kubeconfig(path))
            ingress_url = ingress_url or local.ingress_url
        except BaseException:
            local.stop()
            raise
    if mode == "upstream" and not kubeconfig:
        raise UserError("--cluster upstream needs the --kubeconfig of a running 'harness "
                        "cluster up --upstream --serving' (harness conformance --cluster "
                        "upstream starts one)")
    if mode == "kind" and not context:
        context = KIND_CONTEXT
    try:
        guard = Guard.from_options("", mode=mode, allow=allowed, run_id=run_id)
        kube = Kube.connect(kubeconfig, context, guard=guard)
        kube.guard.context = kube.context
        kube.guard.check_context()
        from harness.kube.knative import (
            autoscaler_metrics_urls,
            ingress_address,
            metrics_protocol,
        )
        from harness.observe.prometheus import first_reachable

        try:
            address = ingress_address(kube, ingress_url)
            ingress = address.url
            metrics = first_reachable(autoscaler_metrics_urls(kube), timeout=1.0)
            protocol = metrics_protocol(kube)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - unreachable API: one line
            raise UserError(f"cannot reach the cluster at {kube.host}: {exc}") from None
        return ClusterHandle(mode, kube, ingress, metrics, profile, local=local,
                             metrics_protocol=protocol, gateway=address.gateway)
    except BaseException:
        if local is not None:
            local.stop()
        raise
