"""Session end of a conformance run: the report bundle and the leak check.

:func:`finish_report` reads every case part the tests left in ``<run dir>/.parts/``
(from any number of xdist workers), writes ``reports/<run-id>/`` with
:func:`harness.report.write_report` (index.html, summary.json, timelines, records,
tar.gz; ``junit.xml`` is pytest's own ``--junitxml``, written beside them), and puts the
configuration part (effective knobs, documentation findings, reference-model
predictions) into the summary's ``meta``. :func:`leak_check` lists what the run left on
the cluster, apart from namespaces kept on purpose (``--keep-on-failure``), and deletes
it.
"""

from __future__ import annotations

import pickle
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.suite.case import KEPT, PARTS
from harness.suite.progress import FOLDER
from harness.suite.schedule import PLAN

LEAK_WAIT_S = 30.0
REAL_CLUSTER_LEAK_WAIT_S = 180.0
"""On a real cluster (upstream, kind, current) a deleted namespace goes only when its pods
have drained (Knative's queue-proxy drains for 30 s after SIGTERM) and KServe has removed
its finalizer: 13 namespaces deleted at once took over 30 s on the upstream cluster."""


def configuration_part(profile: str) -> dict[str, Any]:
    """The profile's effective knobs, documentation findings and model predictions."""
    from harness.predictions import predict
    from harness.resolve import resolve

    resolved = resolve(profile=profile)
    return {
        "params": asdict(resolved.params),
        "findings": [f.as_dict() for f in resolved.findings],
        "predictions": [p.as_dict() for p in predict(resolved.params)],
    }


def read_parts(run_dir: Path) -> list[Any]:
    cases = []
    for path in sorted((run_dir / PARTS).glob("*.pkl")):
        try:
            cases.append(pickle.loads(path.read_bytes()))
        except Exception:  # noqa: BLE001, S301 - our own files; a torn one is skipped
            continue
    return cases


def kept_namespaces(run_dir: Path) -> set[str]:
    path = run_dir / PARTS / KEPT
    if not path.exists():
        return set()
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def note_kept(run_dir: Path, namespace: str) -> None:
    parts = run_dir / PARTS
    parts.mkdir(parents=True, exist_ok=True)
    with (parts / KEPT).open("a") as fh:
        fh.write(namespace + "\n")


def panic_gauge_note(cases: list[Any]) -> str | None:
    """The run summary's line when some case had no autoscaler panic gauge (once)."""
    for case in cases:
        how = str((getattr(case, "meta", None) or {}).get("panic_gauge", ""))
        if how.startswith("inferred"):
            protocol = how.partition("metrics-protocol ")[2].rstrip(")") or "none"
            return (f"panic gauge unavailable (metrics-protocol {protocol}): panic inferred "
                    "from the trajectory")
    return None


def cluster_setup_of(cases: list[Any]) -> dict[str, Any] | None:
    """The serving runtime, podspec flags and metrics protocol a case found (one that
    used a serving runtime first)."""
    setups = [(getattr(c, "meta", None) or {}).get("cluster_setup") for c in cases]
    setups = [s for s in setups if s]
    setups.sort(key=lambda s: str(s.get("serving_runtime", "")).startswith("none"))
    return dict(setups[0]) if setups else None


def finish_report(run_dir: Path, *, run_id: str, meta: Mapping[str, Any],
                  notes: list[str] | None = None) -> Path | None:
    """Write the bundle from the parts; the page's path (None when no test left one).
    Lines for the run summary are appended to ``notes``."""
    from harness.report.bundle import write_report

    cases = read_parts(run_dir)
    kept = sorted(kept_namespaces(run_dir))
    shutil.rmtree(run_dir / PARTS, ignore_errors=True)
    shutil.rmtree(run_dir / FOLDER, ignore_errors=True)  # progress: only while running
    (run_dir / PLAN).unlink(missing_ok=True)
    if not cases:
        return None
    full = dict(meta)
    full["kept_namespaces"] = kept
    note = panic_gauge_note(cases)
    if note:
        full["panic_gauge"] = note
        if notes is not None:
            notes.append(f"harness: {note}")
    try:
        full["configuration"] = configuration_part(str(meta.get("profile") or "fast"))
    except Exception as exc:  # noqa: BLE001 - the report still gets written
        full["configuration"] = {"error": str(exc)}
    setup = cluster_setup_of(cases)
    if setup:
        full["configuration"]["cluster"] = setup
    return write_report(run_dir, cases, run_id=run_id, meta=full)


def leak_check(kube: Any, run_id: str, *, keep: set[str] | None = None,
               wait_s: float | None = LEAK_WAIT_S) -> list[str]:
    """What run ``run_id`` left on the cluster (kept namespaces aside), after waiting up
    to ``wait_s`` for terminating namespaces to go; leftovers are deleted."""
    from harness.kube.namespaces import delete_namespace, leaks

    keep = keep or set()
    wait_s = LEAK_WAIT_S if wait_s is None else wait_s

    def left() -> list[str]:
        return [x for x in leaks(kube, run_id)
                if not any(x.startswith(f"namespace/{k}") or f"/{k}/" in x for k in keep)]

    found = left()
    deadline = time.monotonic() + wait_s
    while found and all("(terminating)" in x for x in found if x.startswith("namespace/")) \
            and time.monotonic() < deadline:
        time.sleep(0.5)
        found = left()
    for item in found:
        if item.startswith("namespace/") and "(terminating)" not in item:
            name = item.split("/", 1)[1].split(" ", 1)[0]
            try:
                kube.guard.note_harness_namespace(name)
                delete_namespace(kube, name)
            except Exception:  # noqa: BLE001 - reported as a leak anyway
                pass
    return found
