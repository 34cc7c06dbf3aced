"""Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``), decoded
into the JSON objects the store keeps, for the kinds kubectl's imperative commands send
that way: ``kubectl create namespace | configmap | secret generic | serviceaccount |
service | deployment``.

The body is the magic ``k8s\\0`` then a ``runtime.Unknown`` (``typeMeta`` {apiVersion,
kind}, ``raw`` = the object's own message). Messages are described as data below (field
number -> JSON name and type, as in ``k8s.io/api``'s ``generated.proto``); Go's protobuf
encoder writes every non-pointer field, so zero values are dropped as JSON's
``omitempty`` would, except the pointer fields in :data:`_KEEP_ZERO`. A field this table
does not know makes the request fail with 415 and the words of the working alternative
(send JSON or YAML: ``kubectl create ... --dry-run=client -o yaml | kubectl apply -f -``),
rather than dropping what the user asked for.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from harness.emulator.api.status import ApiError

MAGIC = b"k8s\x00"

ALTERNATIVE = ("send the object as JSON or YAML instead, e.g. 'kubectl create ... "
               "--dry-run=client -o yaml | kubectl apply -f -'")

# field number -> (json name, type[, message]); types: s string, b bytes, i varint int,
# t bool, m message, ss map<string,string>, sb map<string,bytes>, sq map<string,Quantity>,
# rs repeated string, rm repeated message, time, intstr, q Quantity
_F = dict[int, tuple[str, ...]]

SERVER_STATUS = "ServerStatus"
"""A ``status`` the server owns: whatever the client sent is dropped."""

MESSAGES: dict[str, _F] = {
    SERVER_STATUS: {},
    "ObjectMeta": {1: ("name", "s"), 2: ("generateName", "s"), 3: ("namespace", "s"),
                   4: ("selfLink", "s"), 5: ("uid", "s"), 6: ("resourceVersion", "s"),
                   7: ("generation", "i"), 8: ("creationTimestamp", "time"),
                   9: ("deletionTimestamp", "time"), 10: ("deletionGracePeriodSeconds", "i"),
                   11: ("labels", "ss"), 12: ("annotations", "ss"),
                   13: ("ownerReferences", "rm", "OwnerReference"),
                   14: ("finalizers", "rs")},
    "OwnerReference": {1: ("kind", "s"), 3: ("name", "s"), 4: ("uid", "s"),
                       5: ("apiVersion", "s"), 6: ("controller", "t"),
                       7: ("blockOwnerDeletion", "t")},
    "LabelSelector": {1: ("matchLabels", "ss"),
                      2: ("matchExpressions", "rm", "LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: ("key", "s"), 2: ("operator", "s"), 3: ("values", "rs")},
    "Namespace": {1: ("metadata", "m", "ObjectMeta"), 2: ("spec", "m", "NamespaceSpec"),
                  3: ("status", "m", "ServerStatus")},
    "NamespaceSpec": {1: ("finalizers", "rs")},
    "ConfigMap": {1: ("metadata", "m", "ObjectMeta"), 2: ("data", "ss"),
                  3: ("binaryData", "sb"), 4: ("immutable", "t")},
    "Secret": {1: ("metadata", "m", "ObjectMeta"), 2: ("data", "sb"), 3: ("type", "s"),
               4: ("stringData", "ss"), 5: ("immutable", "t")},
    "ServiceAccount": {1: ("metadata", "m", "ObjectMeta"),
                       2: ("secrets", "rm", "ObjectReference"),
                       3: ("imagePullSecrets", "rm", "LocalObjectReference"),
                       4: ("automountServiceAccountToken", "t")},
    "ObjectReference": {1: ("kind", "s"), 2: ("namespace", "s"), 3: ("name", "s"),
                        4: ("uid", "s"), 5: ("apiVersion", "s"), 6: ("resourceVersion", "s"),
                        7: ("fieldPath", "s")},
    "LocalObjectReference": {1: ("name", "s")},
    "Service": {1: ("metadata", "m", "ObjectMeta"), 2: ("spec", "m", "ServiceSpec"),
                3: ("status", "m", "ServerStatus")},
    "ServiceSpec": {1: ("ports", "rm", "ServicePort"), 2: ("selector", "ss"),
                    3: ("clusterIP", "s"), 4: ("type", "s"), 5: ("externalIPs", "rs"),
                    7: ("sessionAffinity", "s"), 8: ("loadBalancerIP", "s"),
                    9: ("loadBalancerSourceRanges", "rs"), 10: ("externalName", "s"),
                    11: ("externalTrafficPolicy", "s"), 12: ("healthCheckNodePort", "i"),
                    13: ("publishNotReadyAddresses", "t")},
    "ServicePort": {1: ("name", "s"), 2: ("protocol", "s"), 3: ("port", "i"),
                    4: ("targetPort", "intstr"), 5: ("nodePort", "i"),
                    6: ("appProtocol", "s")},
    "Deployment": {1: ("metadata", "m", "ObjectMeta"), 2: ("spec", "m", "DeploymentSpec"),
                   3: ("status", "m", "ServerStatus")},
    "DeploymentSpec": {1: ("replicas", "i"), 2: ("selector", "m", "LabelSelector"),
                       3: ("template", "m", "PodTemplateSpec"),
                       4: ("strategy", "m", "DeploymentStrategy"),
                       5: ("minReadySeconds", "i"), 6: ("revisionHistoryLimit", "i"),
                       7: ("paused", "t"), 9: ("progressDeadlineSeconds", "i")},
    "DeploymentStrategy": {1: ("type", "s"), 2: ("rollingUpdate", "m", "RollingUpdate")},
    "RollingUpdate": {1: ("maxUnavailable", "intstr"), 2: ("maxSurge", "intstr")},
    "PodTemplateSpec": {1: ("metadata", "m", "ObjectMeta"), 2: ("spec", "m", "PodSpec")},
    "PodSpec": {2: ("containers", "rm", "Container"), 3: ("restartPolicy", "s"),
                4: ("terminationGracePeriodSeconds", "i"), 6: ("dnsPolicy", "s"),
                7: ("nodeSelector", "ss"), 8: ("serviceAccountName", "s"),
                9: ("serviceAccount", "s"), 10: ("nodeName", "s"), 11: ("hostNetwork", "t"),
                12: ("hostPID", "t"), 13: ("hostIPC", "t"), 16: ("hostname", "s"),
                17: ("subdomain", "s"), 19: ("schedulerName", "s"),
                20: ("initContainers", "rm", "Container"), 24: ("priorityClassName", "s")},
    "Container": {1: ("name", "s"), 2: ("image", "s"), 3: ("command", "rs"),
                  4: ("args", "rs"), 5: ("workingDir", "s"),
                  6: ("ports", "rm", "ContainerPort"), 7: ("env", "rm", "EnvVar"),
                  8: ("resources", "m", "ResourceRequirements"),
                  13: ("terminationMessagePath", "s"), 14: ("imagePullPolicy", "s"),
                  16: ("stdin", "t"), 17: ("stdinOnce", "t"), 18: ("tty", "t"),
                  20: ("terminationMessagePolicy", "s")},
    "ContainerPort": {1: ("name", "s"), 2: ("hostPort", "i"), 3: ("containerPort", "i"),
                      4: ("protocol", "s"), 5: ("hostIP", "s")},
    "EnvVar": {1: ("name", "s"), 2: ("value", "s")},
    "ResourceRequirements": {1: ("limits", "sq"), 2: ("requests", "sq")},
}

KINDS = {("v1", "Namespace"): "Namespace", ("v1", "ConfigMap"): "ConfigMap",
         ("v1", "Secret"): "Secret", ("v1", "ServiceAccount"): "ServiceAccount",
         ("v1", "Service"): "Service", ("apps/v1", "Deployment"): "Deployment"}

_KEEP_ZERO = {("DeploymentSpec", "replicas"), ("ServicePort", "port")}
"""Pointer (or required) fields whose zero value is meant."""

_KEEP_EMPTY = {("Container", "resources"), ("Deployment", "status"),
               ("DeploymentSpec", "strategy"), ("Service", "status"), ("Namespace", "spec"),
               ("Namespace", "status")}
"""Struct fields Go's JSON encoder writes even when empty (no ``omitempty``)."""


class ProtobufError(ValueError):
    """The body is not a Kubernetes protobuf this server decodes."""


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(data):
            raise ProtobufError("truncated varint")
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def fields(data: bytes) -> list[tuple[int, int, Any]]:
    """The (field number, wire type, value) triples of one message."""
    out = []
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            n, i = _varint(data, i)
            value, i = data[i:i + n], i + n
            if i > len(data):
                raise ProtobufError("truncated field")
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((num, wire, value))
    return out


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _time(data: bytes) -> str | None:
    secs = 0
    for num, _, value in fields(data):
        if num == 1:
            secs = _signed(value)
    if secs == 0:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(secs))


def _intstr(data: bytes) -> int | str:
    kind, ival, sval = 0, 0, ""
    for num, _, value in fields(data):
        if num == 1:
            kind = value
        elif num == 2:
            ival = _signed(value)
        elif num == 3:
            sval = value.decode()
    return sval if kind == 1 else ival


def _map_entry(data: bytes) -> tuple[str, bytes]:
    key, value = "", b""
    for num, _, v in fields(data):
        if num == 1:
            key = v.decode()
        elif num == 2:
            value = v
    return key, value


def _quantity(data: bytes) -> str:
    return next((v.decode() for num, _, v in fields(data) if num == 1), "")


def decode_message(name: str, data: bytes) -> dict[str, Any]:
    if name == SERVER_STATUS:
        return {}
    spec = MESSAGES[name]
    out: dict[str, Any] = {}
    for num, _, value in fields(data):
        if num not in spec:
            raise ProtobufError(f"field {num} of {name} is not decoded by the emulated "
                                "API server")
        json_name, kind, *sub = spec[num]
        if kind == "s":
            out[json_name] = value.decode()
        elif kind == "b":
            out[json_name] = base64.b64encode(value).decode()
        elif kind == "i":
            out[json_name] = _signed(value)
        elif kind == "t":
            out[json_name] = bool(value)
        elif kind == "m":
            out[json_name] = decode_message(sub[0], value)
        elif kind == "rm":
            out.setdefault(json_name, []).append(decode_message(sub[0], value))
        elif kind == "rs":
            out.setdefault(json_name, []).append(value.decode())
        elif kind in ("ss", "sb", "sq"):
            key, raw = _map_entry(value)
            out.setdefault(json_name, {})[key] = (
                raw.decode() if kind == "ss" else base64.b64encode(raw).decode()
                if kind == "sb" else _quantity(raw))
        elif kind == "time":
            out[json_name] = _time(value)
        elif kind == "intstr":
            out[json_name] = _intstr(value)
    return {k: v for k, v in out.items()
            if (name, k) in _KEEP_ZERO or (name, k) in _KEEP_EMPTY
            or v not in ("", 0, False, None, {}, [])}


def decode(body: bytes) -> dict[str, Any]:
    """A ``k8s\\0``-framed ``runtime.Unknown`` -> the JSON object (apiVersion and kind
    from its type meta); :class:`ProtobufError` for what is not decoded here."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic")
    api_version = kind = ""
    raw = b""
    for num, _, value in fields(body[len(MAGIC):]):
        if num == 1:
            for n, _, v in fields(value):
                if n == 1:
                    api_version = v.decode()
                elif n == 2:
                    kind = v.decode()
        elif num == 2:
            raw = value
    message = KINDS.get((api_version, kind))
    if message is None:
        raise ProtobufError(f"{kind or 'this kind'} ({api_version or '?'}) is not decoded "
                            "from protobuf by the emulated API server")
    obj = decode_message(message, raw)
    return {"apiVersion": api_version, "kind": kind, **obj}


def unsupported(reason: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media "
                    f"types include: application/json, application/yaml, "
                    f"application/vnd.kubernetes.protobuf (Namespace, ConfigMap, Secret, "
                    f"ServiceAccount, Service, Deployment); {reason}; {ALTERNATIVE}")
