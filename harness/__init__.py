"""Autoscaling conformance and load-testing harness for KServe InferenceServices on Knative.

The package is laid out by concern (see ``../shared/docs/architecture.md``):
``params`` (autoscaler parameters), ``kpa`` (reference model of Knative's pod
autoscaler), ``kube`` (cluster access), ``load`` (Locust runs), ``observe``
(timeline recorder), ``checks`` (conformance verdicts), ``report`` and ``emulator``.
"""

__version__ = "0.1.0"
