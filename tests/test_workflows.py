"""The CI workflows parse, name only make targets that exist, pin every action, and
install the kind version pinned in ``fixtures/kind/versions.yaml``."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.kind.config import load_versions
from harness.profiles import PROFILE_NAMES

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


def steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in doc["jobs"].values() for s in job["steps"]]


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.M))


def make_calls(doc: dict[str, Any]) -> list[str]:
    return [line.strip() for s in steps(doc) for line in str(s.get("run", "")).splitlines()
            if re.match(r"\s*make\s", line)]


def test_both_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"pr.yml", "nightly.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_parses_and_names_existing_targets(path: Path) -> None:
    doc = load(path)
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers and doc["jobs"]
    targets = makefile_targets()
    calls = make_calls(doc)
    assert calls
    for call in calls:
        target = call.split()[1]
        assert target in targets, f"{path.name}: make {target} is not in the Makefile"
        for profile in re.findall(r"PROFILE=(\S+)", call):
            assert profile in PROFILE_NAMES


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned(path: Path) -> None:
    for step in steps(load(path)):
        if "uses" in step:
            assert re.search(r"@(v\d+\.\d+\.\d+|[0-9a-f]{40})$", step["uses"]), step["uses"]
    for job in load(path)["jobs"].values():
        assert "timeout-minutes" in job


def test_pr_workflow_tests_then_runs_conformance_on_kind() -> None:
    doc = load(ROOT / ".github" / "workflows" / "pr.yml")
    calls = make_calls(doc)
    names = [c.split()[1] for c in calls]
    assert names.index("test") < names.index("kind-up") < names.index("conformance") \
        < names.index("kind-down")
    assert any("PROFILE=fast" in c and "CLUSTER=kind" in c for c in calls if " conformance" in c)
    kind_steps = [s for s in steps(doc) if str(s.get("uses", "")).startswith("helm/kind-action")]
    assert len(kind_steps) == 1
    assert kind_steps[0]["with"]["version"] == load_versions().kind
    uploads = [s for s in steps(doc) if "upload-artifact" in str(s.get("uses", ""))]
    assert uploads and all(s["with"]["path"].startswith("reports") for s in uploads)
    assert all(s.get("if") == "always()" for s in uploads)
    assert any("junit" in str(s.get("uses", "")) for s in steps(doc))


def test_nightly_runs_slow_suites_on_staging_with_allow_list() -> None:
    doc = load(ROOT / ".github" / "workflows" / "nightly.yml")
    triggers = doc.get("on", doc.get(True))
    assert triggers["schedule"][0]["cron"]
    job = doc["jobs"]["conformance-staging"]
    assert "HARNESS_ALLOWED_CONTEXTS" in job["env"]
    calls = make_calls(doc)
    conf = [c for c in calls if c.split()[1] == "conformance"]
    assert conf and "PROFILE=coreweave" in conf[0] and "CLUSTER=current" in conf[0]
    assert "slow" in conf[0]
    runs = "\n".join(str(s.get("run", "")) for s in steps(doc))
    assert "secrets." not in runs  # secrets reach scripts through env, never inline
    assert "KUBECONFIG" in runs and "mktemp" in runs
    assert any("upload-artifact" in str(s.get("uses", "")) for s in steps(doc))
    assert any("junit" in str(s.get("uses", "")) for s in steps(doc))


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_kind_targets_call_the_harness() -> None:
    for target, words in (("kind-up", "cluster up --kind --name harness --profile fast"),
                          ("kind-down", "cluster down --kind --name harness")):
        done = subprocess.run(["make", "-n", "-o", ".venv/.installed", target, "PROFILE=fast"],
                              cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert words in done.stdout


def test_nightly_runs_the_documented_profile_on_the_emulator() -> None:
    doc = load(ROOT / ".github" / "workflows" / "nightly.yml")
    triggers = doc.get("on", doc.get(True))
    assert "schedule" in triggers
    job = doc["jobs"]["conformance-documented"]
    runs = [str(s.get("run", "")) for s in job["steps"]]
    assert any(r.strip() == "make conformance-documented" for r in runs)
    recipe = (ROOT / "Makefile").read_text().split("\nconformance-documented:", 1)[1]
    recipe = recipe.split("\n\n", 1)[0]
    assert "--profile coreweave" in recipe and "--cluster local" in recipe
    assert "-m 'slow or not slow'" in recipe
