"""The mutation matrix's evaluation: every check on a recorded run, and the table.

:func:`run_checks` turns a :class:`~harness.matrix.scenarios.Run` into one
:class:`~harness.checks.Verdict` per check (:data:`CHECKS`), with the cluster's own
``config-autoscaler`` as the effective knobs; :func:`expected` says which statuses each
configuration (``baseline`` or a mutation) allows and :func:`table` draws the check x
configuration table.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.matrix.scenarios import GPU_CLASS, Run

CHECKS: tuple[str, ...] = (
    "configuration", "autoscaling-enabled", "panic-entry", "scale-up-rate", "scale-down",
    "scale-to-zero", "cold-start", "gpu-placement", "no-request-lost")
"""Every check, in the order of ``harness/checks`` (1-9)."""

SCENARIO_CHECKS: dict[str, tuple[str, ...]] = {
    "panic": ("panic-entry", "scale-up-rate", "autoscaling-enabled"),
    "scale-rate": ("scale-down", "no-request-lost"),
    "scale-delay": ("scale-down",),
    "fixed": ("autoscaling-enabled",),
    "gpu": ("gpu-placement",),
    "cold": ("cold-start", "scale-to-zero", "no-request-lost"),
}
EXTRA_SCENARIO_CHECKS: dict[str, tuple[str, ...]] = {
    "rise": ("scale-up-rate", "no-request-lost"),
}
"""The real matrix's extra scenario (:mod:`harness.matrix.upstream`)."""
REQUEST_PHASES: dict[str, tuple[str, ...]] = {
    "scale-rate": ("scale-down",),
    "cold": ("scale-from-zero",),
    "rise": ("scale-from-zero",),
}
"""The part of the no-request-lost claim each scenario gives evidence for: pods going
under traffic, and the activator buffering from zero."""


def _combine(verdicts: list[Any]) -> Any:
    """One verdict from several scenarios: a failure wins, then a pass, then a skip."""
    for status in ("fail", "pass"):
        for v in verdicts:
            if v.status == status:
                return v
    return verdicts[0]


def expected(config: str, targets: Mapping[str, str] | None = None
             ) -> dict[str, tuple[str, ...]]:
    """Check -> the statuses allowed under ``config`` (``baseline`` or a mutation name):
    the mutation's target check fails; the baseline passes every check; under a mutation
    the other checks pass or skip. ``targets``: mutation -> its check (default: the
    emulator's mutations)."""
    if targets is None:
        from harness.emulator.mutations import MUTATIONS

        targets = {name: m.check for name, m in MUTATIONS.items()}
    target = targets.get(config)
    return {c: ("fail",) if c == target else ("pass",) if config == "baseline"
            else ("pass", "skip") for c in CHECKS}


def unexpected(rows: Mapping[str, Mapping[str, Any]],
               targets: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Configuration -> {check: verdict} of every cell outside :func:`expected`."""
    out: dict[str, dict[str, Any]] = {}
    for config, verdicts in rows.items():
        want = expected(config, targets)
        bad = {c: v for c, v in verdicts.items() if v.status not in want[c]}
        if bad:
            out[config] = bad
    return out


def table(rows: Mapping[str, Mapping[str, Any]],
          targets: Mapping[str, str] | None = None) -> str:
    """The check x configuration table of verdicts (``!`` marks an unexpected one)."""
    head = f"{'configuration':20s} " + " ".join(f"{c[:6]:7s}" for c in CHECKS)
    lines = [head]
    for config, verdicts in rows.items():
        want = expected(config, targets)
        lines.append(f"{config:20s} " + " ".join(
            f"{verdicts[c].status + ('' if verdicts[c].status in want[c] else '!'):7s}"
            for c in CHECKS))
    return "\n".join(lines)


def run_checks(run: Run, profile_path: str | Path) -> dict[str, Any]:
    """Check id -> :class:`~harness.checks.Verdict` for one recorded configuration."""
    import harness.checks as C
    from harness.profiles import load_profile
    from harness.resolve import resolve

    profile = load_profile(profile_path)
    out: dict[str, list[Any]] = {c: [] for c in CHECKS}
    out["configuration"].append(C.check_configuration(
        resolve(profile=profile, configmap=run.config)))
    for name, tl in run.timelines.items():
        params = resolve(configmap=run.config, isvc=tl.isvc).params
        frames = tl.frames()
        recs = tl.records
        for check in {**SCENARIO_CHECKS, **EXTRA_SCENARIO_CHECKS}[name]:
            if check == "panic-entry":
                v = C.check_panic(frames, params, recs, expect="burst")
            elif check == "scale-up-rate":
                v = C.check_scale_up_rate(frames, params, recs)
            elif check == "autoscaling-enabled":
                v = C.check_autoscaling_enabled(frames, params, recs)
            elif check == "scale-down":
                v = C.check_scale_down(frames, params, recs)
            elif check == "no-request-lost":
                v = C.check_no_request_lost(frames, params, recs,
                                            require=REQUEST_PHASES[name])
            elif check == "scale-to-zero":
                v = C.check_scale_to_zero(frames, params, recs)
            elif check == "cold-start":
                v = C.check_cold_start(frames, params, recs, profile=profile)
            elif check == "gpu-placement":
                v = C.check_gpu_placement(frames, params, recs, gpu_class=GPU_CLASS,
                                          nodes=run.nodes)
            else:  # pragma: no cover - SCENARIO_CHECKS names only known checks
                raise ValueError(check)
            out[check].append(v)
    return {c: _combine(vs) for c, vs in out.items()}
