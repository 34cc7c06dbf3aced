"""Locust users for KServe inference and a LoadTestShape that plays a harness load profile.

Used by ``harness load`` (which runs it in a child process) and by plain Locust::

    locust -f harness/load/child/locustfile.py --headless --host http://127.0.0.1:8080 \\
        --load-profile loadprofiles/step.yaml [--host-header isvc-predictor.ns.example.com] \\
        [--records records.csv] [--status-file status.jsonl] [--model NAME]

With ``--load-profile`` the shape plays the profile: closed-loop segments run that many
:class:`KServeV1User` or :class:`KServeV2User` users (one request in flight each, no wait),
open-loop segments send arrivals on a schedule from greenlets of their own (see
:mod:`harness.load.child.openloop`), and the run ends once every request was answered. Without
``--load-profile`` the usual ``-u/-r/-t`` options apply; pick one user class on the command line.
Each request sends the ``Host`` header given by ``--host-header`` (Knative routes by it).
``--records`` writes one CSV line per request (schema in :mod:`harness.load.records`).
Distributed runs (``--master`` / ``--worker``) need ``--load-profile`` on the master only.
"""

from __future__ import annotations

import logging
from typing import Any

from locust import FastHttpUser, LoadTestShape, constant, events, task

from harness.load.child.control import RunControl
from harness.load.shapes import users_at

CONTROL = RunControl()
CLOSED = {"loop": "closed"}


class _QuietSpawnRate(logging.Filter):
    """Closed-loop levels change at once by design: drop Locust's high-spawn-rate warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "spawn rate is very high" not in record.getMessage()


logging.getLogger("locust.runners").addFilter(_QuietSpawnRate())


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--load-profile", default="", env_var="LOCUST_LOAD_PROFILE",
                        help="harness load profile (YAML) to play")
    parser.add_argument("--records", default="", env_var="LOCUST_RECORDS",
                        help="CSV file for one record per request")
    parser.add_argument("--status-file", default="", env_var="LOCUST_STATUS_FILE",
                        help="JSON-lines file for one status line per second")
    parser.add_argument("--host-header", default="", env_var="LOCUST_HOST_HEADER",
                        help="Host header of every request (Knative routing)")
    parser.add_argument("--model", default="", env_var="LOCUST_MODEL",
                        help="model name in the URL (default: the profile's)")


@events.init.add_listener
def _init(environment: Any, runner: Any = None, **kwargs: Any) -> None:
    CONTROL.on_init(environment, runner, **kwargs)


class _InferenceUser(FastHttpUser):
    """One closed-loop user: sends the next request as soon as the last one is answered."""

    abstract = True
    protocol = "v1"
    wait_time = constant(0)
    concurrency = 1
    network_timeout = 30.0
    connection_timeout = 30.0

    @task
    def infer(self) -> None:
        req = CONTROL.requests[self.protocol]
        self.client.request("POST", req.path, name=req.name, data=req.body,
                            headers=req.headers, context=CLOSED)


class KServeV1User(_InferenceUser):
    """KServe V1: ``POST /v1/models/<model>:predict`` with ``{"instances": [...]}``."""

    protocol = "v1"


class KServeV2User(_InferenceUser):
    """Open Inference Protocol: ``POST /v2/models/<model>/infer`` with one FP32 tensor."""

    protocol = "v2"


USERS = {"v1": KServeV1User, "v2": KServeV2User}


class ProfileShape(LoadTestShape):
    """Plays ``--load-profile``: users for closed-loop segments, 0 users otherwise; ends drained.

    ``tick`` is a pure function of the run time through :func:`harness.load.shapes.users_at`;
    after the profile's end it keeps 0 users until :meth:`RunControl.drained` says every
    request was answered and recorded, then returns None.
    """

    use_common_options = True  # without --load-profile, -u/-r/-t behave as usual

    def reset_time(self) -> None:
        super().reset_time()
        CONTROL.begin()

    def tick(self) -> tuple[int, float] | tuple[int, float, list] | None:
        profile = CONTROL.profile
        if profile is None:
            opts = self.runner.environment.parsed_options if self.runner else None
            return (getattr(opts, "num_users", None) or 1, getattr(opts, "spawn_rate", None) or 1)
        users = users_at(profile, self.get_run_time())
        cls = [USERS[profile.protocol]]
        if users is None:
            return None if CONTROL.drained() else (0, profile.spawn_rate, cls)
        return users, profile.spawn_rate, cls
