"""The emulated data plane: what requests go through, not what the API server stores.

:mod:`.ingress` routes by ``Host`` to a revision's pods (over :mod:`harness.httpproxy`),
through the activator's buffer and queue-proxy's concurrency limit (:mod:`.activator`),
metering concurrency per second (:mod:`.concurrency`); :mod:`.metrics` serves the
autoscaler's Prometheus endpoint. Nothing here imports the API server or the controllers.
"""
