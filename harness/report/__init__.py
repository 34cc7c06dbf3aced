"""Run reports: ``reports/<run-id>/`` with ``index.html`` (summary, then one section per
check with numbers, why and a plot), ``summary.json``, the raw timelines and request
records as CSV, and a ``.tar.gz`` of it all (:mod:`.bundle`, :mod:`.html`, :mod:`.plots`).
"""

from harness.report.bundle import Case, build_report, read_summary, write_report

__all__ = ["Case", "build_report", "read_summary", "write_report"]
