"""Safety: nothing is written on a context that is not allowed; writes go only to harness
namespaces; config-autoscaler only with the explicit flag; the allow-list comes from the
option, the environment variable or a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.emulator import Emulator
from harness.errors import UserError
from harness.kube import apply as kapply
from harness.kube.client import Kube
from harness.kube.knative import read_config_autoscaler, write_config_autoscaler
from harness.kube.namespaces import create_namespace, new_run_id
from harness.kube.safety import ENV_ALLOWED, RUN_LABEL, Guard, allowed_contexts

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}}


def guarded(kube: Kube, guard: Guard) -> Kube:
    return Kube(kube.api_client, context=kube.context, guard=guard, retry=kube.retry)


def namespace_count(emulator: Emulator) -> int:
    return len(emulator.store.list("namespaces")["items"])


def test_a_context_not_on_the_allow_list_creates_nothing(kube: Kube, emulator: Emulator
                                                         ) -> None:
    k = guarded(kube, Guard(kube.context, mode="current", allowed={"staging"}))
    before = namespace_count(emulator)
    with pytest.raises(UserError, match="'harness-local' is not on the allow-list"):
        create_namespace(k, new_run_id(), "t")
    with pytest.raises(UserError, match="not on the allow-list"):
        kapply.apply(k, CM, namespace="default")
    assert namespace_count(emulator) == before


def test_the_allow_list_lets_the_same_context_create(kube: Kube, emulator: Emulator) -> None:
    k = guarded(kube, Guard(kube.context, mode="current", allowed={kube.context}))
    name = create_namespace(k, new_run_id(), "allowed")
    try:
        assert emulator.store.get("namespaces", name)["metadata"]["labels"][RUN_LABEL]
    finally:
        emulator.store.delete("namespaces", name)


def test_local_and_kind_clusters_need_no_allow_list() -> None:
    Guard("kind-harness", mode="kind").check_context()
    Guard("harness-local", mode="local").check_context()
    with pytest.raises(UserError):
        Guard("kind-harness", mode="current").check_context()


def test_writes_to_namespaces_the_harness_did_not_create_are_refused(
        kube: Kube, emulator: Emulator, namespace: str) -> None:
    emulator.store.create("namespaces", {"metadata": {"name": "hx-impostor"}})  # no label
    try:
        for ns in ("default", "kube-system", "hx-impostor"):
            with pytest.raises(UserError, match="not created by the harness"):
                kapply.apply(kube, CM, namespace=ns)
            assert emulator.store.try_get("configmaps", "x", namespace=ns) is None
        with pytest.raises(UserError, match="only touches namespaces named hx-"):
            kapply.delete(kube, "namespaces", "default")
        with pytest.raises(UserError, match="must carry the label"):
            kube.guard.check_write("create", "namespaces", None, "hx-x",
                                   {"metadata": {"name": "hx-x"}})
        with pytest.raises(UserError, match="cluster-scoped"):
            kapply.patch(kube, "nodes", "cpu-1", {"metadata": {"labels": {"a": "b"}}})
        kapply.apply(kube, CM, namespace=namespace)  # its own namespace: fine
        assert emulator.store.get("configmaps", "x", namespace=namespace)["data"] == {"a": "1"}
    finally:
        emulator.store.delete("namespaces", "hx-impostor")


def test_a_labelled_namespace_made_elsewhere_is_writable(kube: Kube, emulator: Emulator,
                                                         run_id: str) -> None:
    """Another worker's (or an earlier process's) namespace: prefix and label are read
    from the cluster."""
    emulator.store.create("namespaces", {"metadata": {"name": "hx-other-worker",
                                                      "labels": {RUN_LABEL: run_id}}})
    try:
        kapply.apply(kube, CM, namespace="hx-other-worker")
        written = emulator.store.get("configmaps", "x", namespace="hx-other-worker")
        assert written["data"] == {"a": "1"}
    finally:
        emulator.store.delete("namespaces", "hx-other-worker")


def test_config_autoscaler_is_written_only_with_the_flag(kube: Kube,
                                                         emulator: Emulator) -> None:
    emulator.store.create("namespaces", {"metadata": {"name": "knative-serving"}}) \
        if emulator.store.try_get("namespaces", "knative-serving") is None else None
    if emulator.store.try_get("configmaps", "config-autoscaler",
                              namespace="knative-serving") is None:
        emulator.store.create("configmaps", {"metadata": {"name": "config-autoscaler"},
                                             "data": {"stable-window": "60s"}},
                              namespace="knative-serving")
    with pytest.raises(UserError, match="needs the explicit flag"):
        write_config_autoscaler(kube, {"stable-window": "6s"})
    assert read_config_autoscaler(kube)["stable-window"] == "60s"
    k = guarded(kube, Guard(kube.context, allowed={kube.context}, allow_config_write=True))
    write_config_autoscaler(k, {"stable-window": "6s"})
    assert read_config_autoscaler(kube)["stable-window"] == "6s"
    with pytest.raises(UserError):  # the flag covers that one ConfigMap only
        kapply.apply(k, {**CM, "metadata": {"name": "config-other"}},
                     namespace="knative-serving")


def test_allow_list_sources_option_env_and_file(tmp_path: Path) -> None:
    f = tmp_path / "allowed"
    f.write_text("# staging clusters\nstaging-a\n  staging-b  # comment\n\n")
    got = allowed_contexts(["opt"], environ={ENV_ALLOWED: "env1, env2"}, file=f)
    assert got == {"opt", "env1", "env2", "staging-a", "staging-b"}
    assert allowed_contexts(environ={"HARNESS_ALLOWED_CONTEXTS_FILE": str(f)}) == {
        "staging-a", "staging-b"}
    assert allowed_contexts(environ={}, file=tmp_path / "missing") == set()
