"""Safety on shared clusters: which contexts may be written, and what may be written there.

Rules (issue 7):

* On ``--cluster current`` nothing is written unless the context is on the allow-list:
  the ``--allow-context`` option, the ``HARNESS_ALLOWED_CONTEXTS`` environment variable
  (comma-separated), or a file (``HARNESS_ALLOWED_CONTEXTS_FILE``, default
  ``~/.config/harness/allowed-contexts``; one name a line, ``#`` comments). Clusters the
  harness brings up itself (``local``, ``kind``) are allowed by construction.
* Writes go only to namespaces the harness created: named ``hx-...`` *and* labelled
  :data:`RUN_LABEL` (``harness.kserve.dev/run-id=<run id>``). Creating a namespace needs
  both the prefix and the label in the body.
* ``config-autoscaler`` in ``knative-serving`` is written only when the guard was made
  with ``allow_config_write=True`` (an explicit flag); otherwise the harness reads it
  and reports differences.
* Anything else (other namespaces, cluster-scoped objects) is refused.

Every writing function in :mod:`harness.kube` calls :meth:`Guard.check_write` first; a
refusal is a :class:`~harness.errors.UserError` (exit code 2) and nothing is sent.
Reads are never restricted.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.errors import UserError

RUN_LABEL = "harness.kserve.dev/run-id"
"""The one label key on everything a run creates (namespaces and the objects in them)."""
TEST_LABEL = "harness.kserve.dev/test"
"""The test (suite) a run namespace belongs to, sanitised to a label value."""
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "harness"
NAMESPACE_PREFIX = "hx-"

ENV_ALLOWED = "HARNESS_ALLOWED_CONTEXTS"
ENV_ALLOWED_FILE = "HARNESS_ALLOWED_CONTEXTS_FILE"
DEFAULT_ALLOWED_FILE = Path("~/.config/harness/allowed-contexts")

CONFIG_NAMESPACE = "knative-serving"
CONFIG_NAME = "config-autoscaler"

CLUSTER_MODES = ("local", "kind", "current", "upstream")
UPSTREAM_CONTEXT = "harness-upstream"
"""The context of ``harness cluster up --upstream``'s kubeconfig: the only one
``--cluster upstream`` writes to without the allow-list."""


def read_allow_file(path: str | Path) -> set[str]:
    """Context names in an allow-list file (missing file: empty set)."""
    try:
        text = Path(path).expanduser().read_text()
    except FileNotFoundError:
        return set()
    except OSError as exc:
        raise UserError(f"cannot read the allow-list: {exc}", where=str(path)) from None
    names = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(line)
    return names


def allowed_contexts(option: Iterable[str] | None = None, *,
                     environ: Mapping[str, str] | None = None,
                     file: str | Path | None = None) -> set[str]:
    """The allow-list: the option's names + the environment variable's + the file's."""
    env = os.environ if environ is None else environ
    names = {n.strip() for n in (option or ()) if n.strip()}
    names |= {n.strip() for n in env.get(ENV_ALLOWED, "").split(",") if n.strip()}
    path = file or env.get(ENV_ALLOWED_FILE) or DEFAULT_ALLOWED_FILE
    names |= read_allow_file(path)
    return names


def is_harness_namespace(ns: Mapping[str, Any]) -> bool:
    """A namespace object the harness created: prefixed and carrying the run label."""
    meta = ns.get("metadata") or {}
    return (str(meta.get("name", "")).startswith(NAMESPACE_PREFIX)
            and bool((meta.get("labels") or {}).get(RUN_LABEL)))


class Guard:
    """The gate every write passes: ``check_write(verb, resource, namespace, name)``.

    ``mode`` is the ``--cluster`` value; ``current`` needs ``context`` in ``allowed``,
    ``upstream`` the upstream cluster's own context (or one in ``allowed``). ``owned``
    namespaces are those this process created (added by
    :func:`harness.kube.namespaces.create_namespace`); another namespace passes only if
    ``lookup`` (set by :class:`~harness.kube.client.Kube`) reads it from the cluster
    prefixed and labelled, as one made by another worker or an earlier run.
    """

    def __init__(self, context: str = "", *, mode: str = "current",
                 allowed: Iterable[str] | None = None, allow_config_write: bool = False,
                 run_id: str | None = None) -> None:
        if mode not in CLUSTER_MODES:
            raise UserError(f"unknown cluster mode {mode!r} (use one of "
                            f"{', '.join(CLUSTER_MODES)})")
        self.context = context
        self.mode = mode
        self.allowed = set(allowed or ())
        self.allow_config_write = allow_config_write
        self.run_id = run_id
        self.lookup: Callable[[str], Mapping[str, Any] | None] | None = None
        """Reads a namespace object by name (set by :class:`~harness.kube.client.Kube`)."""
        self._owned: set[str] = set()
        self._labelled: set[str] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_options(cls, context: str, *, mode: str = "current",
                     allow: Iterable[str] | None = None, allow_file: str | Path | None = None,
                     allow_config_write: bool = False, run_id: str | None = None) -> Guard:
        """A guard whose allow-list comes from option, environment and file."""
        return cls(context, mode=mode, allowed=allowed_contexts(allow, file=allow_file),
                   allow_config_write=allow_config_write, run_id=run_id)

    # ------------------------------------------------------------------ state

    @property
    def owned(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._owned)

    def own(self, namespace: str) -> None:
        """Record a namespace this run created (writes there are allowed)."""
        with self._lock:
            self._owned.add(namespace)

    def disown(self, namespace: str) -> None:
        with self._lock:
            self._owned.discard(namespace)

    def note_harness_namespace(self, namespace: str) -> None:
        """Record a namespace seen on the cluster with the prefix and the run label
        (e.g. another run's, for ``harness gc``)."""
        with self._lock:
            self._labelled.add(namespace)

    # ------------------------------------------------------------------ checks

    @property
    def context_allowed(self) -> bool:
        if self.mode == "upstream" and self.context == UPSTREAM_CONTEXT:
            return True
        return self.mode in ("local", "kind") or self.context in self.allowed

    def check_context(self) -> None:
        """Refuse (UserError) unless the context may be written at all."""
        if self.context_allowed:
            return
        shown = ", ".join(sorted(self.allowed)) or "empty"
        raise UserError(
            f"context {self.context!r} is not on the allow-list ({shown}); nothing was "
            f"created. Add it with --allow-context {self.context}, {ENV_ALLOWED}="
            f"{self.context}, or a line in {DEFAULT_ALLOWED_FILE}")

    def check_write(self, verb: str, resource: str, namespace: str | None,
                    name: str | None = None, body: Mapping[str, Any] | None = None) -> None:
        """Refuse (UserError) a write the rules above do not allow; return if allowed.

        ``resource`` is the plural (``namespaces``, ``configmaps``, ``inferenceservices``);
        ``body`` the object being created or replaced (namespace creation checks its
        labels).
        """
        self.check_context()
        what = f"{verb} {resource}" + (f" {namespace}/{name}" if namespace and name
                                       else f" {name or namespace or ''}")
        if resource == "namespaces" and namespace is None:
            target = name or ""
            if not target.startswith(NAMESPACE_PREFIX):
                raise UserError(f"refusing to {what.strip()}: the harness only touches "
                                f"namespaces named {NAMESPACE_PREFIX}*")
            if verb == "create":
                labels = ((body or {}).get("metadata") or {}).get("labels") or {}
                if not labels.get(RUN_LABEL):
                    raise UserError(f"refusing to {what.strip()}: a harness namespace must "
                                    f"carry the label {RUN_LABEL}")
                return
            if not self._namespace_ok(target):
                raise UserError(f"refusing to {what.strip()}: not a namespace this harness "
                                f"created (label {RUN_LABEL})")
            return
        if namespace is None:
            raise UserError(f"refusing to {what.strip()}: the harness does not write "
                            "cluster-scoped objects")
        if namespace == CONFIG_NAMESPACE and resource == "configmaps" and name == CONFIG_NAME:
            if not self.allow_config_write:
                raise UserError(f"refusing to {what.strip()}: changing {CONFIG_NAME} needs "
                                "the explicit flag (--write-config); without it the harness "
                                "reads the config and reports differences")
            return
        if not self._namespace_ok(namespace):
            raise UserError(f"refusing to {what.strip()}: namespace {namespace!r} was not "
                            f"created by the harness (prefix {NAMESPACE_PREFIX}, label "
                            f"{RUN_LABEL})")

    def _namespace_ok(self, namespace: str) -> bool:
        if not namespace.startswith(NAMESPACE_PREFIX):
            return False
        with self._lock:
            if namespace in self._owned or namespace in self._labelled:
                return True
        obj = self.lookup(namespace) if self.lookup is not None else None
        if obj is not None and is_harness_namespace(obj):
            self.note_harness_namespace(namespace)
            return True
        return False
