"""Named emulator misbehaviours: each one breaks exactly one documented claim.

:data:`MUTATIONS` is the single source of truth: name -> :class:`Mutation` (the check it
breaks, what it does). ``LocalCluster(mutations=[...])`` and ``harness cluster up --local
--mutation NAME`` build a :class:`Mutations` from names; the emulator consults it through
one small hook per concern:

* the KPA (:mod:`.controllers.kpa`): :meth:`Mutations.kpa_params` rewrites a revision's
  effective knobs when its autoscaler is created, :meth:`Mutations.kpa_replicas` the
  replicas it writes;
* the kubelet: :meth:`Mutations.startup_delay` adds start-up time to a pod;
* the scheduler: :attr:`Mutations.ignore_affinity`;
* the ingress (activator): :meth:`Mutations.drop_buffered` answers 503 to a buffered request;
* the cluster's ``config-autoscaler``: :meth:`Mutations.config`.

A mutation that no check catches is a defect of the checks; ``tests/test_mutation_matrix.py``
shows that each one fails its check and no other.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.errors import UserError
from harness.objects import REVISION_LABEL
from harness.params import KPAParams

COLD_START_EXTRA_S = 10.0
"""Extra start-up of a pod that starts while its revision has no ready pod
(``slow-cold-start``): beyond the 5 s small-model claim plus its budget."""

DRIFT = {"max-scale-down-rate": "3"}
"""What ``config-drift`` changes in the published ``config-autoscaler``."""


@dataclass(frozen=True)
class Mutation:
    """One misbehaviour: ``name``, the check id it must fail, and what it does."""

    name: str
    check: str
    does: str


MUTATIONS: dict[str, Mutation] = {m.name: m for m in (
    Mutation("config-drift", "configuration",
             "the cluster's config-autoscaler differs from the profile "
             "(max-scale-down-rate 3)"),
    Mutation("scale-when-fixed", "autoscaling-enabled",
             "the KPA autoscales although minReplicas == maxReplicas (max ignored)"),
    Mutation("no-panic", "panic-entry", "the KPA never enters panic mode"),
    Mutation("scale-up-rate", "scale-up-rate",
             "the KPA ignores max-scale-up-rate (uses 1000)"),
    Mutation("scale-down-rate", "scale-down",
             "the KPA ignores max-scale-down-rate and drops straight to the recommendation"),
    Mutation("no-scale-down-delay", "scale-down", "the KPA ignores scale-down-delay"),
    Mutation("short-retention", "scale-to-zero",
             "the KPA ignores scale-to-zero-pod-retention-period"),
    Mutation("never-zero", "scale-to-zero",
             "the KPA keeps the last pod of a revision that has served (never reaches zero)"),
    Mutation("slow-cold-start", "cold-start",
             f"a pod starting while its revision has no ready pod takes "
             f"{COLD_START_EXTRA_S:g} s longer"),
    Mutation("ignore-affinity", "gpu-placement",
             "the scheduler ignores node affinity (GPU pods land on other GPU classes)"),
    Mutation("drop-requests", "no-request-lost",
             "the activator answers 503 to every second buffered request during scale "
             "from zero (the first one is kept)"),
)}


def known() -> list[str]:
    return sorted(MUTATIONS)


def check_names(names: Iterable[str]) -> list[str]:
    """The names, validated; an unknown one is a :class:`UserError` listing the known ones."""
    out = []
    for name in names:
        if name not in MUTATIONS:
            raise UserError(f"unknown mutation {name!r}; known: {', '.join(known())}")
        if name not in out:
            out.append(name)
    return out


class Mutations:
    """The active mutations of one cluster and the hooks the emulator calls."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names = frozenset(check_names(names))
        self._lock = threading.Lock()
        self._buffered: dict[tuple[str, str], int] = {}

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __bool__(self) -> bool:
        return bool(self.names)

    def __repr__(self) -> str:
        return f"Mutations({sorted(self.names)})"

    # ------------------------------------------------------------------ config

    def config(self, data: dict[str, str]) -> dict[str, str]:
        """The ``config-autoscaler`` data the cluster publishes."""
        return {**data, **DRIFT} if "config-drift" in self else dict(data)

    # ------------------------------------------------------------------ KPA

    def kpa_params(self, p: KPAParams) -> KPAParams:
        """A revision's knobs as the mutated autoscaler uses them."""
        change: dict[str, Any] = {}
        if "scale-when-fixed" in self and p.max_scale > 0 and p.min_scale == p.max_scale:
            change["max_scale"] = 0
        if "no-panic" in self:
            change["panic_threshold_percentage"] = float("inf")
        if "scale-up-rate" in self:
            change["max_scale_up_rate"] = 1000.0
        if "scale-down-rate" in self:
            change["max_scale_down_rate"] = 1e9
        if "no-scale-down-delay" in self:
            change["scale_down_delay"] = 0.0
        if "short-retention" in self:
            change["scale_to_zero_pod_retention_period"] = 0.0
        return dataclasses.replace(p, **change) if change else p

    def kpa_replicas(self, replicas: int, *, has_served: bool) -> int:
        """The replicas the KPA writes to the Deployment."""
        if "never-zero" in self and has_served:
            return max(replicas, 1)
        return replicas

    # ------------------------------------------------------------------ kubelet

    def startup_delay(self, store: Any, pod: dict[str, Any]) -> float:
        """Extra seconds before a pod's container starts."""
        if "slow-cold-start" not in self:
            return 0.0
        labels = pod["metadata"].get("labels") or {}
        rev = labels.get(REVISION_LABEL)
        if not rev:
            return 0.0
        from harness.emulator.controllers.deployments import pod_ready

        pods = store.list("pods", namespace=pod["metadata"]["namespace"],
                          label_selector=f"{REVISION_LABEL}={rev}")["items"]
        return 0.0 if any(pod_ready(p) for p in pods) else COLD_START_EXTRA_S

    # ------------------------------------------------------------------ scheduler

    @property
    def ignore_affinity(self) -> bool:
        return "ignore-affinity" in self

    # ------------------------------------------------------------------ activator

    def drop_buffered(self, namespace: str, revision: str) -> bool:
        """True: answer this buffered request (not the cold start's first) with 503."""
        if "drop-requests" not in self:
            return False
        with self._lock:
            n = self._buffered.get((namespace, revision), 0) + 1
            self._buffered[(namespace, revision)] = n
        return n % 2 == 1
