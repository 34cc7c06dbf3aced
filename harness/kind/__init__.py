"""A kind cluster with cert-manager, Knative Serving + Kourier and KServe, for the harness.

``harness cluster up --kind`` / ``make kind-up`` and ``harness cluster down --kind`` /
``make kind-down``. The bring-up is a plain list of commands (:mod:`harness.kind.plan`)
run one by one through one runner function (:mod:`harness.kind.steps`), so a test can
put fake ``kind``, ``docker`` and ``kubectl`` executables on the PATH and check every
command and its order, and ``--dry-run`` prints the same list without running it.
Versions are pinned in ``fixtures/kind/versions.yaml`` and the nodes are declared in
``fixtures/kind/cluster.yaml`` (:mod:`harness.kind.config`); the few manifests made
here (the profile's ``config-autoscaler``, patches) are in :mod:`harness.kind.manifests`.
"""

from __future__ import annotations

from harness.kind.plan import down, plan_down, plan_up, up

__all__ = ["down", "plan_down", "plan_up", "up"]
