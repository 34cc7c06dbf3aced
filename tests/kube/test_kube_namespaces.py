"""Run namespaces: naming and labels, gc removes only labelled namespaces older than the
limit, the leak check lists what a run left behind."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.emulator import Emulator, Store
from harness.kube import apply as kapply
from harness.kube.client import Kube, load_api_client
from harness.kube.namespaces import (
    create_namespace,
    delete_namespace,
    gc,
    leaks,
    namespace_name,
    new_run_id,
)
from harness.kube.safety import RUN_LABEL, TEST_LABEL, Guard

ISVC = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": "m"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                         "storageUri": "s3://b/m"}}}}


def test_namespace_names_fit_a_dns_label_and_carry_run_and_test() -> None:
    run = new_run_id()
    assert len(run) == 13 and run[8] == "-"
    name = namespace_name(run, "tests/test_panic.py::test_Burst_Enters_Panic[fast-" + "x" * 80)
    assert name.startswith(f"hx-{run}-tests-test-panic-py-test-burst-enters-panic")
    assert len(name) <= 63 and not name.endswith("-")
    with pytest.raises(ValueError):
        namespace_name("Bad_Run", "t")


def test_created_namespace_is_labelled_and_owned(kube: Kube, emulator: Emulator,
                                                 run_id: str) -> None:
    name = create_namespace(kube, run_id, "test_labels")
    labels = emulator.store.get("namespaces", name)["metadata"]["labels"]
    assert labels[RUN_LABEL] == run_id and labels[TEST_LABEL] == "test-labels"
    assert name in kube.guard.owned
    assert delete_namespace(kube, name, wait=True, timeout=10)
    assert emulator.store.try_get("namespaces", name) is None


def test_gc_removes_only_labelled_namespaces_older_than_the_limit(tmp_path: Path) -> None:
    """A separate API server whose store clock is set back to make old namespaces."""
    now = time.time()
    clock = [now]
    store = Store(clock=lambda: clock[0])
    cases = {
        "hx-old-labelled": ({RUN_LABEL: "old1"}, 3 * 3600),
        "hx-young-labelled": ({RUN_LABEL: "new1"}, 60),
        "hx-old-unlabelled": ({}, 3 * 3600),
        "old-labelled-no-prefix": ({RUN_LABEL: "old2"}, 3 * 3600),
    }
    for name, (labels, age) in cases.items():
        clock[0] = now - age
        store.create("namespaces", {"metadata": {"name": name, "labels": labels}})
    clock[0] = now
    with Emulator(store=store) as emu:
        api, ctx = load_api_client(emu.write_kubeconfig(tmp_path / "kc"))
        with Kube(api, context=ctx, guard=Guard(ctx, allowed={ctx})) as kube:
            dry = gc(kube, 2 * 3600, dry_run=True)
            assert dry.deleted == ["hx-old-labelled"]
            assert store.try_get("namespaces", "hx-old-labelled") is not None
            done = gc(kube, 2 * 3600, wait=True, timeout=10)
            assert done.deleted == ["hx-old-labelled"]
            assert [n for n, _ in done.kept] == ["hx-young-labelled"]
            assert "younger than the limit" in done.kept[0][1]
        present = {n for n in cases if store.try_get("namespaces", n) is not None}
        assert present == {"hx-young-labelled", "hx-old-unlabelled", "old-labelled-no-prefix"}


def test_leak_check_lists_what_a_run_left_and_nothing_after_cleanup(
        kube: Kube, emulator: Emulator, run_id: str) -> None:
    assert leaks(kube, run_id) == []
    a = create_namespace(kube, run_id, "leak-a")
    b = create_namespace(kube, run_id, "leak-b")
    other = create_namespace(kube, new_run_id(), "other-run")
    kapply.apply(kube, ISVC, namespace=a)
    try:
        found = leaks(kube, run_id)
        assert f"namespace/{a}" in found and f"namespace/{b}" in found
        assert f"inferenceservices/{a}/m" in found
        assert not any(other in f for f in found)
        for ns in (a, b):
            delete_namespace(kube, ns, wait=True, timeout=10)
        assert leaks(kube, run_id) == []
    finally:
        for ns in (a, b, other):
            if emulator.store.try_get("namespaces", ns) is not None:
                emulator.store.delete("namespaces", ns)
