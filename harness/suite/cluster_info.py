"""The cluster a conformance run ran against, as its report names it: the kind (the
``--cluster`` value) and, for the upstream cluster, every component's version.

``harness conformance --cluster upstream`` builds :func:`upstream_info` from what the
running cluster and its binaries say (the API server's ``/version``; each binary's module
and version, read back by ``go version -m``; Knative's release commit) and hands it to
pytest as a JSON file (``--cluster-info``). The plugin puts it into ``summary.json``'s
``meta`` (``cluster``, ``components``), so the page's header shows it, and into
junit.xml's ``<properties>`` (:func:`junit_properties`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import UserError

KUBERNETES_MODULE = "k8s.io/kubernetes"


def upstream_info(server_version: Mapping[str, Any], built: Sequence[Mapping[str, str]],
                  *, commits: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``{"kind": "upstream", "components": [...]}``: first the version the API server
    serves (``/version``), then one row per built binary (``component``, ``module``,
    ``version``: the module version linked in, ``release``, ``commit`` where the release
    pins one, as Knative's does)."""
    commits = commits or {}
    served = str(server_version.get("gitVersion") or "unknown")
    commit = str(server_version.get("gitCommit") or "")
    rows: list[dict[str, str]] = [{
        "component": "kubernetes (/version)", "module": KUBERNETES_MODULE,
        "version": served, "release": served,
        # unset by a module build: component-base's placeholder "$Format:%H$"
        "commit": "" if commit.startswith("$") else commit,
    }]
    for b in built:
        module = str(b.get("module") or "")
        rows.append({"component": str(b["binary"]), "module": module,
                     "version": str(b.get("version") or "unknown"),
                     "release": str(b.get("release") or ""),
                     "commit": str(commits.get(module) or "")[:7]})
    return {"kind": "upstream", "components": rows}


def write_info(path: Path, info: Mapping[str, Any]) -> Path:
    path.write_text(json.dumps(dict(info), indent=2) + "\n")
    return path


def read_info(path: str | Path) -> dict[str, Any]:
    """The file ``--cluster-info`` names; UserError (one line) when it is not one."""
    try:
        info = json.loads(Path(path).read_text())
    except OSError as exc:
        raise UserError(f"cannot read the cluster info: {exc.strerror}", where=str(path)) \
            from None
    except ValueError as exc:
        raise UserError(f"the cluster info is not JSON: {exc}", where=str(path)) from None
    if not isinstance(info, dict) or not isinstance(info.get("components", []), list):
        raise UserError("the cluster info has no list of components", where=str(path))
    return info


def component_line(row: Mapping[str, str]) -> str:
    """``v0.48.1 (knative.dev/serving, release v1.21.1, commit 69aa052)``."""
    extra = [row.get("module", "")]
    if row.get("release") and row.get("release") != row.get("version"):
        extra.append(f"release {row['release']}")
    if row.get("commit"):
        extra.append(f"commit {row['commit'][:7]}")
    shown = ", ".join(x for x in extra if x)
    return f"{row.get('version', 'unknown')} ({shown})" if shown else row.get("version", "")


def junit_properties(kind: str, info: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """junit.xml's ``<properties>``: ``cluster`` and one ``component.<name>`` each."""
    props = [("cluster", kind)]
    for row in (info or {}).get("components") or []:
        props.append((f"component.{row['component']}", component_line(row)))
    return props
