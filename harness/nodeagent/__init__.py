"""Our kubelet replacement for the upstream cluster (:mod:`harness.upstream`): registers
the cluster file's nodes and keeps their Leases and status fresh."""
