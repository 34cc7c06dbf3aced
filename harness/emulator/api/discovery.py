"""Discovery documents built from the resource registry: ``/version``, ``/api``,
``/api/v1``, ``/apis``, ``/apis/{group}`` and ``/apis/{group}/{version}``.

Shapes follow what ``kubernetes.dynamic`` and kubectl accept (``kubernetes-api.md`` §3.4,
§6): ``preferredVersion`` is identical to one entry of ``versions``, and every
APIResource has ``name``, ``kind``, ``namespaced`` and ``verbs``.
"""

from __future__ import annotations

from typing import Any

from harness.emulator.api.registry import Registry

SERVER_VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.0-harness-emulator",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
    "platform": "linux/amd64",
}


def version() -> dict[str, Any]:
    return dict(SERVER_VERSION)


def core_versions(address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": address}]}


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": dict(entries[0])}


def group_list(registry: Registry) -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group(g, vs) for g, vs in registry.groups().items()]}


def group(registry: Registry, name: str) -> dict[str, Any] | None:
    versions = registry.groups().get(name)
    if versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def resource_list(registry: Registry, group_name: str, version_name: str,
                  ) -> dict[str, Any] | None:
    types = list(registry.in_group_version(group_name, version_name))
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for t in types:
        resources.extend(t.discovery_entries())
    gv = f"{group_name}/{version_name}" if group_name else version_name
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": resources}
