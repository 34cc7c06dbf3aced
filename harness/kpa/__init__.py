"""Reference model of Knative's pod autoscaler (KPA), in virtual time.

Faithful to ``knative-kpa.md`` §4-9: 1 s metric buckets (:mod:`.aggregation`), the
scale-down-delay window (:mod:`.maxwindow`), one revision's metric collection
(:mod:`.collector`), the 2 s decider tick (:mod:`.decider`), the KPA reconciler with
bounds and scale-to-zero gates (:mod:`.reconciler`), and :func:`simulate`, which runs
them together over a load trace (:mod:`.simulate`). Scenario files for ``harness
simulate`` are read by :mod:`.scenario`.
"""

from harness.kpa.aggregation import LinearBuckets, WeightedBuckets, make_buckets
from harness.kpa.collector import Collection
from harness.kpa.decider import Decider, ScaleResult, initial_ebc
from harness.kpa.maxwindow import MaxWindow
from harness.kpa.reconciler import PAState, Reconciler, ReconcileResult, SKSMode
from harness.kpa.simulate import COLUMNS, simulate, simulate_columns

__all__ = [
    "COLUMNS",
    "Collection",
    "Decider",
    "LinearBuckets",
    "MaxWindow",
    "PAState",
    "ReconcileResult",
    "Reconciler",
    "SKSMode",
    "ScaleResult",
    "WeightedBuckets",
    "initial_ebc",
    "make_buckets",
    "simulate",
    "simulate_columns",
]
