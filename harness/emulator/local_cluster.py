"""The whole local cluster: API server + KServe/Knative/KPA/Deployment/scheduler/kubelet
controllers + the ingress + the autoscaler's metrics endpoint, started and stopped as one.

``with LocalCluster(profile="fast") as c:`` gives ``c.url`` (Kubernetes API),
``c.ingress_url`` (send requests with ``Host: <isvc>-predictor.<ns>.example.com``),
``c.metrics_url`` (Prometheus text), ``c.store`` and ``c.write_kubeconfig(path)``. The
API server runs on its own thread (:class:`~harness.emulator.api.process.Emulator`); the
controllers and the ingress share a second thread's event loop. Leaving the block, or
:meth:`LocalCluster.stop`, stops every model-server process (SIGTERM, then SIGKILL of
its process group), closes every port and joins both threads. :func:`serve` runs it in
the foreground for ``harness cluster up --local`` until SIGINT/SIGTERM.

The cluster publishes what a real one would: ``config-autoscaler`` in
``knative-serving`` (from ``profile``; empty = Knative defaults), ``config-domain``,
``config-network`` (Kourier as ingress class), and the ingress as the LoadBalancer Service
``kourier`` in ``kourier-system`` whose ``status.loadBalancer.ingress[0]`` holds 127.0.0.1
and whose port is the ingress's, and the activator (which lives in the ingress) as
``activator-service`` in ``knative-serving`` with Endpoints at that address: the public
Endpoints of a revision in Proxy mode are these.
It starts as ``harness cluster up --kind`` leaves a cluster (:mod:`harness.prerequisites`):
``config-features`` with the three podspec flags enabled (``features``; Knative's webhook,
:mod:`harness.emulator.admission`, reads it live), ``config-observability`` with
``metrics-protocol: prometheus`` (``observability``; read once at start, as Knative's
autoscaler does: anything else and no metrics endpoint listens) and the
``ClusterServingRuntime`` for ``harness-linear`` (``runtime=False`` leaves it out).

``mutations`` names misbehaviours from :mod:`harness.emulator.mutations` (each breaks one
documented claim); ``c.truth`` is the in-process log of true transition instants
(:mod:`harness.emulator.truth`).
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from harness.emulator.admission import install as install_webhook
from harness.emulator.api.process import Emulator, run_until_signal
from harness.emulator.api.store import Store
from harness.emulator.cluster_config import ClusterConfig
from harness.emulator.controllers.base import Controller
from harness.emulator.controllers.deployments import DeploymentController
from harness.emulator.controllers.endpoints import EndpointsController
from harness.emulator.controllers.knative import DEFAULT_DOMAIN, KnativeController
from harness.emulator.controllers.kpa import KPAController
from harness.emulator.controllers.kserve import KServeController
from harness.emulator.controllers.kubelet import Kubelet
from harness.emulator.controllers.scheduler import Scheduler
from harness.emulator.controllers.sks import ServerlessServiceController
from harness.emulator.dataplane.ingress import Ingress
from harness.emulator.dataplane.metrics import MetricsServer
from harness.emulator.loopthread import LoopThread
from harness.emulator.mutations import Mutations
from harness.emulator.truth import TruthLog
from harness.objects import INGRESS_PROVIDER_LABEL
from harness.prerequisites import (
    FEATURES,
    FEATURES_CONFIGMAP,
    METRICS_PROTOCOL,
    OBSERVABILITY,
    OBSERVABILITY_CONFIGMAP,
    cluster_serving_runtime,
)
from harness.profiles import load_profile

KOURIER_INGRESS_CLASS = "kourier.ingress.networking.knative.dev"
_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 30.0


def profile_config(profile: str | Path | None) -> dict[str, str]:
    """The ``config-autoscaler`` data of a shipped profile name or path ({} for None)."""
    if profile is None:
        return {}
    return {str(k): str(v) for k, v in load_profile(profile).config.items()}


def publish_cluster_objects(store: Store, *, config: dict[str, str], domain: str,
                            ingress_port: int, metrics_port: int,
                            features: dict[str, str] | None = None,
                            observability: dict[str, str] | None = None,
                            runtime: bool = False) -> None:
    for ns in ("knative-serving", "kserve", "kourier-system"):
        if store.try_get("namespaces", ns) is None:
            store.create("namespaces", {"metadata": {"name": ns}})
    store.create("configmaps", {"metadata": {"name": "config-autoscaler"}, "data": config},
                 namespace="knative-serving")
    for name, data in ((FEATURES_CONFIGMAP, features), (OBSERVABILITY_CONFIGMAP, observability)):
        if data is not None:
            store.create("configmaps", {"metadata": {"name": name}, "data": dict(data)},
                         namespace="knative-serving")
    if runtime:
        store.create("serving.kserve.io/clusterservingruntimes", cluster_serving_runtime())
    store.create("configmaps", {"metadata": {"name": "config-domain"},
                                "data": {domain: ""}}, namespace="knative-serving")
    store.create("configmaps", {"metadata": {"name": "config-network"},
                                "data": {"ingress-class": KOURIER_INGRESS_CLASS}},
                 namespace="knative-serving")
    store.create("services", {
        "metadata": {"name": "autoscaler", "labels": {"app": "autoscaler"}},
        "spec": {"type": "ClusterIP", "ports": [{"name": "metrics", "port": metrics_port,
                                                 "targetPort": metrics_port}]}},
        namespace="knative-serving")
    store.create("services", {
        "metadata": {"name": "activator-service", "labels": {"app": "activator"}},
        "spec": {"type": "ClusterIP", "selector": {"app": "activator"},
                 "ports": [{"name": "http", "port": 80, "targetPort": ingress_port,
                            "protocol": "TCP"}]}}, namespace="knative-serving")
    store.create("endpoints", {
        "metadata": {"name": "activator-service", "labels": {"app": "activator"}},
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                     "ports": [{"name": "http", "port": ingress_port, "protocol": "TCP"}]}]},
        namespace="knative-serving")
    svc = store.create("services", {
        "metadata": {"name": "kourier", "labels": {INGRESS_PROVIDER_LABEL:
                                                   "kourier"}},
        "spec": {"type": "LoadBalancer",
                 "ports": [{"name": "http2", "port": ingress_port, "protocol": "TCP",
                            "targetPort": ingress_port}]}}, namespace="kourier-system")
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}
    store.update("services", svc, namespace="kourier-system", subresource="status")


def _closed_port() -> int:
    """A port nothing listens on (the autoscaler Service's metrics port without metrics)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalCluster:
    """The emulated cluster with every controller; a context manager."""

    def __init__(self, *, cluster: ClusterConfig | str | Path | None = None,
                 profile: str | Path | None = None, config: dict[str, str] | None = None,
                 port: int = 0, workdir: str | Path | None = None,
                 s3_endpoint: str | None = None, pvc_root: str | Path | None = None,
                 domain: str = DEFAULT_DOMAIN, activator_timeout: float = 60.0,
                 startup_delay_s: float = 0.0, ignore_affinity: bool = False,
                 mutations: Iterable[str] = (), features: dict[str, str] | None = None,
                 observability: dict[str, str] | None = None, runtime: bool = True) -> None:
        self.mutations = Mutations(mutations)
        self.truth = TruthLog()
        self.config = self.mutations.config(
            dict(config) if config is not None else profile_config(profile))
        self.emulator = Emulator(cluster=cluster, port=port, graceful_pods=True)
        self.store = self.emulator.store
        self.features = dict(FEATURES if features is None else features)
        self.observability = dict(OBSERVABILITY if observability is None else observability)
        self.runtime = runtime
        install_webhook(self.store)
        self.domain = domain
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="hx-pods-"))
        self.emulator.pod_logs_root = self.workdir
        self.ingress = Ingress("127.0.0.1", 0, activator_timeout=activator_timeout)
        self.kpa = KPAController(self.store, ingress=self.ingress)
        self.ingress.on_first_request = self.kpa.on_first_request
        self.kubelet = Kubelet(self.store, workdir=self.workdir, s3_endpoint=s3_endpoint,
                               pvc_root=pvc_root, startup_delay_s=startup_delay_s)
        self.scheduler = Scheduler(self.store, ignore_affinity=ignore_affinity
                                   or self.mutations.ignore_affinity)
        deployments = DeploymentController(self.store)
        # mutation hooks and the ground-truth log
        self.kpa.mutations = self.kubelet.mutations = self.mutations
        if "drop-requests" in self.mutations:
            self.ingress.drop_buffered = self.mutations.drop_buffered
        self.kpa.truth = self.kubelet.truth = deployments.truth = self.truth
        self.ingress.truth = self.truth
        self.controllers: list[Controller] = [
            KServeController(self.store),
            KnativeController(self.store, ingress=self.ingress, domain=domain),
            self.kpa, deployments, self.scheduler, self.kubelet,
            EndpointsController(self.store, ingress=self.ingress),
            ServerlessServiceController(self.store, ingress=self.ingress)]
        self.metrics = MetricsServer(self.kpa)
        # read once at start-up, as Knative's autoscaler reads config-observability
        self.metrics_enabled = self.observability.get(METRICS_PROTOCOL, "none") == "prometheus"
        self._thread = LoopThread("the controllers", self._main)

    # ------------------------------------------------------------------ addresses

    @property
    def url(self) -> str:
        return self.emulator.url

    @property
    def ingress_url(self) -> str:
        return self.ingress.url

    @property
    def metrics_url(self) -> str:
        """The autoscaler's metrics endpoint ('' when ``metrics-protocol`` is not
        ``prometheus``: nothing listens then, as on Knative 1.19+)."""
        return self.metrics.url

    def host_for(self, isvc: str, namespace: str) -> str:
        """The Host header that reaches an InferenceService's predictor."""
        return f"{isvc}-predictor.{namespace}.{self.domain}"

    def write_kubeconfig(self, path: str | Path, *, context: str | None = None) -> Path:
        return self.emulator.write_kubeconfig(path, context=context)

    def model_server_pids(self) -> list[int]:
        return self.kubelet.pids()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LocalCluster:
        if self._thread.running:
            raise RuntimeError("the local cluster is already running")
        self.emulator.start()
        try:
            self._thread.start(_START_TIMEOUT_S)
            publish_cluster_objects(self.store, config=self.config, domain=self.domain,
                                    ingress_port=self.ingress.port,
                                    metrics_port=self.metrics.port or _closed_port(),
                                    features=self.features,
                                    observability=self.observability, runtime=self.runtime)
        except BaseException:
            self.stop()
            raise
        return self

    async def _main(self, started: Callable[[], None]) -> None:
        started_parts: list[Any] = []
        try:
            await self.ingress.start()
            started_parts.append(self.ingress)
            if self.metrics_enabled:
                await self.metrics.start()
                started_parts.append(self.metrics)
            for c in self.controllers:
                await c.start()
                started_parts.append(c)
            started()
            await self._thread.until_stopped()
        finally:
            # kubelet first: its processes go before anything else stops
            order = sorted(started_parts, key=lambda o: 0 if o is self.kubelet else 1)
            for obj in order:
                try:
                    await obj.stop()
                except Exception:  # noqa: BLE001 - keep stopping the rest
                    pass

    def stop(self) -> None:
        """Stop controllers (and every model-server process), ingress and API server."""
        try:
            self._thread.stop(_STOP_TIMEOUT_S)
        finally:
            self.emulator.stop()
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(*, cluster: str | Path | None, kubeconfig: str | Path, state_file: str | Path,
          port: int = 0, profile: str | Path | None = None,
          announce: Callable[[LocalCluster], None] | None = None,
          mutations: Iterable[str] = ()) -> int:
    """Run the local cluster until SIGINT or SIGTERM (see
    :func:`~harness.emulator.api.process.run_until_signal`); the state file also names the
    ingress, the metrics endpoint and the mutations."""
    local = LocalCluster(cluster=cluster, port=port, profile=profile, mutations=mutations)
    return run_until_signal(
        local, kubeconfig=kubeconfig, state_file=state_file, announce=announce,
        state=lambda: {"url": local.url, "port": local.emulator.port,
                       "ingress": local.ingress_url, "metrics": local.metrics_url,
                       "context": local.emulator.cluster.name,
                       "mutations": sorted(local.mutations.names)})
