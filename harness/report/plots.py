"""One PNG per check: offered load, ready and desired pods, panic periods, the reference
model's band, and the check's expected window, over time (matplotlib, Agg)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from harness.observe.load import offered_load  # noqa: E402
from harness.observe.series import periods  # noqa: E402


def _steps(df: pd.DataFrame, col: str, t0: float, end: float) -> tuple[list[float], list[float]]:
    d = df[df[col].notna() & (df[col] >= 0)] if not df.empty else df
    if d.empty:
        return [], []
    xs = [float(t) - t0 for t in d["time"]] + [end - t0]
    ys = [float(v) for v in d[col]] + [float(d[col].iloc[-1])]
    return xs, ys


def plot_timeline(
    path: Path,
    *,
    title: str,
    ready: pd.DataFrame,
    scale: pd.DataFrame,
    panic: pd.DataFrame,
    records: pd.DataFrame | None,
    band: pd.DataFrame | None,
    t0: float,
    end: float,
    window: dict | None = None,
    metric: str = "concurrency",
) -> Path:
    """Write the plot to ``path`` and return it. Times are seconds after ``t0``."""
    fig, ax = plt.subplots(figsize=(9, 4.4), dpi=90)
    try:
        if band is not None and not band.empty:
            x = band["time"] - t0
            ax.fill_between(x, band["lower"], band["upper"], step="post", color="#9ecae1",
                            alpha=0.45, label="reference band")
            ax.step(x, band["model"], where="post", color="#3182bd", lw=1, ls="--",
                    label="reference model")
        xs, ys = _steps(ready, "ready", t0, end)
        if xs:
            ax.step(xs, ys, where="post", color="#238b45", lw=2, label="ready pods")
        if not scale.empty:
            pa = scale["pa"].value_counts().idxmax()
            xs, ys = _steps(scale[scale["pa"] == pa], "desired", t0, end)
            if xs:
                ax.step(xs, ys, where="post", color="#d94801", lw=1.5, label="desired pods")
        for i, (a, b) in enumerate(periods(panic, end) if not panic.empty else []):
            inferred = bool(panic["inferred"].any())
            ax.axvspan(a - t0, b - t0, color="#fb6a4a", alpha=0.15,
                       label=("panic (inferred)" if inferred else "panic") if i == 0 else None)
        if window and window.get("anchor_time") is not None:
            at = float(window["anchor_time"]) - t0
            for key, style in (("not_before", ":"), ("by", "-.")):
                v = window.get(key)
                if v is not None and not math.isinf(float(v)):
                    ax.axvline(at + float(v), color="black", ls=style, lw=1,
                               label=f"{key.replace('_', ' ')} {float(v):.1f} s")
            ax.axvline(at, color="grey", lw=0.8, label=str(window.get("anchor") or "anchor"))
        ax.set_xlabel("seconds")
        ax.set_ylabel("pods")
        ax.set_xlim(0, max(1.0, end - t0))
        ax.set_ylim(bottom=0)
        if records is not None and not records.empty:
            load = offered_load(records, t0, end)
            ax2 = ax.twinx()
            ax2.plot(load["time"] - t0 + 0.5, load[metric], color="#6a51a3", lw=1, alpha=0.8,
                     label=f"offered load ({metric})")
            ax2.set_ylabel(f"offered {metric}")
            ax2.set_ylim(bottom=0)
            h2, l2 = ax2.get_legend_handles_labels()
        else:
            h2, l2 = [], []
        h1, l1 = ax.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8,
                  ncol=4, frameon=False)
        ax.set_title(title, fontsize=10, loc="left")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path
