"""Knative Serving and KServe on the upstream cluster, installed as their releases do.

The objects are upstream's own, read from the Go module cache (:mod:`harness.upstream.modcache`),
never copied into the repository; this module only does to them what each release's
tooling does, and sets what the kind bring-up sets:

* **Knative Serving** (``serving-crds.yaml`` then ``serving-core.yaml``): the CRDs of
  ``config/core/300-resources`` with networking's and caching's (the release links them
  in), then every other file of ``config/core`` in ``ko resolve``'s order (a sorted walk),
  with networking's ``config-network`` where the release links it (``configmaps/``).
  ``ko://<import path>`` images become the image names of the node agent's table
  (:func:`image_for`), ``app.kubernetes.io/version: devel`` the release's version (as
  Knative's release script does). ConfigMaps keep upstream's ``_example`` and get the
  kind bring-up's settings (:func:`knative_config`): the profile's ``config-autoscaler``,
  our ingress class and ``example.com`` (``config-network``, ``config-domain``), the
  queue-proxy image and tag resolution skipped (``config-deployment``), the podspec flags
  and Prometheus metrics (``config-features``, ``config-observability``, from
  :mod:`harness.prerequisites`). Knative's webhook makes its own certificate
  (``webhook-certs``) and fills its webhook configurations' ``caBundle``, as upstream.
* **KServe** (``kserve.yaml`` of the release, which is ``kustomize build`` of
  ``config/overlays/...``; no kustomize here): the namespace, ``inferenceservice-config``
  (``:latest`` images -> the release tag, and the kind bring-up's deploy/ingress keys), the
  CRDs of ``config/crd/full``, the RBAC of ``config/rbac``, the manager Deployment and its
  Services, and the webhook configurations, with kustomize's namespace, labels and name
  replacements done here (:func:`kserve_objects`). cert-manager's Certificate is replaced by
  the harness's certificate in Secret ``kserve-webhook-server-cert``
  (:func:`harness.upstream.kserve_cert.kserve_webhook_cert`), its cainjector by the
  ``caBundle`` set here. The manager's ``kube-rbac-proxy`` sidecar (``/metrics`` behind
  authentication) is left out: the image table has no such image; the manager's flags are
  the ones the proxy patch gives it.
* the ``harness-linear`` ClusterServingRuntime (``fixtures/runtimes``).

:class:`Installer` applies them in that order (server-side apply, :mod:`harness.upstream.applier`),
waits for CRDs, webhooks and controllers, prints one line per step and fails with one
:class:`~harness.errors.UserError` naming the component that did not come up, its pods'
states and the tail of their logs.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

import harness.kind.manifests as kind_manifests
from harness.errors import UserError
from harness.prerequisites import (
    FEATURES,
    FEATURES_CONFIGMAP,
    OBSERVABILITY,
    OBSERVABILITY_CONFIGMAP,
    cluster_serving_runtime,
)
from harness.upstream import build, modcache
from harness.upstream.applier import Applier, ApplyError
from harness.upstream.ingress.routes import INGRESS_CLASS  # config-network's class
from harness.upstream.kserve_cert import CertWriteError, kserve_webhook_cert

KNATIVE_NAMESPACE = "knative-serving"
KSERVE_NAMESPACE = "kserve"
KNATIVE_DEPLOYMENTS = ("webhook", "controller", "autoscaler", "activator")
KSERVE_DEPLOYMENT = "kserve-controller-manager"
KSERVE_WEBHOOK_SERVICE = "kserve-webhook-server-service"
KSERVE_CERT_SECRET = "kserve-webhook-server-cert"
KNATIVE_IMAGE_REGISTRY = "gcr.io/knative-releases"
KO = "ko://"
VERSION_LABEL = "app.kubernetes.io/version"
DEPLOY_TIMEOUT_S = 180.0

# the labels kustomize's config/default adds to every KServe object (metadata only)
KSERVE_LABELS = {"app.kubernetes.io/name": "kserve", "app.kubernetes.io/component": "kserve"}
KSERVE_CONFIG = {   # config/ files in the order of kserve.yaml (base, then default)
    "namespace": ("config/base/namespace.yaml",),
    "configmap": ("config/configmap/inferenceservice.yaml",),
    "storagecontainers": ("config/storagecontainers/default.yaml",),
    "rbac": ("config/rbac/service_account.yaml", "config/rbac/role.yaml",
             "config/rbac/role_binding.yaml", "config/rbac/leader_election_role.yaml",
             "config/rbac/leader_election_role_binding.yaml",
             "config/rbac/auth_proxy_role.yaml", "config/rbac/auth_proxy_role_binding.yaml"),
    "manager": ("config/manager/manager.yaml", "config/manager/service.yaml"),
    "webhook": ("config/webhook/manifests.yaml", "config/webhook/service.yaml"),
}
KSERVE_MANAGER_ARGS = ["--metrics-addr=127.0.0.1:8080", "--leader-elect"]
"""``config/default/manager_auth_proxy_patch.yaml``'s manager flags (metrics on loopback)."""


# ---------------------------------------------------------------- images and versions

def knative_release() -> str:
    """Knative Serving's release tag (``v1.21.1``) of ``upstream/versions.yaml``."""
    return str(build.load_versions()["modules"][modcache.SERVING]["release"])


def image_for(ko_path: str) -> str:
    """The image name of an upstream ``ko://`` reference, as the release YAML names it but
    with the release tag in place of the digest: ``ko://knative.dev/serving/cmd/queue`` ->
    ``gcr.io/knative-releases/knative.dev/serving/cmd/queue:v1.21.1``, KServe's manager ->
    ``kserve/kserve-controller:v0.20.0``. These names are entries of
    ``fixtures/nodeagent/images.yaml``."""
    path = ko_path.removeprefix(KO)
    if path.startswith(modcache.SERVING + "/"):
        return f"{KNATIVE_IMAGE_REGISTRY}/{path}:{knative_release()}"
    if path == f"{modcache.KSERVE}/cmd/manager":
        return f"kserve/kserve-controller:{modcache.kserve_version()}"
    raise UserError(f"no image name for upstream's {ko_path}")


def queue_image() -> str:
    return image_for(f"{KO}{modcache.SERVING}/cmd/queue")


def images() -> list[str]:
    """Every image the installed control planes run (for the image table's tests)."""
    return [image_for(f"{KO}{modcache.SERVING}/cmd/{c}") for c in
            ("controller", "autoscaler", "activator", "webhook", "queue")] + \
        [image_for(f"{KO}{modcache.KSERVE}/cmd/manager"),
         # inferenceservice-config's agent: injected into every reference predictor
         # (no storageUri: KServe's model puller)
         f"kserve/agent:{modcache.kserve_version()}"]


def _resolve_ko(node: Any) -> Any:
    """Every ``ko://`` string in a document -> its image name (as ``ko resolve``)."""
    if isinstance(node, dict):
        return {k: _resolve_ko(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_ko(v) for v in node]
    if isinstance(node, str) and node.startswith(KO):
        return image_for(node)
    return node


def _set_version(node: Any, version: str) -> None:
    """``app.kubernetes.io/version: devel`` -> the release (metadata and pod templates)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "labels" and isinstance(v, dict) and v.get(VERSION_LABEL) == "devel":
                v[VERSION_LABEL] = version
            else:
                _set_version(v, version)
    elif isinstance(node, list):
        for v in node:
            _set_version(v, version)


# ---------------------------------------------------------------- Knative Serving

def knative_config(*, autoscaler: dict[str, str] | None = None,
                   ingress_class: str = INGRESS_CLASS) -> dict[str, dict[str, str]]:
    """ConfigMap name -> the keys set over upstream's (which keep their ``_example``)."""
    return {
        "config-autoscaler": dict(autoscaler or {}),
        "config-network": {"ingress-class": ingress_class},
        "config-domain": dict(kind_manifests.domain_patch()["data"]),
        "config-deployment": {"queue-sidecar-image": queue_image(),
                              **kind_manifests.deployment_patch()["data"]},
        FEATURES_CONFIGMAP: dict(FEATURES),
        OBSERVABILITY_CONFIGMAP: dict(OBSERVABILITY),
    }


def _walk(directory: Path) -> list[Path]:
    """YAML files under ``directory`` in Go's ``filepath.Walk`` order (lexical per folder,
    a folder's entries where its name sorts), as ``ko resolve -f config/core`` reads them."""
    out: list[Path] = []
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        if entry.is_dir():
            out += _walk(entry)
        elif entry.suffix in (".yaml", ".yml"):
            out.append(entry)
    return out


def knative_core(config: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """``serving-core.yaml`` without its CRDs (applied first, :func:`modcache.knative_crds`):
    every object of ``config/core`` in order, networking's ``config-network`` among the
    ConfigMaps, images resolved, version labels set, ``config`` applied."""
    mods = modcache.knative_modules()
    core = mods.serving.dir / "config" / "core"
    files = [p for p in _walk(core) if "300-resources" not in p.parts]
    network = mods.networking.dir / "config" / "config-network.yaml"
    at = next(i for i, p in enumerate(files) if p.parent.name == "configmaps")
    files.insert(at, network)   # the release's configmaps/network.yaml -> networking's
    version = knative_release().lstrip("v")
    docs: list[dict[str, Any]] = []
    for path in files:
        mod = mods.networking if path == network else mods.serving
        for doc in modcache.load_docs(mod, str(path.relative_to(mod.dir))):
            doc = _resolve_ko(doc)
            _set_version(doc, version)
            if doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] in config:
                doc.setdefault("data", {}).update(config[doc["metadata"]["name"]])
            docs.append(doc)
    return docs


# ---------------------------------------------------------------- KServe

def _kserve_config_data(data: dict[str, str]) -> dict[str, str]:
    """``inferenceservice-config``: release image tags, the kind bring-up's keys."""
    tag = modcache.kserve_version()
    out = {k: v.replace(":latest\"", f":{tag}\"").replace('"latest"', f'"{tag}"')
           for k, v in data.items()}
    out.update(kind_manifests.kserve_config_patch(
        _kind_versions_deployment_mode())["data"])
    return out


def _kind_versions_deployment_mode() -> str:
    from harness.kind.config import load_versions
    return load_versions().kserve_deployment_mode


def kserve_objects(ca_bundle: bytes | None) -> list[dict[str, Any]]:
    """``kserve.yaml`` of the release as kustomize would build it (see the module
    docstring), CRDs excluded; ``ca_bundle`` (PEM) goes into every webhook's clientConfig."""
    mod = modcache.kserve_module()
    tag = modcache.kserve_version()
    docs: list[dict[str, Any]] = []
    for part, files in KSERVE_CONFIG.items():
        for doc in modcache.load_docs(mod, *files):
            doc.get("metadata", {}).pop("creationTimestamp", None)
            kind = doc.get("kind")
            meta = doc.setdefault("metadata", {})
            if kind not in ("Namespace", "ClusterRole", "ClusterRoleBinding",
                            "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
                            "ClusterStorageContainer"):
                meta["namespace"] = KSERVE_NAMESPACE
            meta.setdefault("labels", {}).update(KSERVE_LABELS)
            for s in doc.get("subjects") or []:
                if s.get("kind") == "ServiceAccount":
                    s["namespace"] = KSERVE_NAMESPACE
            if kind == "ConfigMap":
                doc["data"] = _kserve_config_data(doc.get("data") or {})
            if kind == "ClusterStorageContainer":   # kustomize images: + the release tag
                doc["spec"]["container"]["image"] = f"kserve/storage-initializer:{tag}"
            if kind == "Secret" and part == "manager":
                continue   # kserve-webhook-server-secret: unused by the manager (kept out)
            if kind == "Deployment":
                _kserve_manager(doc)
            if kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
                for hook in doc.get("webhooks") or []:
                    svc = hook["clientConfig"]["service"]
                    svc["name"], svc["namespace"] = KSERVE_WEBHOOK_SERVICE, KSERVE_NAMESPACE
                    if ca_bundle:
                        hook["clientConfig"]["caBundle"] = base64.b64encode(
                            ca_bundle).decode()
            docs.append(doc)
    return docs


def _kserve_manager(doc: dict[str, Any]) -> None:
    for c in doc["spec"]["template"]["spec"]["containers"]:
        if c["name"] == "manager":
            c["image"] = image_for(c["image"])
            c["args"] = list(KSERVE_MANAGER_ARGS)
            c["resources"] = {"limits": {"cpu": "100m", "memory": "300Mi"},
                              "requests": {"cpu": "100m", "memory": "200Mi"}}
            c["imagePullPolicy"] = "IfNotPresent"


# ---------------------------------------------------------------- install

class Installer:
    """Apply Knative Serving, then KServe, then our runtime, waiting for each to run."""

    def __init__(self, client: httpx.Client, *, out: Callable[[str], None],
                 autoscaler: dict[str, str] | None = None,
                 ingress_class: str = INGRESS_CLASS,
                 kserve_cert: Callable[[httpx.Client], bytes] = kserve_webhook_cert,
                 timeout_s: float = DEPLOY_TIMEOUT_S) -> None:
        self.client = client
        self.applier = Applier(client)
        self.out = out
        self.autoscaler = autoscaler
        self.ingress_class = ingress_class
        self.kserve_cert = kserve_cert
        self.timeout_s = timeout_s

    def _step(self, what: str, fn: Callable[[], Any]) -> Any:
        started = time.monotonic()
        self.out(f"harness cluster: {what} ...")
        try:
            value = fn()
        except (ApplyError, CertWriteError) as exc:
            raise UserError(f"installing Knative Serving and KServe: {exc}") from None
        self.out(f"harness cluster: {what}: done in {time.monotonic() - started:.1f} s")
        return value

    def _apply(self, docs: Iterable[dict[str, Any]]) -> int:
        return self.applier.apply_all(docs)

    def install_crds(self) -> None:
        """Both products' CRDs, Established (usable on their own, e.g. by a test)."""
        crds = [*modcache.knative_crds(), *modcache.kserve_crds()]
        self._step(f"{len(crds)} CRDs of Knative Serving {knative_release()} and KServe "
                   f"{modcache.kserve_version()}", lambda: (self._apply(crds),
                                                            self.applier.wait_established(crds)))

    def install_knative(self) -> None:
        config = knative_config(autoscaler=self.autoscaler, ingress_class=self.ingress_class)
        docs = knative_core(config)
        self._step(f"Knative Serving core ({len(docs)} objects)", lambda: self._apply(docs))
        for name in KNATIVE_DEPLOYMENTS:
            self._step(f"Knative {name} Ready",
                       lambda n=name: self.wait_deployment(KNATIVE_NAMESPACE, n))
        self._step("Knative's webhook configurations have their CA bundle",
                   self._wait_knative_webhooks)

    def install_kserve(self) -> None:
        self._step("the kserve namespace", lambda: self._apply(
            modcache.load_docs(modcache.kserve_module(), *KSERVE_CONFIG["namespace"])))
        ca = self._step(f"KServe's webhook certificate (Secret {KSERVE_CERT_SECRET}, as "
                        "cert-manager makes it)", lambda: self.kserve_cert(self.client))
        docs = kserve_objects(ca)
        self._step(f"KServe {modcache.kserve_version()} ({len(docs)} objects)",
                   lambda: self._apply(docs))
        self._step(f"KServe {KSERVE_DEPLOYMENT} Ready",
                   lambda: self.wait_deployment(KSERVE_NAMESPACE, KSERVE_DEPLOYMENT))
        runtime = cluster_serving_runtime()
        self._step(f"ClusterServingRuntime {runtime['metadata']['name']}",
                   lambda: self._apply_retrying(runtime))

    def install(self) -> None:
        self.install_crds()
        self.install_knative()
        self.install_kserve()

    def _apply_retrying(self, doc: dict[str, Any], timeout: float = 60.0) -> None:
        """Apply through a webhook that may answer only moments after its pod is Ready
        (its Service's endpoints and kube-proxy's rules follow)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.applier.apply(doc)
                return
            except ApplyError as exc:
                if time.monotonic() > deadline or "webhook" not in str(exc):
                    raise
                time.sleep(1.0)

    def _wait_knative_webhooks(self) -> None:
        names = [("mutatingwebhookconfigurations", "webhook.serving.knative.dev"),
                 ("validatingwebhookconfigurations", "validation.webhook.serving.knative.dev"),
                 ("validatingwebhookconfigurations", "config.webhook.serving.knative.dev")]

        def ready() -> bool:
            for plural, name in names:
                obj = self.applier.get(
                    f"/apis/admissionregistration.k8s.io/v1/{plural}/{name}") or {}
                if not all(h.get("clientConfig", {}).get("caBundle")
                           for h in obj.get("webhooks") or [{}]):
                    return False
            return True

        self._until(ready, "Knative's webhook (caBundle of its webhook configurations)",
                    KNATIVE_NAMESPACE, "webhook")

    # ------------------------------------------------------------ waiting

    def wait_deployment(self, namespace: str, name: str) -> None:
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"

        def ready() -> bool:
            d = self.applier.get(path) or {}
            st = d.get("status") or {}
            want = (d.get("spec") or {}).get("replicas", 1)
            return st.get("observedGeneration", -1) >= d.get("metadata", {}).get(
                "generation", 0) and st.get("readyReplicas", 0) >= want and \
                st.get("updatedReplicas", 0) >= want

        self._until(ready, f"Deployment {namespace}/{name}", namespace, name)

    def _until(self, ready: Callable[[], bool], what: str, namespace: str,
               deployment: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not ready():
            if time.monotonic() > deadline:
                raise UserError(f"{what} did not become ready within {self.timeout_s:.0f} s"
                                f"{self.diagnose(namespace, deployment)}")
            time.sleep(0.5)

    def diagnose(self, namespace: str, deployment: str, lines: int = 8) -> str:
        """The deployment's pods: phase, waiting/terminated reasons, last log lines."""
        d = self.applier.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/"
                             f"{deployment}") or {}
        labels = ((d.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        sel = ",".join(f"{k}={v}" for k, v in labels.items())
        r = self.client.get(f"/api/v1/namespaces/{namespace}/pods",
                            params={"labelSelector": sel} if sel else None)
        pods = r.json().get("items", []) if r.status_code == 200 else []
        if not pods:
            return f"; no pod of {namespace}/{deployment} exists"
        out = []
        for pod in pods:
            name = pod["metadata"]["name"]
            st = pod.get("status") or {}
            states = []
            for cs in st.get("containerStatuses") or []:
                for key, val in (cs.get("state") or {}).items():
                    detail = val.get("reason") or ""
                    if val.get("message"):
                        detail += f" ({val['message'][:200]})"
                    states.append(f"{cs['name']} {key} {detail}".strip())
                if cs.get("restartCount"):
                    states.append(f"{cs['name']} restarted {cs['restartCount']}x")
            conds = [c.get("message") for c in st.get("conditions") or []
                     if c.get("status") != "True" and c.get("message")]
            out.append(f"pod {name}: {st.get('phase')}; " + "; ".join(states + conds))
            for c in (pod.get("spec") or {}).get("containers") or []:
                for previous in ("false", "true"):
                    lr = self.client.get(f"/api/v1/namespaces/{namespace}/pods/{name}/log",
                                         params={"container": c["name"],
                                                 "tailLines": str(lines),
                                                 "previous": previous})
                    if lr.status_code == 200 and lr.text.strip():
                        tag = " (previous)" if previous == "true" else ""
                        out.append(f"--- {c['name']}{tag} log:\n{lr.text.rstrip()}")
                        break
        return ":\n" + "\n".join(out)

