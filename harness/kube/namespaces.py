"""Run namespaces: create ``hx-<run-id>-<test>`` labelled with the run id, delete them,
collect what crashed runs left behind (:func:`gc`), and list what a run still has
(:func:`leaks`).

Naming: a run id is ``<MMDDHHMM>-<4 hex>`` (:func:`new_run_id`, e.g. ``06151230-a1b2``,
sortable by start time within a year); a namespace is ``hx-<run id>-<test>`` with the test
part lowercased, non-alphanumerics folded to ``-`` and cut so the whole name fits the
63-character DNS label. Labels: :data:`~harness.kube.safety.RUN_LABEL` = run id,
:data:`~harness.kube.safety.TEST_LABEL` = test part, ``app.kubernetes.io/managed-by=harness``.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from harness.kube.apply import delete, list_objects, wait_gone
from harness.kube.client import Kube
from harness.kube.resources import INFERENCE_SERVICES, NAMESPACES, Resource
from harness.kube.safety import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAMESPACE_PREFIX,
    RUN_LABEL,
    TEST_LABEL,
    is_harness_namespace,
)
from harness.objects import parse_time

MAX_NAME = 63
_RUN_ID = re.compile(r"^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$")


def new_run_id(now: float | None = None) -> str:
    """A fresh run id: ``MMDDHHMM-xxxx`` (UTC start time + 4 random hex digits)."""
    stamp = time.strftime("%m%d%H%M", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(2)}"


def check_run_id(run_id: str) -> str:
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r} must be lowercase letters, digits and '-' "
                         "(at most 42 characters)")
    return run_id


def dns_slug(text: str, limit: int) -> str:
    """``test_panic_entry[fast]`` -> ``test-panic-entry-fast``, at most ``limit`` chars."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return out[:limit].rstrip("-") or "t"


def namespace_name(run_id: str, test: str) -> str:
    """``hx-<run id>-<test slug>``, at most 63 characters."""
    head = f"{NAMESPACE_PREFIX}{check_run_id(run_id)}-"
    return head + dns_slug(test, MAX_NAME - len(head))


def create_namespace(kube: Kube, run_id: str, test: str,
                     extra_labels: dict[str, str] | None = None) -> str:
    """Create the run namespace for ``test`` (guarded), own it, return its name."""
    name = namespace_name(run_id, test)
    labels = {RUN_LABEL: run_id, TEST_LABEL: dns_slug(test, 63), MANAGED_BY_LABEL: MANAGED_BY,
              **(extra_labels or {})}
    body = {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels}}
    kube.guard.check_write("create", "namespaces", None, name, body)
    kube.request("POST", NAMESPACES.path(), body=body)
    kube.guard.own(name)
    return name


def delete_namespace(kube: Kube, name: str, *, wait: bool = False,
                     timeout: float = 180.0) -> bool:
    """Delete a harness namespace (guarded); True if it existed."""
    existed = delete(kube, NAMESPACES, name, wait=wait, timeout=timeout)
    return existed


def run_namespaces(kube: Kube, run_id: str | None = None) -> list[dict[str, Any]]:
    """Harness namespaces (of one run, or of every run), prefixed and labelled."""
    selector = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
    return [ns for ns in list_objects(kube, NAMESPACES, label_selector=selector)
            if is_harness_namespace(ns)]


def _created(obj: dict[str, Any]) -> float | None:
    return parse_time((obj.get("metadata") or {}).get("creationTimestamp"))


@dataclass(frozen=True)
class Collected:
    """What :func:`gc` did: deleted namespace names, and kept ones with the reason."""

    deleted: list[str]
    kept: list[tuple[str, str]]


def gc(kube: Kube, older_than: float, *, now: float | None = None, dry_run: bool = False,
       wait: bool = False, timeout: float = 180.0) -> Collected:
    """Delete harness namespaces (prefix + run label) created more than ``older_than``
    seconds ago; namespaces without the label are never looked at. Already terminating
    ones are reported as kept."""
    now = time.time() if now is None else now
    deleted: list[str] = []
    kept: list[tuple[str, str]] = []
    for ns in sorted(run_namespaces(kube), key=lambda o: o["metadata"]["name"]):
        name = ns["metadata"]["name"]
        created = _created(ns)
        if created is None:
            kept.append((name, "no creationTimestamp"))
            continue
        age = now - created
        if age < older_than:
            kept.append((name, f"younger than the limit ({age:.0f} s)"))
            continue
        if ns["metadata"].get("deletionTimestamp"):
            kept.append((name, "already terminating"))
            continue
        if not dry_run:
            kube.guard.note_harness_namespace(name)
            delete_namespace(kube, name)
        deleted.append(name)
    if wait and not dry_run:
        for name in deleted:
            wait_gone(kube, NAMESPACES, name, timeout=timeout)
    return Collected(deleted, kept)


def leaks(kube: Kube, run_id: str, *,
          cluster_wide: tuple[Resource, ...] = (INFERENCE_SERVICES,)) -> list[str]:
    """Everything of run ``run_id`` still on the cluster: its namespaces (terminating or
    not) and, where listing cluster-wide is allowed, objects carrying its label in any
    namespace (e.g. InferenceServices). ``[]`` means the run left nothing behind."""
    found = []
    for ns in run_namespaces(kube, run_id):
        meta = ns["metadata"]
        state = " (terminating)" if meta.get("deletionTimestamp") else ""
        found.append(f"namespace/{meta['name']}{state}")
    for res in cluster_wide:
        try:
            items = list_objects(kube, res, None, label_selector=f"{RUN_LABEL}={run_id}")
        except ApiException as exc:
            if exc.status in (403, 404):
                continue  # not allowed to list cluster-wide, or not installed
            raise
        for item in items:
            meta = item["metadata"]
            found.append(f"{res.plural}/{meta.get('namespace')}/{meta['name']}")
    return found
