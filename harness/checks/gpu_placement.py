"""Check 8, GPU placement.

Every predictor pod requests the GPU and lands on a node of the requested GPU class;
a pod that finds no capacity stays Pending with the scheduler's reason (a
FailedScheduling event or PodScheduled=False message) and never lands elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from harness.checks.common import ParamsInput
from harness.checks.verdict import FAIL, PASS, Verdict, skip
from harness.observe.frames import Frames

CHECK = "gpu-placement"
CLASS_LABEL = "gpu.nvidia.com/class"


def check_gpu_placement(
    frames: Frames,
    params: ParamsInput | None,
    records: pd.DataFrame | None,
    *,
    gpu_class: str,
    nodes: Mapping[str, Mapping[str, str]],
    class_label: str = CLASS_LABEL,
    gpus: float = 1.0,
    settle: float = 2.0,
) -> Verdict:
    """``nodes``: node name -> labels. ``settle``: seconds a pod may be Pending without a
    scheduler reason before the recording ends (its event may still be on the way)."""
    claim = (f"every predictor pod requests {gpus:g} nvidia.com/gpu and runs on a "
             f"{class_label}={gpu_class} node, or stays Pending with the scheduler's reason")
    key = f"nodeAffinity {class_label} In [{gpu_class}]"
    pods = frames.pods
    if pods.empty:
        return skip(CHECK, claim, key, "no pods were recorded")
    reasons = frames.scheduling
    rows = []
    for _, pod in pods.iterrows():
        name, node = str(pod["pod"]), str(pod["node"] or "")
        problem = ""
        where = ""
        if float(pod["gpu"]) < gpus:
            problem = f"requests {float(pod['gpu']):g} nvidia.com/gpu, not {gpus:g}"
        if node:
            labels = nodes.get(node)
            cls = None if labels is None else labels.get(class_label)
            where = f"{node} ({class_label}={cls})"
            if labels is None:
                problem = problem or f"on node {node}, which is not among the known nodes"
            elif cls != gpu_class:
                problem = problem or f"on node {node} of class {cls}, not {gpu_class}"
        else:
            msgs = reasons[(reasons["pod"] == name) & (reasons["reason"] == "FailedScheduling")]
            msg = str(msgs["message"].iloc[-1]) if not msgs.empty else str(pod["pending_reason"])
            where = f"Pending: {msg}" if msg else "Pending"
            if not msg and frames.end - float(pod["created"]) > settle and not problem:
                problem = "Pending without any scheduler reason"
        rows.append({"pod": name, "placement": where, "gpu": float(pod["gpu"]),
                     "affinity": pod["affinity"], "ok": not problem, "problem": problem})
    ev = pd.DataFrame(rows)
    bad = ev[~ev["ok"]]
    placed = int((pods["node"].astype(str) != "").sum())
    pending = len(pods) - placed
    return Verdict(
        CHECK, claim, key, PASS if bad.empty else FAIL,
        expected=(f"all pods on {gpu_class} nodes with the GPU requested; "
                  "Pending ones give a reason"),
        observed=f"{placed} placed, {pending} pending, {len(bad)} wrong",
        why="" if bad.empty else f"{bad['pod'].iloc[0]}: {bad['problem'].iloc[0]}",
        numbers={"pods": float(len(pods)), "placed": float(placed), "pending": float(pending),
                 "wrong": float(len(bad))},
        evidence=pd.concat([bad, ev[ev["ok"]]], ignore_index=True),
    )
