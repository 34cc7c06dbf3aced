"""Knative Serving and KServe on the live upstream cluster, installed by
:mod:`harness.upstream.serving` from upstream's own YAML in the Go module cache.

The parts that need no controller (CRDs, namespaces, RBAC, ConfigMaps) on the bare
cluster: the CRDs are served with their real schemas, the controllers' ServiceAccounts get
exactly upstream's permissions.
"""

from __future__ import annotations

import base64
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness.upstream import modcache, serving
from harness.upstream.applier import Applier

BASE_KINDS = {"Namespace", "ServiceAccount", "Role", "ClusterRole", "RoleBinding",
              "ClusterRoleBinding", "ConfigMap", "Secret", "Image", "ClusterStorageContainer"}


@pytest.fixture(scope="module")
def admin(upstream: Any) -> Iterator[httpx.Client]:
    """An admin client from the cluster's kubeconfig (embedded certificates)."""
    config = yaml.safe_load(Path(upstream.kubeconfig).read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    with tempfile.TemporaryDirectory() as d:
        files = {}
        for key in ("certificate-authority-data", "client-certificate-data",
                    "client-key-data"):
            source = cluster if key.startswith("certificate-authority") else user
            files[key] = Path(d) / key
            files[key].write_bytes(base64.b64decode(source[key]))
        tls = ssl.create_default_context(cafile=str(files["certificate-authority-data"]))
        tls.load_cert_chain(str(files["client-certificate-data"]),
                            str(files["client-key-data"]))
        with httpx.Client(base_url=cluster["server"], verify=tls, timeout=30.0) as client:
            yield client


def can_i(upstream: Any, verb: str, resource: str, who: str, *extra: str) -> bool:
    proc = upstream.kubectl("auth", "can-i", verb, resource, f"--as={who}", *extra,
                            check=False)
    return proc.stdout.strip() == "yes"


def test_crds_rbac_and_configmaps_on_the_bare_cluster(upstream: Any,
                                                      admin: httpx.Client) -> None:
    lines: list[str] = []
    installer = serving.Installer(admin, out=lines.append,
                                  autoscaler={"stable-window": "60s"})
    installer.install_crds()
    assert any("CRDs of Knative Serving v1.21.1 and KServe v0.20.0: done" in line
               for line in lines), lines
    served = {c["metadata"]["name"] for c in upstream.json("get", "crd")["items"]}
    want = {c["metadata"]["name"] for c in [*modcache.knative_crds(), *modcache.kserve_crds()]}
    assert want <= served

    config = serving.knative_config(autoscaler={"stable-window": "60s"})
    base = [d for d in [*serving.knative_core(config), *serving.kserve_objects(None)]
            if d["kind"] in BASE_KINDS]
    assert Applier(admin).apply_all(base) == len(base)

    cm = upstream.json("get", "configmap", "-n", "knative-serving", "config-autoscaler")
    assert cm["data"]["stable-window"] == "60s" and "_example" in cm["data"]
    assert cm["metadata"]["labels"]["app.kubernetes.io/version"] == "1.21.1"
    isvc_config = upstream.json("get", "configmap", "-n", "kserve", "inferenceservice-config")
    assert '"defaultDeploymentMode": "Knative"' in isvc_config["data"]["deploy"]

    # upstream's RBAC, as the API server's authorizer reads it
    knative = "system:serviceaccount:knative-serving:controller"
    assert can_i(upstream, "create", "deployments.apps", knative, "-n", "anywhere")
    assert can_i(upstream, "update", "podautoscalers.autoscaling.internal.knative.dev/status",
                 knative, "-n", "anywhere")
    kserve = "system:serviceaccount:kserve:kserve-controller-manager"
    assert can_i(upstream, "update", "inferenceservices.serving.kserve.io/status", kserve,
                 "-n", "anywhere")
    assert can_i(upstream, "create", "services.serving.knative.dev", kserve, "-n", "anywhere")
    assert not can_i(upstream, "delete", "nodes", kserve)
    activator = "system:serviceaccount:knative-serving:activator"
    assert not can_i(upstream, "create", "deployments.apps", activator, "-n", "anywhere")


def test_crd_schemas_validate_on_the_server(upstream: Any, admin: httpx.Client) -> None:
    """The real CRDs' schemas: a Knative Ingress with a misspelt field is refused with the
    API server's words, a well-formed one accepted (server dry run)."""
    ingress = {"apiVersion": "networking.internal.knative.dev/v1alpha1", "kind": "Ingress",
               "metadata": {"name": "probe", "namespace": "default"},
               "spec": {"rules": [{"hosts": ["probe.default.example.com"],
                                   "visibility": "ExternalIP",
                                   "http": {"paths": [{"splits": [{
                                       "serviceName": "probe", "serviceNamespace": "default",
                                       "servicePort": 80, "percent": 100}]}]}}]}}
    ok = upstream.kubectl("apply", "--dry-run=server", "-f", "-",
                          input=yaml.safe_dump(ingress), check=False)
    assert ok.returncode == 0, ok.stderr
    ingress["spec"]["rules"][0]["visibilty"] = "ExternalIP"
    bad = upstream.kubectl("apply", "--dry-run=server", "-f", "-",
                           input=yaml.safe_dump(ingress), check=False)
    assert bad.returncode != 0
    assert 'unknown field "spec.rules[0].visibilty"' in bad.stderr

