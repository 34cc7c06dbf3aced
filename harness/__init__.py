"""Autoscaling conformance and load-testing harness for KServe InferenceServices on Knative.

The package is laid out by concern (see ``docs/architecture.md``: layers, packages, the
import rule): ``params`` (autoscaler parameters), ``kpa`` (reference model of Knative's pod
autoscaler), ``kube`` (cluster access), ``load`` (Locust runs), ``observe`` (timeline
recorder), ``checks`` (conformance verdicts), ``report``, ``emulator`` (the offline
cluster), ``matrix`` (the mutation matrix), ``suite`` (the suites' pytest plugin) and
``commands`` (the CLI).
"""

__version__ = "0.1.0"
