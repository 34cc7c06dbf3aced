"""Offline Kubernetes API server for runs without a real cluster.

An in-memory object store (:class:`Store`) with the official client's wire surface on top
(``apiserver.py``), started in-process (:class:`Emulator`) or as a child process
(:class:`ChildEmulator`). Controllers that stand in for KServe, Knative and the kubelet use
the store directly; the harness talks to it over HTTP like to any cluster.
"""

from harness.emulator.apiserver import ServerSettings, build_app
from harness.emulator.cluster_config import ClusterConfig, NodeSpec, load_cluster_config
from harness.emulator.faults import Faults
from harness.emulator.process import ChildEmulator, Emulator
from harness.emulator.resources import BUILTIN_RESOURCES, Registry, ResourceType
from harness.emulator.status import ApiError
from harness.emulator.store import Store
from harness.emulator.watch import Watch, WatchEvent

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
