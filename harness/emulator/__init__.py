"""Offline Kubernetes cluster for runs without a real one.

Three parts:

* :mod:`harness.emulator.api`: the API server. An in-memory object store (:class:`Store`)
  with the official client's wire surface on top (``api/apiserver.py``), started
  in-process (:class:`Emulator`) or as a child process (:class:`ChildEmulator`).
* :mod:`harness.emulator.controllers`: stand-ins for KServe, Knative, the KPA, the
  Deployment controller, the scheduler and the kubelet; they use the store directly.
* :mod:`harness.emulator.dataplane`: the ingress, the activator's buffer, queue-proxy's
  concurrency metering and the autoscaler's metrics endpoint.

:class:`~harness.emulator.local_cluster.LocalCluster` starts all three as one; the
harness talks to it over HTTP like to any cluster.
"""

from harness.emulator.api.apiserver import ServerSettings, build_app
from harness.emulator.api.faults import Faults
from harness.emulator.api.process import ChildEmulator, Emulator
from harness.emulator.api.registry import BUILTIN_RESOURCES, Registry, ResourceType
from harness.emulator.api.status import ApiError
from harness.emulator.api.store import Store
from harness.emulator.api.subscriptions import Watch, WatchEvent
from harness.emulator.cluster_config import ClusterConfig, NodeSpec, load_cluster_config

__all__ = [
    "BUILTIN_RESOURCES",
    "ApiError",
    "ChildEmulator",
    "ClusterConfig",
    "Emulator",
    "Faults",
    "NodeSpec",
    "Registry",
    "ResourceType",
    "ServerSettings",
    "Store",
    "Watch",
    "WatchEvent",
    "build_app",
    "load_cluster_config",
]
