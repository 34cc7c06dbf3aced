"""The manifests and patches the kind bring-up makes itself (everything else is pinned YAML).

* :func:`config_autoscaler` turns a profile (``fixtures/profiles/<name>.yaml``, read with
  :func:`harness.profiles.load_profile`) into the ``config-autoscaler`` ConfigMap in
  ``knative-serving``, values as strings the way a ConfigMap holds them;
* merge patches for Knative's ``config-network`` (Kourier as the ingress class),
  ``config-domain`` (``example.com``, so routes are reachable through Kourier with a
  Host header, as on the emulator) and ``config-deployment`` (skip tag resolution for
  Docker Hub names, so the ``kind load``-ed model-server image is used as is);
* the merge patch for KServe's ``inferenceservice-config`` (default deployment mode
  Knative, no Istio VirtualService since the ingress is Kourier);
* the JSON patch that puts a fake ``nvidia.com/gpu`` capacity on a node's status.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.profiles import load_profile

KNATIVE_NAMESPACE = "knative-serving"
KOURIER_NAMESPACE = "kourier-system"
KSERVE_NAMESPACE = "kserve"
CERT_MANAGER_NAMESPACE = "cert-manager"
KOURIER_INGRESS_CLASS = "kourier.ingress.networking.knative.dev"
DOMAIN = "example.com"
SKIP_TAG_RESOLVING = "kind.local,ko.local,dev.local,index.docker.io"


def _config_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def config_autoscaler(profile: str | Path) -> dict[str, Any]:
    """The profile's ``config-autoscaler`` section as a ConfigMap manifest."""
    loaded = load_profile(profile)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "config-autoscaler",
            "namespace": KNATIVE_NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "harness"},
            "annotations": {"harness.kserve.dev/profile": loaded.name},
        },
        "data": {str(k): _config_value(v) for k, v in loaded.config.items()},
    }


def network_patch() -> dict[str, Any]:
    return {"data": {"ingress-class": KOURIER_INGRESS_CLASS}}


def domain_patch() -> dict[str, Any]:
    return {"data": {DOMAIN: ""}}


def deployment_patch() -> dict[str, Any]:
    return {"data": {"registries-skipping-tag-resolving": SKIP_TAG_RESOLVING}}


def kserve_config_patch(deployment_mode: str) -> dict[str, Any]:
    """``inferenceservice-config``: the deployment mode and a Kourier-friendly ingress.

    A merge patch replaces a data key whole, so ``ingress`` is written out in full
    (KServe's documented keys and defaults), with ``disableIstioVirtualHost`` true:
    with Kourier there is no Istio, and the Knative route is the way in.
    """
    ingress = {
        "enableGatewayApi": False,
        "kserveIngressGateway": "kserve/kserve-ingress-gateway",
        "ingressGateway": "knative-serving/knative-ingress-gateway",
        "localGateway": "knative-serving/knative-local-gateway",
        "localGatewayService": "knative-local-gateway.istio-system.svc.cluster.local",
        "ingressDomain": DOMAIN,
        "ingressClassName": "istio",
        "domainTemplate": "{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}",
        "urlScheme": "http",
        "disableIstioVirtualHost": True,
        "disableIngressCreation": False,
    }
    return {"data": {
        "deploy": json.dumps({"defaultDeploymentMode": deployment_mode}),
        "ingress": json.dumps(ingress),
    }}


def gpu_capacity_patch(count: int) -> list[dict[str, Any]]:
    """JSON patch for the node ``status`` subresource (``~1`` escapes the ``/``)."""
    return [{"op": "add", "path": "/status/capacity/nvidia.com~1gpu", "value": str(count)}]


def dumps(patch: Any) -> str:
    """Compact JSON, as given to ``kubectl patch -p``."""
    return json.dumps(patch, separators=(",", ":"))
