"""Upstream's own YAML (CRDs, config/ folders) read from the Go module cache, never copied.

Knative Serving's, Knative networking's and caching's, and KServe's ``config/`` folders are
inside their Go module zips, which the upstream build downloads anyway (``go mod download``
extracts them into ``$GOMODCACHE/<module>@<version>/``). The harness reads them there at
install time, so the objects it installs are the pinned release's own and nothing of
upstream's YAML is committed.

:func:`module_dir` finds (or downloads) one module; :func:`knative_modules` gives Knative
Serving's directory with those of the networking and caching modules at the versions
Serving's own ``go.mod`` requires (as its release is built); :func:`knative_crds`,
:func:`kserve_crds` and :func:`networking_crds` load the CRDs; :func:`load_docs` reads any
file of a module.

Example (helper of a test that needs Knative's Ingress CRD)::

    from harness.upstream import modcache, serving
    serving.apply_crds(client, modcache.networking_crds(["ingress.yaml"]))
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from harness.errors import UserError
from harness.upstream import build

SERVING = "knative.dev/serving"
NETWORKING = "knative.dev/networking"
CACHING = "knative.dev/caching"
KSERVE = "github.com/kserve/kserve"
KSERVE_DEFAULT_VERSION = "v0.20.0"   # = fixtures/kind/versions.yaml kserve.version

# The CRD files of each module, in the order upstream's release lists them
# (serving-crds.yaml: serving's config/core/300-resources with networking's and caching's
# CRDs linked in; kserve.yaml: config/crd/full, without the LocalModel ones of its
# overlays/addons).
SERVING_CRD_FILES = ("config/core/300-resources/configuration.yaml",
                     "config/core/300-resources/domain-mapping.yaml",
                     "config/core/300-resources/metric.yaml",
                     "config/core/300-resources/podautoscaler.yaml",
                     "config/core/300-resources/revision.yaml",
                     "config/core/300-resources/route.yaml",
                     "config/core/300-resources/service.yaml")
NETWORKING_CRD_FILES = ("certificate.yaml", "domain-claim.yaml", "ingress.yaml",
                        "serverlessservice.yaml")
CACHING_CRD_FILES = ("config/image.yaml",)
KSERVE_CRD_FILES = ("config/crd/full/serving.kserve.io_inferenceservices.yaml",
                    "config/crd/full/serving.kserve.io_trainedmodels.yaml",
                    "config/crd/full/serving.kserve.io_clusterservingruntimes.yaml",
                    "config/crd/full/serving.kserve.io_servingruntimes.yaml",
                    "config/crd/full/serving.kserve.io_inferencegraphs.yaml",
                    "config/crd/full/clusterstoragecontainer/"
                    "serving.kserve.io_clusterstoragecontainers.yaml")


@dataclass(frozen=True)
class Module:
    """One Go module extracted in the module cache."""

    path: str
    version: str
    dir: Path

    def docs(self, *files: str) -> list[dict[str, Any]]:
        return load_docs(self, *files)


def escape(path: str) -> str:
    """The module cache's case encoding (``github.com/Azure`` -> ``github.com/!azure``)."""
    return re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), path)


def _go_env(name: str) -> str:
    go = build.go_binary()
    return subprocess.run([go, "env", name], capture_output=True, text=True,
                          check=True).stdout.strip()


@cache
def mod_cache() -> Path:
    return Path(os.environ.get("GOMODCACHE") or _go_env("GOMODCACHE"))


def module_dir(path: str, version: str) -> Module:
    """The extracted module ``path@version``, downloading it through the Go module proxy
    (``go mod download``) when the cache lacks it; a failure is one :class:`UserError`."""
    d = mod_cache() / f"{escape(path)}@{version}"
    if not (d / "go.mod").is_file():
        go = build.go_binary()
        proc = subprocess.run([go, "mod", "download", "-json", f"{path}@{version}"],
                              capture_output=True, text=True, cwd="/",
                              env={**os.environ, "GOFLAGS": "-mod=mod"})
        info: dict[str, Any] = {}
        try:
            info = json.loads(proc.stdout or "{}")
        except json.JSONDecodeError:
            pass
        if proc.returncode != 0 or info.get("Error") or not info.get("Dir"):
            why = info.get("Error") or proc.stderr.strip() or f"exit code {proc.returncode}"
            raise UserError(f"cannot get Go module {path}@{version} for its config/ "
                            f"YAML: {why}")
        d = Path(info["Dir"])
    return Module(path, version, d)


def requires(mod: Module, dependency: str) -> str:
    """The version ``mod``'s ``go.mod`` requires of ``dependency``."""
    text = (mod.dir / "go.mod").read_text()
    found = re.search(rf"^\s*(?:require\s+)?{re.escape(dependency)}\s+(\S+)", text, re.M)
    if found is None:
        raise UserError(f"{mod.path}@{mod.version}'s go.mod requires no {dependency}")
    return found.group(1)


def serving_version() -> str:
    return str(build.load_versions()["modules"][SERVING]["version"])


def kserve_version() -> str:
    entry = build.load_versions()["modules"].get(KSERVE) or {}
    return str(entry.get("version") or KSERVE_DEFAULT_VERSION)


@dataclass(frozen=True)
class KnativeModules:
    serving: Module
    networking: Module
    caching: Module


def knative_modules() -> KnativeModules:
    """Knative Serving at the pinned version, networking and caching at the versions
    Serving's ``go.mod`` requires (the ones its release's YAML comes from)."""
    serving = module_dir(SERVING, serving_version())
    return KnativeModules(serving,
                          module_dir(NETWORKING, requires(serving, NETWORKING)),
                          module_dir(CACHING, requires(serving, CACHING)))


def kserve_module() -> Module:
    return module_dir(KSERVE, kserve_version())


def load_docs(mod: Module, *files: str) -> list[dict[str, Any]]:
    """Every YAML document of these files of ``mod`` (empty documents dropped)."""
    out: list[dict[str, Any]] = []
    for name in files:
        path = mod.dir / name
        try:
            text = path.read_text()
        except OSError as exc:
            raise UserError(f"{mod.path}@{mod.version} has no {name} ({exc.strerror}); is "
                            "the pinned version right?", where=str(path)) from None
        out += [d for d in yaml.safe_load_all(text) if d]
    return out


def networking_crds(files: tuple[str, ...] | list[str] = NETWORKING_CRD_FILES
                    ) -> list[dict[str, Any]]:
    """Knative networking's CRDs (Ingress, Certificate, ServerlessService,
    ClusterDomainClaim) from ``knative.dev/networking``'s ``config/``; ``files`` picks
    some, e.g. ``["ingress.yaml"]``."""
    mods = knative_modules()
    return load_docs(mods.networking, *(f"config/{f}" for f in files))


def knative_crds() -> list[dict[str, Any]]:
    """Every CRD of Knative Serving's release (``serving-crds.yaml``)."""
    mods = knative_modules()
    return [*load_docs(mods.serving, *SERVING_CRD_FILES),
            *load_docs(mods.networking, *(f"config/{f}" for f in NETWORKING_CRD_FILES)),
            *load_docs(mods.caching, *CACHING_CRD_FILES)]


def kserve_crds() -> list[dict[str, Any]]:
    """KServe's CRDs as ``config/crd`` (kustomize) emits them: ``config/crd/full`` with
    the ``creationTimestamp: null`` controller-gen writes removed."""
    docs = load_docs(kserve_module(), *KSERVE_CRD_FILES)
    for d in docs:
        d.get("metadata", {}).pop("creationTimestamp", None)
    return docs
