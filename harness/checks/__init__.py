"""Conformance checks: pure functions from frames, effective parameters and load records
to a :class:`~harness.checks.verdict.Verdict`.

Each module holds one check (named after what it checks); every check can fail, and
every timing claim is checked on both sides with a named error budget.
"""

from harness.checks.autoscaling import check_autoscaling_enabled
from harness.checks.band import BAND_COLUMNS, reference_band
from harness.checks.cold_start import check_cold_start
from harness.checks.configuration import check_configuration
from harness.checks.documentation import check_documentation
from harness.checks.gpu_placement import check_gpu_placement
from harness.checks.panic import check_panic
from harness.checks.rates import check_scale_up_rate
from harness.checks.requests import check_no_request_lost
from harness.checks.scale_down import check_scale_down
from harness.checks.scale_to_zero import check_scale_to_zero
from harness.checks.verdict import (
    FAIL,
    PASS,
    SKIP,
    Budget,
    Verdict,
    Window,
    timing_budget,
)

__all__ = [
    "BAND_COLUMNS",
    "FAIL",
    "PASS",
    "SKIP",
    "Budget",
    "Verdict",
    "Window",
    "check_autoscaling_enabled",
    "check_cold_start",
    "check_configuration",
    "check_documentation",
    "check_gpu_placement",
    "check_no_request_lost",
    "check_panic",
    "check_scale_down",
    "check_scale_to_zero",
    "check_scale_up_rate",
    "reference_band",
    "timing_budget",
]
