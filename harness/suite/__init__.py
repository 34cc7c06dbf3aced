"""Machinery behind the conformance suites' pytest plugin (:mod:`harness.suite.plugin`).

* :mod:`.cluster`: the session's cluster (start the emulator, or connect to kind or the
  current context through :mod:`harness.kube` with the safety guard);
* :mod:`.case`: one test's case (namespace, deployed services, timeline, load records,
  verdicts) and the parts each test leaves for the run report;
* :mod:`.report`: the run report at session end (from every worker's parts) and the
  leak check.

The plugin imports these lazily, so loading it costs nothing when no suite runs.
"""
