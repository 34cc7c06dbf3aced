"""Server-side apply of manifests to the upstream cluster, as ``kubectl apply --server-side``.

:class:`Applier` maps each manifest's ``apiVersion``/``kind`` to its REST path by API
discovery (fetched again after new CRDs), sends it as an apply patch
(``application/apply-patch+yaml``, field manager ``harness``, conflicts forced, as the
kind bring-up's ``--force-conflicts``) and raises :class:`ApplyError` with the API
server's own message when one is refused. :meth:`Applier.wait_established` waits for
CRDs to be served. It talks to the cluster with the admin client of
:class:`harness.upstream.control_plane.UpstreamCluster` (an :class:`httpx.Client`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

FIELD_MANAGER = "harness"


class ApplyError(RuntimeError):
    """The API server refused an object (or never served its kind)."""


def describe(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    ns = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{doc.get('kind')} {ns}{meta.get('name')}"


def _message(r: httpx.Response) -> str:
    try:
        return str(r.json().get("message") or r.text)
    except (ValueError, AttributeError):
        return r.text.strip()[:300]


class Applier:
    """Apply manifests through one admin client (see the module docstring)."""

    def __init__(self, client: httpx.Client, *, field_manager: str = FIELD_MANAGER) -> None:
        self.client = client
        self.field_manager = field_manager
        self._kinds: dict[str, dict[str, tuple[str, bool]]] = {}

    def _resources(self, api_version: str, *, fresh: bool = False) -> dict[str, tuple[str, bool]]:
        if fresh or api_version not in self._kinds:
            path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
            r = self.client.get(path)
            kinds: dict[str, tuple[str, bool]] = {}
            if r.status_code == 200:
                for res in r.json().get("resources") or []:
                    if "/" not in res["name"]:
                        kinds[res["kind"]] = (res["name"], bool(res.get("namespaced")))
            self._kinds[api_version] = kinds
        return self._kinds[api_version]

    def path(self, doc: dict[str, Any]) -> str:
        """The object's REST path (``.../namespaces/<ns>/<plural>/<name>``)."""
        api_version, kind = str(doc.get("apiVersion", "")), str(doc.get("kind", ""))
        found = self._resources(api_version).get(kind) or \
            self._resources(api_version, fresh=True).get(kind)
        if found is None:
            raise ApplyError(f"{describe(doc)}: the cluster does not serve {kind} in "
                             f"{api_version} (is its CRD installed?)")
        plural, namespaced = found
        base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
        meta = doc.get("metadata") or {}
        if namespaced:
            ns = meta.get("namespace") or "default"
            base += f"/namespaces/{ns}"
        return f"{base}/{plural}/{meta['name']}"

    def apply(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply one object; its stored form back."""
        r = self.client.patch(
            self.path(doc), params={"fieldManager": self.field_manager, "force": "true"},
            content=json.dumps(doc).encode(),
            headers={"Content-Type": "application/apply-patch+yaml"}, timeout=60.0)
        if r.status_code >= 400:
            raise ApplyError(f"{describe(doc)} refused ({r.status_code}): {_message(r)}")
        return dict(r.json())

    def apply_all(self, docs: Iterable[dict[str, Any]],
                  on_applied: Callable[[dict[str, Any]], None] | None = None) -> int:
        n = 0
        for doc in docs:
            self.apply(doc)
            n += 1
            if on_applied is not None:
                on_applied(doc)
        return n

    def get(self, path: str) -> dict[str, Any] | None:
        r = self.client.get(path)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return dict(r.json())

    def wait_established(self, crds: Iterable[dict[str, Any]], timeout: float = 60.0) -> None:
        """Until every CRD has condition Established (its kinds are served)."""
        names = [c["metadata"]["name"] for c in crds if c.get("kind") ==
                 "CustomResourceDefinition"]
        deadline = time.monotonic() + timeout
        pending = list(names)
        while pending:
            pending = [n for n in pending if not self._established(n)]
            if not pending:
                break
            if time.monotonic() > deadline:
                raise ApplyError(f"CRDs not Established within {timeout:.0f} s: "
                                 + ", ".join(pending))
            time.sleep(0.2)
        self._kinds.clear()   # new kinds are served now

    def _established(self, name: str) -> bool:
        crd = self.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        conds = ((crd or {}).get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in conds)
