"""The only code that talks to the Kubernetes API.

* :mod:`.client`: kubeconfig/context -> :class:`Kube` (client + guard + retries);
* :mod:`.resources`: the resources used, as data (REST paths for core and custom kinds);
* :mod:`.apply`: apply/create/patch/delete/wait-gone, get and list;
* :mod:`.wait`: wait for conditions (InferenceService Ready) with a clear timeout error;
* :mod:`.watch`: a watch that resumes, re-lists on 410 and survives restarts;
* :mod:`.knative`: ``config-autoscaler``, PodAutoscalers, Revisions, events, ingress;
* :mod:`.safety`: the context allow-list and the write :class:`Guard`;
* :mod:`.namespaces`: run namespaces, ``gc`` and the leak check;
* :mod:`.crds`: is KServe/Knative installed (skip reasons);
* :mod:`.redact`: credentials out of logs and reports.
"""

from harness.kube.client import Kube, RetriesExhausted, RetryPolicy, load_api_client
from harness.kube.safety import NAMESPACE_PREFIX, RUN_LABEL, TEST_LABEL, Guard
from harness.kube.watch import ResumingWatch

__all__ = [
    "NAMESPACE_PREFIX",
    "RUN_LABEL",
    "TEST_LABEL",
    "Guard",
    "Kube",
    "ResumingWatch",
    "RetriesExhausted",
    "RetryPolicy",
    "load_api_client",
]
