"""The three patch types, applied to plain dicts."""

from __future__ import annotations

from typing import Any

import pytest

from harness.emulator.api.patch import PatchError, json_patch, merge_patch, strategic_merge_patch

POD: dict[str, Any] = {
    "metadata": {"labels": {"a": "1"}, "finalizers": ["x"]},
    "spec": {"containers": [{"name": "main", "image": "m:1", "env": [{"name": "A",
                                                                      "value": "1"}]}]},
    "status": {"conditions": [{"type": "Ready", "status": "False"}]},
}


def test_json_patch_operations() -> None:
    out = json_patch(POD, [
        {"op": "add", "path": "/metadata/labels/b", "value": "2"},
        {"op": "replace", "path": "/spec/containers/0/image", "value": "m:2"},
        {"op": "add", "path": "/metadata/finalizers/-", "value": "y"},
        {"op": "copy", "from": "/metadata/labels/a", "path": "/metadata/labels/c"},
        {"op": "move", "from": "/metadata/labels/c", "path": "/metadata/labels/d"},
        {"op": "remove", "path": "/status"},
        {"op": "test", "path": "/metadata/labels/d", "value": "1"},
    ])
    assert out["metadata"]["labels"] == {"a": "1", "b": "2", "d": "1"}
    assert out["metadata"]["finalizers"] == ["x", "y"]
    assert out["spec"]["containers"][0]["image"] == "m:2"
    assert "status" not in out and "status" in POD  # the input is untouched


@pytest.mark.parametrize("ops", [
    [{"op": "test", "path": "/metadata/labels/a", "value": "2"}],
    [{"op": "remove", "path": "/nope"}],
    [{"op": "replace", "path": "/spec/containers/5", "value": {}}],
])
def test_json_patch_failures(ops: list[dict[str, Any]]) -> None:
    with pytest.raises(PatchError):
        json_patch(POD, ops)


def test_merge_patch_replaces_lists_and_deletes_nulls() -> None:
    out = merge_patch(POD, {"metadata": {"labels": {"a": None, "b": "2"}},
                            "status": {"conditions": [{"type": "Scheduled"}]}})
    assert out["metadata"]["labels"] == {"b": "2"}
    assert out["status"]["conditions"] == [{"type": "Scheduled"}]


def test_strategic_merge_merges_lists_by_key() -> None:
    out = strategic_merge_patch(POD, {
        "metadata": {"finalizers": ["z"]},
        "spec": {"containers": [{"name": "main", "env": [{"name": "B", "value": "2"}]},
                                {"name": "side", "image": "s:1"}]},
        "status": {"conditions": [{"type": "Ready", "status": "True"},
                                  {"type": "Initialized", "status": "True"}]},
    })
    assert out["metadata"]["finalizers"] == ["x", "z"]
    main, side = out["spec"]["containers"]
    assert main["image"] == "m:1" and [e["name"] for e in main["env"]] == ["A", "B"]
    assert side == {"name": "side", "image": "s:1"}
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"},
                                           {"type": "Initialized", "status": "True"}]


def test_strategic_merge_directives() -> None:
    out = strategic_merge_patch(POD, {
        "spec": {"containers": [{"name": "main", "$patch": "delete"}]},
        "status": {"$patch": "replace", "phase": "Running"},
        "metadata": {"$deleteFromPrimitiveList/finalizers": ["x"],
                     "$setElementOrder/finalizers": []},
    })
    assert out["spec"]["containers"] == []
    assert out["status"] == {"phase": "Running"}
    assert out["metadata"]["finalizers"] == []
    assert not any(k.startswith("$") for k in out["metadata"])
