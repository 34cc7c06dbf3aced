"""A plain-http kubeconfig for the emulator (``kubernetes-api.md`` §3.5): one cluster,
one empty user, one context, ``current-context`` set. The official client and kubectl
accept it as is and send no credentials.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml


def kubeconfig_dict(server: str, *, context: str = "harness-local",
                    namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": context, "user": {}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context,
                                                   "namespace": namespace}}],
        "current-context": context,
    }


def write_kubeconfig(path: str | Path, server: str, *, context: str = "harness-local") -> Path:
    """Write the kubeconfig atomically (mode 0600) and return its path."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(kubeconfig_dict(server, context=context), sort_keys=False))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path
