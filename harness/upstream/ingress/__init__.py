"""Our Knative ``Ingress`` implementation for the upstream cluster, in place of Kourier's
Envoy: :mod:`.routes` (Ingress objects -> route tables and status, pure),
:mod:`.proxy` (the listeners: host, path, headers, splits, appended headers, timeouts,
over the proxy core :mod:`harness.httpproxy` it shares with the emulator's ingress),
:mod:`.controller` (watches, programs the proxy, writes status), :mod:`.objects` (its
Services, RBAC and client identity in the cluster) and :mod:`.__main__` (the process
``harness cluster up --upstream`` supervises).
"""
