"""``harness gc``: refuses (exit 2, nothing deleted) on a context not on the allow-list;
with it, deletes the labelled namespaces older than --older-than and keeps the rest."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.emulator import Emulator, Store
from harness.kube.safety import ENV_ALLOWED, ENV_ALLOWED_FILE, RUN_LABEL


@pytest.fixture
def old_and_new(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.delenv(ENV_ALLOWED, raising=False)
    monkeypatch.setenv(ENV_ALLOWED_FILE, str(tmp_path / "no-allow-list"))
    now = time.time()
    clock = [now - 3 * 3600]
    store = Store(clock=lambda: clock[0])
    store.create("namespaces", {"metadata": {"name": "hx-crashed-run-t",
                                             "labels": {RUN_LABEL: "crashed-run"}}})
    clock[0] = now - 600
    store.create("namespaces", {"metadata": {"name": "hx-live-run-t",
                                             "labels": {RUN_LABEL: "live-run"}}})
    clock[0] = now
    with Emulator(store=store) as emu:
        yield store, emu.write_kubeconfig(tmp_path / "kc")


def names(store: Store) -> set[str]:
    return {n["metadata"]["name"] for n in store.list("namespaces")["items"]
            if n["metadata"]["name"].startswith("hx-")}


def test_gc_on_a_context_not_allowed_exits_2_and_deletes_nothing(
        old_and_new: tuple[Store, Path], capsys: pytest.CaptureFixture[str]) -> None:
    store, kc = old_and_new
    assert main(["gc", "--kubeconfig", str(kc), "--older-than", "1h"]) == 2
    assert "not on the allow-list" in capsys.readouterr().err
    assert names(store) == {"hx-crashed-run-t", "hx-live-run-t"}


def test_gc_deletes_only_what_is_older_than_the_limit(
        old_and_new: tuple[Store, Path], capsys: pytest.CaptureFixture[str]) -> None:
    store, kc = old_and_new
    args = ["gc", "--kubeconfig", str(kc), "--older-than", "1h",
            "--allow-context", "harness-local"]
    assert main([*args, "--dry-run"]) == 0
    assert "would delete namespace/hx-crashed-run-t" in capsys.readouterr().out
    assert names(store) == {"hx-crashed-run-t", "hx-live-run-t"}
    assert main([*args, "--wait"]) == 0
    out = capsys.readouterr().out
    assert "deleted namespace/hx-crashed-run-t" in out
    assert "kept namespace/hx-live-run-t: younger than the limit" in out
    assert names(store) == {"hx-live-run-t"}


def test_gc_rejects_a_malformed_duration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gc", "--older-than", "2 hours"]) == 2
    assert "--older-than" in capsys.readouterr().err
