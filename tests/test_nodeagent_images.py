"""The node agent's image table: the real Knative and KServe images resolve to binaries of
the upstream build (a missing build is the pod's ErrImagePull, naming ``make upstream``), a
container command naming the image's own entrypoint runs the built binary, and a malformed
entry is refused with one line."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from harness.errors import UserError
from harness.nodeagent.images import ImageNotFound, load_table, resolve
from harness.nodeagent.network import Network
from harness.nodeagent.pods import PodAgent
from harness.upstream import build
from tests.test_nodeagent_pods import Recorder, _pod

KNATIVE = "gcr.io/knative-releases/knative.dev/serving/cmd/{}:v1.21.1"
EXPECTED = {KNATIVE.format("controller"): "knative-controller",
            KNATIVE.format("autoscaler"): "knative-autoscaler",
            KNATIVE.format("activator"): "knative-activator",
            KNATIVE.format("webhook"): "knative-webhook",
            KNATIVE.format("queue"): "knative-queue",
            "kserve/kserve-controller:v0.20.0": "kserve-manager",
            "kserve/agent:v0.20.0": "kserve-agent"}


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A stand-in build folder holding every upstream binary (as files)."""
    for name in build.binaries():
        (tmp_path / name).write_text("")
    return tmp_path


def test_upstream_images_name_binaries_of_the_build() -> None:
    table = load_table()
    upstream = {name: entry.upstream for name, entry in table.items() if entry.upstream}
    assert upstream == EXPECTED
    assert set(upstream.values()) <= set(build.binaries())
    versions = build.load_versions()["modules"]
    tags = {versions[build.KNATIVE]["release"], versions[build.KSERVE]["version"]}
    assert {name.rsplit(":", 1)[1] for name in upstream} == tags


def test_upstream_image_resolves_to_the_built_binary(built: Path) -> None:
    table = load_table(upstream_bin=built)
    entry = resolve(table, KNATIVE.format("queue"))
    assert entry.command == (str(built / "knative-queue"),)
    assert entry.argv(None, None) == [str(built / "knative-queue")]
    # a container command naming the image's entrypoint runs the built binary
    manager = resolve(table, "kserve/kserve-controller:v0.20.0")
    assert manager.argv(["/manager"], ["--leader-elect"]) == \
        [str(built / "kserve-manager"), "--leader-elect"]
    assert manager.argv(None, ["--leader-elect"]) == \
        [str(built / "kserve-manager"), "--leader-elect"]
    # any other command is the container's own, as with a real image
    assert manager.argv(["sh", "-c", "true"], None) == ["sh", "-c", "true"]


def test_missing_build_is_a_pull_error_naming_make_upstream(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFound, match=r"knative-controller is not built .*'make "
                                            r"upstream'"):
        resolve(load_table(upstream_bin=tmp_path), KNATIVE.format("controller"))
    rec = Recorder()
    client = httpx.Client(transport=httpx.MockTransport(rec), base_url="https://api")
    agent = PodAgent(client, ["cpu-1"], network=Network("000000"), logs=tmp_path,
                     run_id="000000", upstream_bin=tmp_path)
    agent.handle(_pod(KNATIVE.format("activator")))
    waiting = next(b for m, _, b in rec.calls if m == "PATCH")["status"][
        "containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "ErrImagePull"
    assert "knative-activator is not built" in waiting["message"]


def test_no_build_folder_given_is_a_pull_error(built: Path) -> None:
    with pytest.raises(ImageNotFound, match="kserve-manager cannot be found: .*no upstream "
                                            "build folder"):
        resolve(load_table(), "kserve/kserve-controller:v0.20.0")
    assert resolve(load_table(), "registry.k8s.io/pause:3.10").command == ("sleep", "infinity")


@pytest.mark.parametrize(("entry", "words"), [
    ("{command: [x], upstream: y, entrypoint: /y}", "a command or an upstream binary"),
    ("{cwd: .}", "a command or an upstream binary"),
    ("{upstream: knative-queue}", "needs its entrypoint"),
    ("{upstream: knative-queue, entrypoint: queue}", "needs its entrypoint"),
])
def test_malformed_entry_is_refused(tmp_path: Path, entry: str, words: str) -> None:
    table = tmp_path / "images.yaml"
    table.write_text(f"images:\n  bad:1: {entry}\n")
    with pytest.raises(UserError, match=words):
        load_table(table)
