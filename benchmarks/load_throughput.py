"""Benchmark: requests per second of the harness's Locust runner, against plain Locust.

Part 1, in one run against the same loopback target: our runner (closed loop, one CSV
record per request, Host header) versus plain ``locust --headless`` with a trivial
``FastHttpUser`` posting the same body. Target: ours >= 85 % of plain Locust.

Part 2: ``--workers 1`` versus ``--workers 2`` (a Locust master plus N worker processes,
records shipped to the master) against the same target, with the CPU seconds used by the
load processes and by the target, so the scaling can be judged. Target on a 2-core
machine: 2 workers not slower than 1.

The target is nginx (a C server that is not the bottleneck), started here on 127.0.0.1
with its own configuration in a temporary folder; if nginx is not installed, part 2 is
skipped and part 1 runs against the reference model server (then both sides hit the
same ceiling, which says less). Traffic goes to 127.0.0.1 only; every run is bounded.

    python benchmarks/load_throughput.py [--duration 8] [--users 32] [--rounds 2] [--json F]

Part 1 alternates plain and ours ``--rounds`` times and compares the best of each, since
on a shared machine a busy neighbour can slow any single run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures" / "modelserver"))

from harness.load import run  # noqa: E402
from harness.load.profile import parse_profile  # noqa: E402
from harness.load.runner import free_port  # noqa: E402

BODY = '{"instances": [[1.0, 2.0, 3.0, 4.0]]}'
TRIVIAL = textwrap.dedent(f"""\
    from locust import FastHttpUser, constant, task

    BODY = {BODY!r}.encode()


    class Trivial(FastHttpUser):
        wait_time = constant(0)

        @task
        def predict(self):
            self.client.post("/v1/models/linear:predict", data=BODY)
    """)
NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 10000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            add_header X-Pod-Name nginx;
            default_type application/json;
            return 200 '{{"predictions": [[0.0]]}}';
        }}
    }}
}}
"""


class Target:
    """nginx (preferred) or the reference model server, as a child process group."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.kind = ""
        self.url = ""
        self._server = None

    def start(self) -> None:
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                          else None)
        if nginx:
            port = free_port()
            conf = self.workdir / "nginx.conf"
            conf.write_text(NGINX_CONF.format(dir=self.workdir, port=port))
            self.proc = subprocess.Popen(
                [nginx, "-c", str(conf), "-p", str(self.workdir),
                 "-e", str(self.workdir / "e.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
            self.kind, self.url = "nginx", f"http://127.0.0.1:{port}"
            _wait_port(port, self.proc)
        else:
            from modelserver.local import LocalModelServer

            self._server = LocalModelServer(pod_name="bench")
            self._server.start()
            self._server.wait_ready()
            self.proc = self._server.proc
            self.kind, self.url = "modelserver (nginx not installed)", self._server.url

    def cpu_seconds(self) -> float:
        if self.proc is None:
            return 0.0
        total = 0.0
        try:
            root = psutil.Process(self.proc.pid)
            for p in [root, *root.children(recursive=True)]:
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
        return total

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        elif self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def _wait_port(port: int, proc: subprocess.Popen) -> None:
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("nginx exited at start")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("nginx did not open its port")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def plain_locust(url: str, users: int, duration: float, workdir: Path) -> dict:
    lf = workdir / "trivial_locustfile.py"
    lf.write_text(TRIVIAL)
    cpu0 = _children_cpu()
    cmd = [sys.executable, "-m", "locust", "-f", str(lf), "--headless", "--only-summary",
           "-u", str(users), "-r", str(users), "-t", f"{duration:g}s", "--host", url,
           "--json", "--loglevel", "WARNING", "--stop-timeout", "1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=duration + 60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stats = json.loads(out.decode()[out.decode().index("["):])
    n = sum(s["num_requests"] for s in stats)
    start = min(s["start_time"] for s in stats)
    last = max(s["last_request_timestamp"] for s in stats)
    return {"requests": n, "seconds": round(last - start, 3), "rps": n / (last - start),
            "cpu_s": _children_cpu() - cpu0}


def ours(url: str, users: int, duration: float, out: Path, workers: int = 0) -> dict:
    prof = parse_profile({"segments": [
        {"shape": "constant", "duration": f"{duration:g}s", "concurrency": users}]},
        where="benchmark")
    cpu0 = _children_cpu()
    result = run(prof, url, "linear-predictor.bench.example.com", out, workers=workers)
    cpu = _children_cpu() - cpu0
    rec = result.records()
    rel = rec["start"] - result.origin
    n = int(((rel >= 0) & (rel < duration)).sum())
    return {"requests": n, "records": len(rec), "seconds": duration, "rps": n / duration,
            "cpu_s": cpu, "kept_up": result.kept_up, "reasons": list(result.reasons),
            "errors": result.errors, "cpu_peak": result.cpu}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per run")
    ap.add_argument("--users", type=int, default=32, help="closed-loop users")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of part 1")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    report: dict = {"cpus": os.cpu_count(), "duration_s": args.duration, "users": args.users}
    with tempfile.TemporaryDirectory(prefix="hx-bench-") as tmp:
        work = Path(tmp)
        target = Target(work)
        try:
            target.start()
            report["target"] = target.kind
            print(f"target: {target.kind} at {target.url}; {args.users} users, "
                  f"{args.duration:g} s per run, {os.cpu_count()} CPUs")
            plains, mines = [], []
            for i in range(args.rounds):  # alternate, so a busy neighbour hurts both sides
                t_cpu = target.cpu_seconds()
                plain = plain_locust(target.url, args.users, args.duration, work)
                plain["target_cpu_s"] = target.cpu_seconds() - t_cpu
                plains.append(plain)
                t_cpu = target.cpu_seconds()
                mine = ours(target.url, args.users, args.duration, work / f"ours{i}")
                mine["target_cpu_s"] = target.cpu_seconds() - t_cpu
                mines.append(mine)
                print(f"  round {i + 1}: plain {plain['rps']:7.0f} req/s, ours {mine['rps']:7.0f} "
                      f"req/s ({mine['records']} records)")
            plain = max(plains, key=lambda r: r["rps"])
            mine = max(mines, key=lambda r: r["rps"])
            ratio = mine["rps"] / plain["rps"] if plain["rps"] else 0.0
            report.update(plain=plains, ours=mines, ratio=ratio)
            print(f"plain locust --headless (trivial FastHttpUser): {plain['rps']:8.0f} req/s "
                  f"(best of {args.rounds}; cpu {plain['cpu_s']:.1f} s)")
            print(f"harness runner (records, Host header)        : {mine['rps']:8.0f} req/s "
                  f"(best of {args.rounds}; cpu {mine['cpu_s']:.1f} s)")
            verdict = "PASS" if ratio >= 0.85 else "FAIL"
            print(f"ours / plain = {ratio:.1%}  (target >= 85 %: {verdict})")
            if target.kind == "nginx":
                scaling = {}
                for n in (1, 2):
                    t_cpu = target.cpu_seconds()
                    r = ours(target.url, args.users, args.duration, work / f"w{n}", workers=n)
                    r["target_cpu_s"] = target.cpu_seconds() - t_cpu
                    scaling[n] = r
                    print(f"--workers {n}: {r['rps']:8.0f} req/s; load processes cpu "
                          f"{r['cpu_s']:.1f} s ({r['cpu_s'] / args.duration:.0%} of a core), "
                          f"nginx cpu {r['target_cpu_s']:.1f} s; records {r['records']}; "
                          f"generator verdict: "
                          f"{'kept up' if r['kept_up'] else '; '.join(r['reasons'])}")
                gain = scaling[2]["rps"] / scaling[1]["rps"] if scaling[1]["rps"] else 0.0
                print(f"2 workers / 1 worker = {gain:.2f}x  (target >= 1.0 on 2 cores: "
                      f"{'PASS' if gain >= 1.0 else 'FAIL'})")
                report["workers"] = {str(k): v for k, v in scaling.items()}
                report["workers_gain"] = gain
            else:
                print("workers 1 vs 2: skipped (nginx is not installed: apt-get install "
                      "nginx-light)")
        finally:
            target.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
