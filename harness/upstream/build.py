"""Build the real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
kube-proxy, CoreDNS) and the real Knative Serving (controller, autoscaler, activator, webhook,
queue-proxy) and KServe (manager) from their Go modules into a cache folder outside the
checkout.

The recipe is the consumer modules under ``upstream/`` (``kubernetes/``, ``etcd/``,
``coredns/``, ``knative/``, ``kserve/``: one per dependency set, go.mod/go.sum committed) at
the versions of ``upstream/versions.yaml``. The binaries land in
``$XDG_CACHE_HOME/harness/upstream/<kubernetes version>-<hash>/bin`` (default ``~/.cache``),
keyed by the modules' files and the Go version, so a changed pin builds afresh and an
unchanged one is reused. Kubernetes gets the version ldflags its own build sets
(``hack/lib/version.sh``), without which ``/version`` says ``v0.0.0-master``; Knative gets
its release commit in ``knative.dev/pkg/changeset`` (what its images log and send as their
user agent). Every binary carries its module versions (``go version -m``), which
:func:`component_versions` reads back for reports.

``make upstream`` and ``harness cluster up --upstream`` (on first use) call :func:`build`;
``go build -v``'s package names are counted into progress lines.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from harness.errors import UserError
from harness.files import data_path

UPSTREAM_DIR = data_path("upstream")
"""The consumer Go modules and ``versions.yaml`` (in the checkout or the installed wheel)."""
VERSIONS_FILE = UPSTREAM_DIR / "versions.yaml"

KUBERNETES = "k8s.io/kubernetes"
ETCD = "go.etcd.io/etcd/server/v3"
COREDNS = "github.com/coredns/coredns"
KNATIVE = "knative.dev/serving"
KSERVE = "github.com/kserve/kserve"


@dataclass(frozen=True)
class Component:
    """One consumer module and what ``go build`` makes of it."""

    module: str      # the upstream module path (key in versions.yaml)
    version: str
    consumer: str    # directory under upstream/
    packages: tuple[str, ...]
    binaries: tuple[str, ...]  # what each of ``packages`` is installed as, in order
    ldflags: str


def load_versions(path: Path = VERSIONS_FILE) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read the upstream versions: {exc.strerror}",
                        where=str(path)) from None
    return data


def kubernetes_ldflags(version: str) -> str:
    """``-X`` flags for component-base and client-go's version packages (as version.sh)."""
    major, minor = version.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.gitVersion={version}", f"-X {pkg}.gitMajor={major}",
                  f"-X {pkg}.gitMinor={minor}", f"-X {pkg}.gitTreeState=clean"]
    return " ".join(flags)


def knative_ldflags(commit: str) -> str:
    """The release's ``changeset`` (7 digits of its commit, as ko's VCS build info gives)."""
    return f"-s -w -X knative.dev/pkg/changeset.rev={commit[:7]}"


def _named(module: str, entry: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``binaries: {name: package under the module}`` -> (import paths, names)."""
    names = tuple(entry["binaries"])
    return tuple(f"{module}/{entry['binaries'][n]}" for n in names), names


def components(versions: dict[str, Any] | None = None) -> list[Component]:
    mods = (versions or load_versions())["modules"]
    k8s, etcd, dns = mods[KUBERNETES], mods[ETCD], mods[COREDNS]
    kn, ks = mods[KNATIVE], mods[KSERVE]
    return [
        Component(ETCD, etcd["version"], etcd["consumer"], ("./cmd/etcd",),
                  tuple(etcd["binaries"]), "-s -w"),
        Component(COREDNS, dns["version"], dns["consumer"], ("./cmd/coredns",),
                  tuple(dns["binaries"]), "-s -w"),
        Component(KUBERNETES, k8s["version"], k8s["consumer"],
                  tuple(f"k8s.io/kubernetes/cmd/{b}" for b in k8s["binaries"]),
                  tuple(k8s["binaries"]), kubernetes_ldflags(k8s["version"])),
        Component(KNATIVE, kn["version"], kn["consumer"], *_named(KNATIVE, kn),
                  knative_ldflags(kn["commit"])),
        Component(KSERVE, ks["version"], ks["consumer"], *_named(KSERVE, ks), "-s -w"),
    ]


def binaries(comps: list[Component] | None = None) -> tuple[str, ...]:
    """Every binary the build makes (the control plane's, then Knative's and KServe's)."""
    return tuple(b for c in comps or components() for b in c.binaries)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness" / "upstream"


def go_binary() -> str:
    go = shutil.which("go")
    if go is None:
        raise UserError("the upstream cluster is built from Go modules and needs a Go "
                        "toolchain (>= 1.24) on PATH: 'go' not found; install Go from "
                        "https://go.dev/dl/")
    return go


def _sources(comps: list[Component]) -> list[Path]:
    files = [VERSIONS_FILE]
    for c in comps:
        d = UPSTREAM_DIR / c.consumer
        files += [d / "go.mod", d / "go.sum", *sorted(d.rglob("*.go"))]
    return files


def build_key(go: str, comps: list[Component]) -> str:
    """``<kubernetes version>-<hash of the modules' files, ldflags and Go version>``."""
    h = hashlib.sha256()
    for f in _sources(comps):
        h.update(str(f.relative_to(UPSTREAM_DIR)).encode() + b"\0" + f.read_bytes() + b"\0")
    for c in comps:
        h.update(c.ldflags.encode() + b"\0")
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True)
    h.update(out.stdout.strip().encode())
    k8s = next(c for c in comps if c.module == KUBERNETES)
    return f"{k8s.version}-{h.hexdigest()[:12]}"


def bin_dir(go: str | None = None) -> Path:
    """Where this checkout's pins put the binaries (built or not)."""
    comps = components()
    return cache_root() / build_key(go or go_binary(), comps) / "bin"


def missing(directory: Path) -> list[str]:
    return [b for b in binaries() if not (directory / b).is_file()]


def build(*, progress: IO[str] | None = None, nice: int = 10) -> Path:
    """The directory holding all the binaries, building what is not there yet."""
    go = go_binary()
    comps = components()
    out = sys.stderr if progress is None else progress
    target = bin_dir(go)
    if not missing(target):
        return target
    target.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per key, across processes
        todo = [c for c in comps if any(b in missing(target) for b in c.binaries)]
        if not todo:
            return target
        print(f"harness: building the upstream components into {target} (a first build "
              "downloads Go modules and compiles for a long while; later ones reuse Go's "
              "build cache)", file=out, flush=True)
        started = time.monotonic()
        for comp in todo:
            _build_one(go, comp, target, out, nice)
        print(f"harness: upstream components built in {time.monotonic() - started:.0f} s: "
              f"{', '.join(binaries(comps))}", file=out, flush=True)
    return target


def _build_one(go: str, comp: Component, target: Path, out: IO[str], nice: int) -> None:
    started = time.monotonic()
    print(f"  [{comp.consumer}] {comp.module} {comp.version}: "
          f"{', '.join(comp.binaries)}", file=out, flush=True)
    staging = target.parent / f".staging-{os.getpid()}"
    staging.mkdir(exist_ok=True)
    cmd = [go, "build", "-v", "-trimpath", "-ldflags", comp.ldflags, "-o", f"{staging}/",
           *comp.packages]
    if nice and shutil.which("nice"):
        cmd = ["nice", "-n", str(nice), *cmd]
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly",
           "GOTOOLCHAIN": "local"}
    # its own process group, so an interrupted bring-up (Ctrl-C, SIGTERM) stops the whole
    # build (go and its compilers) rather than leaving it to run on
    proc = subprocess.Popen(cmd, cwd=UPSTREAM_DIR / comp.consumer, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    tail: list[str] = []
    compiled = 0
    last = time.monotonic()
    try:
        for line in proc.stdout:  # live: module downloads as they come, packages counted
            line = line.rstrip()
            tail = [*tail[-40:], line]
            if line.startswith("go: ") or " " in line:
                print(f"    {line}", file=out, flush=True)
                continue
            compiled += 1
            if time.monotonic() - last >= 15:
                last = time.monotonic()
                print(f"    [{comp.consumer}] {compiled} packages compiled, "
                      f"{last - started:.0f} s (now {line})", file=out, flush=True)
    except BaseException:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if proc.wait() != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(f"go build of upstream/{comp.consumer} failed:\n" + "\n".join(tail))
    for pkg, b in zip(comp.packages, comp.binaries, strict=True):
        (staging / pkg.rsplit("/", 1)[-1]).replace(target / b)
    shutil.rmtree(staging, ignore_errors=True)
    print(f"  [{comp.consumer}] done in {time.monotonic() - started:.0f} s "
          f"({compiled} packages compiled)", file=out, flush=True)


def component_versions(directory: Path | None = None) -> list[dict[str, str]]:
    """Each built binary with the upstream module and version it was linked from, read
    from the binary itself (``go version -m``), and the release that version is (for
    Knative, whose module tags differ from its release tags), for a report to list."""
    go = go_binary()
    versions = load_versions()["modules"]
    directory = directory or bin_dir(go)
    found = []
    for comp in components():
        for b in comp.binaries:
            path = directory / b
            if not path.is_file():
                raise UserError(f"the upstream binary {b} is not built; run 'make upstream'",
                                where=str(path))
            deps = module_versions(go, path)
            release = versions[comp.module].get("release", deps.get(comp.module, ""))
            found.append({"binary": b, "module": comp.module,
                          "version": deps.get(comp.module, "unknown"), "release": release})
    return found


def module_versions(go: str, binary: Path) -> dict[str, str]:
    """``go version -m``: module path -> version linked into ``binary`` (replaced ones at
    their replacement's version)."""
    out = subprocess.run([go, "version", "-m", str(binary)], capture_output=True, text=True,
                         check=True).stdout
    mods: dict[str, str] = {}
    last = ""
    for line in out.splitlines():
        parts = line.strip().split("\t")
        if parts[0] in ("mod", "dep") and len(parts) >= 3:
            last = parts[1]
            mods[last] = parts[2]
        elif parts[0] == "=>" and len(parts) >= 3 and last:
            mods[last] = parts[2]
    return mods


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.upstream.build`` (``make upstream``): build, print the folder."""
    try:
        print(build(progress=sys.stdout))
    except UserError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
