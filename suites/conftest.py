"""The conformance suites: one file per documented claim, run by ``make conformance``.

The fixtures, options and the run report come from :mod:`harness.suite.plugin`, loaded
here so that it is active only where the suites are collected (see its docstring for the
invocations).
"""

pytest_plugins = ("harness.suite.plugin",)
