"""
nginx in front of twsgi, with the configuration of the deployment guide
(C{docs/deploy/nginx.conf}): the application sees the client's address and
scheme from the forwarding headers, bodies and streamed responses pass,
and nginx serves the static files.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.loadbalancers import CLIENT
from tests.helpers.server import ROOT, freePort, start, stopProcess

SNIPPET = os.path.join(ROOT, "docs", "deploy", "nginx.conf")

WRAPPER = """
{user}
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/site.conf;
}}
"""


def findNginx() -> str | None:
    return shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


class NginxTests(SynchronousTestCase):
    """
    twsgi behind nginx.
    """

    def setUp(self) -> None:
        nginx = findNginx()
        if nginx is None:
            result = subprocess.run(
                ["bash", os.path.join(ROOT, "scripts", "ensure-package"), "nginx"],
                capture_output=True,
                text=True,
                timeout=600,
            )
            nginx = findNginx()
            if nginx is None:
                raise AssertionError(
                    "nginx is missing and could not be installed:\n"
                    + result.stdout
                    + result.stderr
                )
        self.nginx = nginx

    def test_proxied(self) -> None:
        """
        Through nginx, C{REMOTE_ADDR} is the client's (also when the client
        sends its own C{X-Forwarded-For}) and C{wsgi.url_scheme} what nginx
        saw; a POST body is echoed; nginx serves C{/static/}.
        """
        directory = os.path.abspath(self.mktemp())
        static = os.path.join(directory, "static")
        os.makedirs(static)
        with open(os.path.join(static, "site.css"), "w") as f:
            f.write("body {}\n")
        backend, frontend = freePort(), freePort()
        start(
            self,
            [
                "--app", "tests.apps.opsapp:app",
                "--endpoint", f"tcp:{backend}:interface=127.0.0.1",
                "--access-log", "none",
            ],
            checkout=True,
        )  # fmt: skip
        with open(SNIPPET) as f:
            site = f.read()
        site = (
            site.replace("127.0.0.1:8000", f"127.0.0.1:{backend}")
            .replace("127.0.0.1:8080", f"127.0.0.1:{frontend}")
            .replace("/srv/app/static/", static + "/")
        )
        with open(os.path.join(directory, "site.conf"), "w") as f:
            f.write(site)
        config = os.path.join(directory, "nginx.conf")
        with open(config, "w") as f:
            f.write(
                WRAPPER.format(
                    dir=directory, user="user root;" if os.getuid() == 0 else ""
                )
            )
        nginx = subprocess.Popen(
            [self.nginx, "-e", os.path.join(directory, "error.log"), "-p", directory,
             "-c", config, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        self.addCleanup(stopProcess, nginx, signal.SIGQUIT)
        connection = None
        deadline = time.monotonic() + 20
        while True:
            try:
                connection = http.client.HTTPConnection(
                    "127.0.0.1", frontend, timeout=10, source_address=(CLIENT, 0)
                )
                connection.request("GET", "/remote")
                response = connection.getresponse()
                break
            except OSError:
                if nginx.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(nginx.stderr.read().decode())  # type: ignore[union-attr]
                time.sleep(0.1)
        self.assertEqual((response.status, response.read()), (200, CLIENT.encode()))
        connection.request("GET", "/remote", headers={"X-Forwarded-For": "6.6.6.6"})
        response = connection.getresponse()
        self.assertEqual(response.read(), CLIENT.encode())
        connection.request("GET", "/scheme")
        self.assertEqual(connection.getresponse().read(), b"http")
        for _ in range(3):
            connection.request("POST", "/echo", body=b"x" * 100_000)
            response = connection.getresponse()
            self.assertEqual(response.read(), b"x" * 100_000)
        connection.request("GET", "/static/site.css")
        response = connection.getresponse()
        self.assertEqual((response.status, response.read()), (200, b"body {}\n"))
        connection.close()
