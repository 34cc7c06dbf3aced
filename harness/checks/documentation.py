"""Check 1b, documentation: the profile's documented claims held against Knative.

The findings of :mod:`harness.findings` are faults of the page (or of a key the cluster
carries that Knative ignores), not of the autoscaler: they get this verdict of their
own, apart from the configuration verdict (:mod:`harness.checks.configuration`), which
is about the cluster's effective knobs. A finding of severity ``error`` fails it unless
the profile acknowledges the finding by id, with a reason (``acknowledged:`` in the
profile); an acknowledged finding stays in the report, marked acknowledged with the
reason. Acknowledging an id that no finding has is an error of the profile (a stale
acknowledgement would hide the next finding of that id unseen), and fails too.
"""

from __future__ import annotations

import pandas as pd

from harness.checks.verdict import FAIL, PASS, Verdict, skip
from harness.resolve import Resolved

CHECK = "documentation"
CLAIM = "the documented claims hold on Knative (no documentation finding of severity error)"


def check_documentation(resolved: Resolved) -> Verdict:
    """Every finding as evidence; fails on an ``error`` finding the profile does not
    acknowledge, or on an acknowledgement of a finding that does not exist."""
    prof = resolved.profile
    key = f"profile {prof.name}" if prof is not None else "profile"
    if prof is None:
        return skip(CHECK, CLAIM, key, "no profile given: no documentation to hold")
    acked = dict(prof.acknowledged)
    rows = []
    open_errors = []
    for f in resolved.findings:
        reason = acked.get(f.id)
        if f.severity == "error" and reason is None:
            open_errors.append(f)
        rows.append({"id": f.id, "severity": f.severity, "side": f.side,
                     "status": "acknowledged" if reason is not None else "open",
                     "reason": reason or "", "documented": f.claim, "knative": f.knative,
                     "arithmetic": f.arithmetic})
    ids = {f.id for f in resolved.findings}
    stale = sorted(set(acked) - ids)
    for fid in stale:
        rows.append({"id": fid, "severity": "", "side": "documented",
                     "status": "acknowledged, no such finding", "reason": acked[fid],
                     "documented": "", "knative": "", "arithmetic": ""})
    n_ack = sum(1 for f in resolved.findings if f.id in acked)
    observed = (f"{len(resolved.findings)} finding(s), "
                f"{sum(f.severity == 'error' for f in resolved.findings)} error(s); "
                f"{n_ack} acknowledged by the profile, {len(open_errors)} error(s) open")
    problems = []
    if open_errors:
        problems.append(f"{len(open_errors)} documentation finding(s) of severity error not "
                        "acknowledged: " + ", ".join(f.id for f in open_errors))
    if stale:
        problems.append("acknowledged but no such finding: " + ", ".join(stale))
    return Verdict(
        check=CHECK, claim=CLAIM, claim_key=f"{key} (acknowledged: by finding id)",
        status=FAIL if problems else PASS,
        expected="no open documentation finding of severity error",
        observed=observed, why="; ".join(problems),
        numbers={"findings": float(len(resolved.findings)), "acknowledged": float(n_ack),
                 "open_errors": float(len(open_errors)), "stale": float(len(stale))},
        evidence=pd.DataFrame(rows),
    )
