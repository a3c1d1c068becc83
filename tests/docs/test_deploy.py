"""
The deployment guide's Kubernetes and Prometheus configurations
(C{docs/deploy/}) against a running twsgi: the container's arguments start
it, its probes answer as Kubernetes expects through a graceful stop, and
the Prometheus target serves metrics.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.server import LOOPBACK, ROOT, fetch, freePort, start

DEPLOY = os.path.join(ROOT, "docs", "deploy")


def read(name: str) -> str:
    with open(os.path.join(DEPLOY, name)) as f:
        return f.read()


class KubernetesTests(SynchronousTestCase):
    """
    C{docs/deploy/kubernetes.yaml}.
    """

    def test_probes(self) -> None:
        """
        With the manifest's arguments, the readiness and liveness probes
        answer 200; after SIGTERM readiness is 503 at once while liveness
        stays 200 and the application is still served (the drain delay);
        then the process exits 0.
        """
        manifest = read("kubernetes.yaml")
        args = json.loads(re.search(r"^\s*args: (\[.*\])$", manifest, re.M).group(1))  # type: ignore[union-attr]
        probes = {
            kind: path
            for kind, path in re.findall(
                r"(readiness|liveness)Probe:\n\s*httpGet: \{path: ([^,]+), port: 8081\}",
                manifest,
            )
        }
        self.assertEqual(probes, {"readiness": "/readyz", "liveness": "/livez"})
        admin = freePort()
        replaced = {
            "myapp:app": "tests.apps.opsapp:app",
            "tcp:8000": LOOPBACK,
            "tcp:8081": f"tcp:{admin}:interface=127.0.0.1",
        }
        server = start(
            self,
            [replaced.get(arg, arg) for arg in args] + ["--access-log", "none"],
            checkout=True,
            listeners=2,
        )
        app = server.endpoints[LOOPBACK]

        def probe(kind: str) -> int:
            return fetch("127.0.0.1", admin, path=probes[kind])[0]

        self.assertEqual(probe("readiness"), 200)
        self.assertEqual(probe("liveness"), 200)
        server.signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while probe("readiness") != 503:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.assertEqual(probe("liveness"), 200)
        self.assertEqual(fetch(*app, path="/x")[0], 200)
        self.assertEqual(server.process.wait(30), 0)
        for line in server.rawLines:
            if line.strip():
                json.loads(line)


class PrometheusTests(SynchronousTestCase):
    """
    C{docs/deploy/prometheus.yml}.
    """

    def test_target(self) -> None:
        """
        The scrape target, started as the file's comment says, serves the
        metrics at the file's path in a format Prometheus parses: those of
        the table of C{docs/operations.rst}, but the ones of C{--workers}.
        """
        config = read("prometheus.yml")
        path = re.search(r"metrics_path: (\S+)", config).group(1)  # type: ignore[union-attr]
        host, port = re.search(r'targets: \["([\d.]+):(\d+)"\]', config).groups()  # type: ignore[union-attr]
        command = re.search(r"--metrics-endpoint (\S+)", config).group(1)  # type: ignore[union-attr]
        self.assertEqual(command, f"tcp:{port}:interface={host}")
        admin = freePort()
        server = start(
            self,
            [
                "--app", "tests.apps.opsapp:app",
                "--endpoint", LOOPBACK,
                "--metrics-endpoint", command.replace(port, str(admin)),
                "--access-log", "none",
            ],
            checkout=True,
            listeners=2,
        )  # fmt: skip
        fetch(*server.endpoints[LOOPBACK])
        status, headers, body = fetch("127.0.0.1", admin, path=path)
        self.assertEqual(status, 200)
        families = list(text_string_to_metric_families(body.decode()))
        names = {f.name for f in families}
        self.assertLessEqual(
            {
                "twsgi_requests",
                "twsgi_request_duration_seconds",
                "twsgi_threadpool_threads",
            },
            names,
        )
        # The metrics as a scrape names them (a counter with its _total),
        # without prometheus-client's _created companions: those of
        # docs/operations.rst's table, but the per-worker ones.
        scraped = {
            f"{f.name}_total" if f.type == "counter" else f.name
            for f in families
            if not f.name.endswith("_created")
        }
        with open(os.path.join(ROOT, "docs", "operations.rst")) as f:
            documented = set(
                re.findall(r"^``(twsgi_\w+)[{}\w,|=\"]*``", f.read(), re.M)
            )
        workers = {
            "twsgi_workers",
            "twsgi_worker_threads_busy",
            "twsgi_worker_requests_in_flight",
        }
        self.assertLessEqual(workers, documented)
        self.assertEqual(scraped, documented - workers)
