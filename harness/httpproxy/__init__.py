"""The HTTP proxy core both ingresses share (the emulator's and the upstream cluster's
Knative ``Ingress`` implementation): :mod:`.pool` (pooled HTTP/1.1 client to backends),
:mod:`.forward` (headers sent on, answers relayed back, the listening server) and
:mod:`.split` (weighted traffic splits). It imports nothing else of the harness.
"""
