"""The mutation matrix's scenario: record every check's timeline on one emulated cluster.

:func:`record` starts a :class:`~harness.emulator.local_cluster.LocalCluster` with the matrix
profile (:data:`PROFILE`: short windows, low rate limits so they bind, initial scale 0,
a 5 s small-model cold-start claim) and the given mutations, then runs five scenarios at
once, each in its own namespace with its own recorder (watch events + the autoscaler's
panic gauge) and open-loop load records:

* ``panic``: a warm service (30 s stable window, 3 s panic window) under light load for
  longer than the stable window (so stable mode alone is slow) gets a burst needing six
  pods;
* ``scale-rate`` and ``scale-delay``: stable mode only (6 s window, panic threshold
  1000 %), a burst, then a light tail while it scales back to one pod; the first needs
  six pods and so falls faster than max-scale-down-rate 1.1 allows, the second has a 6 s
  scale-down-delay;
* ``fixed``: minReplicas == maxReplicas == 2 under a load that needs 3 pods;
* ``gpu``: one request to the GPU InferenceService (node affinity on Quadro_RTX_5000);
* ``cold``: from zero, a cold request plus a few more, then idle until zero;
* ``rise`` (the real matrix only, :mod:`harness.matrix.upstream`): served once and back
  at zero (its autoscaler has said 0), then a burst needing four pods at
  containerConcurrency 1.

The scenarios run against an :class:`EmulatorTarget` here, or against any cluster's API
through :class:`harness.matrix.kube_target.KubeTarget`.

A :class:`Run` saves to and loads from one gzipped JSON file, so the matrix can be
replayed without a cluster (``tests/test_mutation_matrix_replay.py``); the checks run on it
in :mod:`harness.matrix.evaluation`.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import gzip
import json
import math
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from harness.files import data_path, read_yaml
from harness.objects import AUTOSCALING_PREFIX

GPU_CLASS = "Quadro_RTX_5000"
INFER = "/v2/models/{model}/infer"  # the runtime serves the model under the isvc's name
BODY = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32",
                    "data": [1, 2, 3, 4]}]}
AS = AUTOSCALING_PREFIX

PROFILE: dict[str, Any] = {
    "name": "matrix",
    "description": "The mutation matrix's knobs: short windows, binding rate limits",
    "source": "harness (tests/test_mutation_matrix.py)",
    "config-autoscaler": {
        "stable-window": "10s", "panic-window-percentage": "30",
        "panic-threshold-percentage": "200", "container-concurrency-target-percentage": "85",
        "max-scale-up-rate": "1.5", "max-scale-down-rate": "1.1", "scale-down-delay": "0s",
        "scale-to-zero-pod-retention-period": "10s", "scale-to-zero-grace-period": "3s",
        "initial-scale": "0", "allow-zero-initial-scale": "true",
    },
    "inferenceservice": {"minReplicas": 0, "maxReplicas": 5, "containerConcurrency": 1},
    "claims": {"cold-start-small": {
        "quote": "For small models, this can be as quick as five seconds",
        "unit": "duration", "value": "5s"}},
}


def write_profile(folder: str | Path) -> Path:
    path = Path(folder) / "matrix.yaml"
    path.write_text(yaml.safe_dump(PROFILE, sort_keys=False))
    return path


def _isvc(name: str, *, lo: int, hi: int, cc: int, latency: str,
          annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": name, "annotations": dict(annotations or {})},
        "spec": {"predictor": {
            "minReplicas": lo, "maxReplicas": hi, "containerConcurrency": cc,
            "model": {"modelFormat": {"name": "harness-linear"}, "protocolVersion": "v2",
                      "image": "harness-modelserver:0.1.0",
                      "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                      "env": [{"name": "REQUEST_LATENCY", "value": latency}]},
            "nodeSelector": {"node.kubernetes.io/instance-type": "cpu-large"}}},
    }


def manifests(*, rise: bool = False) -> dict[str, dict[str, Any]]:
    """Scenario name -> its InferenceService (``rise``: with the real matrix's extra
    scenario, :mod:`harness.matrix.upstream`)."""
    gpu = read_yaml(data_path("fixtures", "isvc", "gpu-rtx5000.yaml"))
    extra = {"rise": _isvc("rise", lo=0, hi=5, cc=1, latency="250ms",
                           annotations={AS + "target": "1", AS + "window": "6s"})} \
        if rise else {}
    return {
        "panic": _isvc("panic", lo=0, hi=5, cc=0, latency="250ms", annotations={
            AS + "target": "1", AS + "window": "30s", AS + "panic-window-percentage": "10"}),
        "scale-rate": _isvc("scalerate", lo=0, hi=6, cc=0, latency="250ms", annotations={
            AS + "target": "1", AS + "window": "6s",
            AS + "panic-threshold-percentage": "1000"}),
        "scale-delay": _isvc("scaledelay", lo=0, hi=5, cc=0, latency="250ms", annotations={
            AS + "target": "1", AS + "window": "6s", AS + "scale-down-delay": "6s",
            AS + "panic-threshold-percentage": "1000"}),
        "fixed": _isvc("fixed", lo=2, hi=2, cc=4, latency="500ms",
                       annotations={AS + "target": "2"}),
        "gpu": gpu,
        "cold": _isvc("cold", lo=0, hi=5, cc=1, latency="250ms",
                      annotations={AS + "initial-scale": "0"}),
        **extra,
    }


# ---------------------------------------------------------------------------- a run


@dataclass
class ScenarioRecording:
    """One scenario's recording: watch events, panic gauge samples, load records."""

    scenario: str
    namespace: str
    isvc: dict[str, Any]
    events: list[dict[str, Any]]
    panic: list[tuple[float, float]] | None
    records: pd.DataFrame
    end: float

    @property
    def revision(self) -> str:
        return f"{self.isvc['metadata']['name']}-predictor-00001"

    def frames(self) -> Any:
        from harness.observe.frames import build_frames

        f = build_frames(self.events, revision=self.revision, pa=self.revision,
                         panic_samples=self.panic)
        # the recording lasted until the recorder stopped, not until its last event
        return dataclasses.replace(f, end=max(f.end, self.end)) if self.end == self.end else f


@dataclass
class Run:
    """Everything one matrix configuration recorded."""

    mutations: list[str]
    config: dict[str, str]
    """The cluster's ``config-autoscaler`` data, read back through the API."""
    nodes: dict[str, dict[str, str]]
    timelines: dict[str, ScenarioRecording]
    truth: list[dict[str, Any]] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)
    """Scenarios this configuration shares with the baseline's recording (the real
    matrix: a per-revision mutation changes one scenario's InferenceService only)."""

    def save(self, path: str | Path) -> Path:
        """One gzipped JSON file; the :attr:`shared` scenarios are left out (they are in
        ``baseline.json.gz`` beside it, where :meth:`load` reads them from)."""
        path = Path(path)
        doc = {"mutations": self.mutations, "config": self.config, "nodes": self.nodes,
               **({"shared": self.shared} if self.shared else {}),
               "timelines": {k: {"scenario": t.scenario, "namespace": t.namespace,
                                 "isvc": t.isvc, "events": [_slim(e) for e in t.events],
                                 "panic": t.panic, "end": t.end,
                                 "records": json.loads(t.records.to_json(orient="records"))}
                             for k, t in self.timelines.items() if k not in self.shared}}
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt", encoding="utf-8") as f:
            json.dump(doc, f, separators=(",", ":"))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Run:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            doc = json.load(f)
        tls = {}
        for k, t in doc["timelines"].items():
            recs = pd.DataFrame(t["records"], columns=list(RECORD_COLUMNS))
            tls[k] = ScenarioRecording(t["scenario"], t["namespace"], t["isvc"], t["events"],
                              None if t["panic"] is None else [tuple(x) for x in t["panic"]],
                              recs, float(t["end"]))
        shared = list(doc.get("shared") or [])
        if shared:
            base = cls.load(Path(path).parent / "baseline.json.gz")
            tls.update({k: base.timelines[k] for k in shared})
        return cls(doc["mutations"], doc["config"], doc["nodes"], tls, shared=shared)


RECORD_COLUMNS = ("start", "latency_s", "status", "bytes", "pod", "error")


def _slim(event: dict[str, Any]) -> dict[str, Any]:
    """An event without what the frames never read (managedFields)."""
    obj = copy.deepcopy(event.get("object") or {})
    (obj.get("metadata") or {}).pop("managedFields", None)
    return {"received": event["received"], "type": event.get("type"),
            "kind": event.get("kind"), "object": obj}


# ---------------------------------------------------------------------------- recording


async def _request(client: Any, url: str, host: str, out: list[tuple[Any, ...]]) -> int:
    start = time.time()
    try:
        model = host.split(".", 1)[0].removesuffix("-predictor")
        r = await client.post(url + INFER.format(model=model), json=BODY,
                              headers={"Host": host})
        out.append((start, time.time() - start, r.status_code, len(r.content),
                    r.headers.get("x-pod-name", ""), "" if r.status_code < 400
                    else r.text[:120]))
        return int(r.status_code)
    except Exception as exc:  # noqa: BLE001 - a lost request is a record, not a crash
        out.append((start, time.time() - start, 0, 0, "", f"{type(exc).__name__}: {exc}"))
        return 0


async def _open_loop(client: Any, url: str, host: str, phases: Iterable[tuple[float, float]],
                     out: list[tuple[Any, ...]], stop: asyncio.Event | None = None) -> None:
    """Arrivals at ``rps`` for ``seconds`` per phase (``math.inf`` seconds: until ``stop``)."""
    tasks: list[asyncio.Task[int]] = []
    t = time.monotonic()
    for rps, seconds in phases:
        end = t + seconds
        while t < end and not (stop is not None and stop.is_set()):
            await asyncio.sleep(max(0.0, t - time.monotonic()))
            tasks.append(asyncio.create_task(_request(client, url, host, out)))
            t += 1.0 / rps
            if len(tasks) > 5000:
                break
    await asyncio.gather(*tasks)


def _frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    return df.sort_values("start").reset_index(drop=True) if not df.empty else df


class EmulatorTarget:
    """The scenarios' view of a started :class:`~harness.emulator.local_cluster.LocalCluster`:
    pods and the autoscaler's desired scale read from its store, hosts by its naming rule."""

    poll_s = 0.1
    remote = False
    """Reads go over the network (run them off the event loop)."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.ingress_url = cluster.ingress_url
        self.metrics_url: str | None = cluster.metrics_url + "/metrics"

    def ready_pods(self, ns: str) -> int:
        from harness.emulator.controllers.deployments import pod_ready

        pods = self.cluster.store.list("pods", namespace=ns)["items"]
        return sum(1 for p in pods if pod_ready(p) and not p["metadata"].get(
            "deletionTimestamp"))

    def pods(self, ns: str) -> int:
        return int(self.cluster.store.count("pods", ns))

    def desired(self, ns: str, rev: str) -> int | None:
        pa = self.cluster.store.try_get("autoscaling.internal.knative.dev/podautoscalers",
                                        rev, namespace=ns)
        d = ((pa or {}).get("status") or {}).get("desiredScale")
        return None if d is None else int(d)

    async def routed(self, api: Any, name: str, ns: str) -> str:
        """The Host header of ``name``'s predictor, once the ingress routes it."""
        host = self.cluster.host_for(name, ns)
        deadline = time.monotonic() + 30
        while host not in self.cluster.ingress.routes() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return str(host)


class _Driver:
    """Runs the scenarios against one cluster (an :class:`EmulatorTarget` or a
    :class:`harness.matrix.kube_target.KubeTarget`) through its API client ``api``."""

    def __init__(self, target: Any, api: Any) -> None:
        self.target = target
        self.api = api

    def ready_pods(self, ns: str) -> int:
        return int(self.target.ready_pods(ns))

    def pods(self, ns: str) -> int:
        return int(self.target.pods(ns))

    def desired(self, ns: str, rev: str) -> int | None:
        return self.target.desired(ns, rev)  # type: ignore[no-any-return]

    async def until(self, pred: Any, timeout: float, step: float | None = None) -> bool:
        step = self.target.poll_s if step is None else step
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (await asyncio.to_thread(pred)) if self.target.remote else pred():
                return True
            await asyncio.sleep(step)
        return False

    async def scenario(self, name: str, isvc: dict[str, Any], *,
                       applied: dict[str, Any] | None = None, namespace: str | None = None,
                       after: Iterable[asyncio.Event] = (),
                       cold_done: asyncio.Event | None = None) -> ScenarioRecording:
        """Record scenario ``name`` in ``namespace`` (default ``mx-<name>``). ``isvc`` is
        the claim (what the checks judge against), ``applied`` what is created in the
        cluster (default: the same). It starts once every event of ``after`` is set (at
        most 300 s); a ``cold`` scenario sets ``cold_done`` once its cold requests are
        answered (so the others' pods do not start during its cold start)."""
        import httpx
        from kubernetes import client as k8s

        from harness.observe.recorder import Recorder

        waits = [e.wait() for e in after]
        if waits:
            try:
                await asyncio.wait_for(asyncio.gather(*waits), 300.0)
            except TimeoutError:
                pass
        ns = namespace or f"mx-{name}"
        applied = isvc if applied is None else applied
        core = k8s.CoreV1Api(self.api)
        await asyncio.to_thread(core.create_namespace, {"metadata": {"name": ns}})
        await asyncio.to_thread(
            k8s.CustomObjectsApi(self.api).create_namespaced_custom_object,
            "serving.kserve.io", "v1beta1", ns, "inferenceservices", applied)
        host = await self.target.routed(self.api, applied["metadata"]["name"], ns)
        rev = f"{isvc['metadata']['name']}-predictor-00001"
        url = self.target.ingress_url
        lo = int(applied["spec"]["predictor"].get("minReplicas") or 0)
        rows: list[tuple[Any, ...]] = []
        async with httpx.AsyncClient(timeout=60.0, limits=httpx.Limits(
                max_connections=200, max_keepalive_connections=50)) as client:
            if name in ("panic", "scale-rate", "scale-delay"):  # warm, before recording
                await _request(client, url, host, [])
                # settled at one pod: Knative's scale from zero may ask for two and keep
                # them (panic) for a stable window
                await self.until(lambda: self.ready_pods(ns) == 1
                                 and self.desired(ns, rev) == 1, 60)
                await asyncio.sleep(0.5)
            elif name == "rise":   # served once, then back at zero: a PA that said 0
                await _request(client, url, host, [])
                await self.until(lambda: self.desired(ns, rev) == 0
                                 and self.pods(ns) == 0, 60)
            elif name == "fixed":
                await self.until(lambda: self.ready_pods(ns) >= lo, 45)
            rec = Recorder(self.api, ns, metrics_url=self.target.metrics_url,
                           metrics_interval_s=0.5).start()
            try:
                await asyncio.sleep(0.5)
                if name == "panic":
                    # a full stable window of light load first, so stable mode alone
                    # would be slow to react (no partial-window average), then 6x
                    await _open_loop(client, url, host, [(0.5, 32), (24, 10)], rows)
                    await asyncio.sleep(2.0)
                elif name in ("scale-rate", "scale-delay"):
                    stop = asyncio.Event()
                    # plateaus mid-way between whole pods (need 6.7 and 2.8)
                    burst = (22, 12) if name == "scale-rate" else (9, 8)
                    load = asyncio.create_task(_open_loop(
                        client, url, host, [(1, 2), burst, (1, math.inf)], rows, stop))
                    await asyncio.sleep(2.0 + burst[1] + 2.0)
                    await self.until(lambda: self.desired(ns, rev) == 1
                                     and self.ready_pods(ns) == 1, 60)
                    await asyncio.sleep(2.0)
                    stop.set()
                    await load
                elif name == "fixed":
                    await _open_loop(client, url, host, [(9, 13)], rows)  # needs 2.7
                    await asyncio.sleep(1.0)
                elif name == "gpu":
                    await _request(client, url, host, rows)
                    await asyncio.sleep(1.0)
                elif name == "rise":
                    # from zero again, a burst needing 4 pods at containerConcurrency 1
                    await _open_loop(client, url, host, [(16, 10)], rows)
                    await asyncio.sleep(2.0)
                elif name == "cold":
                    async def at(delay: float) -> None:
                        await asyncio.sleep(delay)
                        await _request(client, url, host, rows)

                    await asyncio.gather(*(at(d) for d in (0.0, 0.3, 1.5, 3.0)))
                    if cold_done is not None:
                        cold_done.set()
                    last = time.monotonic()
                    # zero by ~25 s; 40 s for a slow cold start's Active-for-a-window gate
                    await self.until(lambda: self.pods(ns) == 0
                                     and self.desired(ns, rev) == 0, 40.0)
                    left = last + 40.0 - time.monotonic()
                    await asyncio.sleep(1.0 if self.pods(ns) == 0 else max(0.0, left))
            finally:
                recording = (await asyncio.to_thread(rec.stop)) if self.target.remote \
                    else rec.stop()
        return ScenarioRecording(name, ns, isvc, recording.events, recording.panic_samples(rev),
                        _frame(rows), recording.end)


def record(mutations: Iterable[str] = (), *, scenarios: Iterable[str] | None = None,
           truth: bool = False) -> Run:
    """Start a cluster with ``mutations``, run the scenarios, stop it; the recorded run."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    from harness.emulator.local_cluster import LocalCluster

    names = list(mutations)
    wanted = manifests()
    if scenarios is not None:
        wanted = {k: v for k, v in wanted.items() if k in set(scenarios)}
    with tempfile.TemporaryDirectory(prefix="hx-matrix-") as tmp:
        profile = write_profile(tmp)
        cluster = LocalCluster(profile=profile, mutations=names)
        with cluster:
            kubeconfig = cluster.write_kubeconfig(Path(tmp) / "kubeconfig")
            api = k8s_config.new_client_from_config(config_file=str(kubeconfig))
            try:
                driver = _Driver(EmulatorTarget(cluster), api)

                async def main() -> list[ScenarioRecording]:
                    return list(await asyncio.gather(
                        *(driver.scenario(k, v) for k, v in wanted.items())))

                timelines = asyncio.run(main())
                cm = k8s.CoreV1Api(api).read_namespaced_config_map(
                    "config-autoscaler", "knative-serving")
                nodes = {n.metadata.name: dict(n.metadata.labels or {})
                         for n in k8s.CoreV1Api(api).list_node().items}
            finally:
                api.close()
            log = [{"time": e.time, "kind": e.kind, "namespace": e.namespace,
                    "name": e.name, **e.data} for e in cluster.truth.events()] if truth else []
    return Run(names, dict(cm.data or {}), nodes, {t.scenario: t for t in timelines}, log)
