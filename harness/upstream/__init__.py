"""The real Kubernetes control plane on one machine: built from its Go modules
(:mod:`~harness.upstream.build`), its PKI (:mod:`~harness.upstream.pki`), its components as
supervised processes (:mod:`~harness.upstream.supervisor`) brought up and down by
:mod:`~harness.upstream.control_plane` (``harness cluster up --upstream``)."""
