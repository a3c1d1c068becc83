"""
Real frameworks through real sockets: Flask (a streamed response,
C{send_file}, an upload), Django (the admin login page, its static files
through C{--static}, an upload) and Falcon, each served by a C{python -m
twsgi} process.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile

import django
import requests
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.server import FRAMEWORKS, LOOPBACK, spawn
from twsgi.testing import ServerProcess


def serve(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """
    Start twsgi with C{args}.
    """
    return spawn(
        [
            "--endpoint",
            LOOPBACK,
            "--pythonpath",
            FRAMEWORKS,
            "--access-log",
            "none",
            *args,
        ],
        env=env,
        checkout=True,
    )


class SharedServer(SynchronousTestCase):
    """
    One server for all the tests of a class: started by the first test's
    C{setUp}, stopped when the test process exits (trial has no
    C{tearDownClass}).
    """

    server: ServerProcess | None = None
    url = ""

    def setUp(self) -> None:
        cls = type(self)
        if cls.server is None or cls.server.process.poll() is not None:
            cls.server = self.startServer()
            atexit.register(cls.server.stop)
            cls.url = cls.server.url

    def startServer(self) -> ServerProcess:
        raise NotImplementedError()


class FlaskTests(SharedServer):
    """
    A Flask application.
    """

    data = os.urandom(300_000)

    def startServer(self) -> ServerProcess:
        directory = tempfile.mkdtemp()
        atexit.register(shutil.rmtree, directory, True)
        path = os.path.join(directory, "data.bin")
        with open(path, "wb") as f:
            f.write(self.data)
        return serve("--app", "flaskops:app", env={"FLASKOPS_FILE": path})

    def test_stream(self) -> None:
        """
        A streamed response arrives whole, chunked, in order.
        """
        response = requests.get(self.url + "/stream?n=300", timeout=20, stream=True)
        self.assertEqual(response.headers.get("Transfer-Encoding"), "chunked")
        body = b"".join(response.iter_content(65536))
        self.assertEqual(len(body), 300 * 1000)
        self.assertEqual(
            [body[i : i + 5] for i in range(0, len(body), 1000)],
            [b"%05d" % i for i in range(300)],
        )

    def test_sendFile(self) -> None:
        """
        C{send_file} sends the file with its length; a range gets 206; the
        ETag makes a conditional request 304.
        """
        response = requests.get(self.url + "/file", timeout=20)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.content, self.data)
        self.assertEqual(response.headers["Content-Length"], str(len(self.data)))
        partial = requests.get(
            self.url + "/file", headers={"Range": "bytes=1000-1999"}, timeout=20
        )
        self.assertEqual(partial.status_code, 206)
        self.assertEqual(partial.content, self.data[1000:2000])
        cached = requests.get(
            self.url + "/file",
            headers={"If-None-Match": response.headers["ETag"]},
            timeout=20,
        )
        self.assertEqual((cached.status_code, cached.content), (304, b""))

    def test_upload(self) -> None:
        """
        A multipart upload reaches the application intact.
        """
        response = requests.post(
            self.url + "/upload", files={"f": ("a.bin", self.data)}, timeout=20
        )
        self.assertEqual(
            response.text,
            f"a.bin {len(self.data)} {hashlib.sha256(self.data).hexdigest()}",
        )


class DjangoTests(SharedServer):
    """
    A Django project with the admin.
    """

    adminStatic = os.path.join(
        os.path.dirname(django.__file__), "contrib", "admin", "static"
    )

    def startServer(self) -> ServerProcess:
        return serve(
            "--app", "djangoops.wsgi:application",
            "--static", f"/static={self.adminStatic}",
        )  # fmt: skip

    def test_adminLogin(self) -> None:
        """
        The admin redirects to its login page, which renders with a CSRF
        token and links to its stylesheet, which C{--static} serves.
        """
        session = requests.Session()
        response = session.get(self.url + "/admin/", timeout=20)
        self.assertEqual(response.url, self.url + "/admin/login/?next=/admin/")
        self.assertEqual(response.status_code, 200, response.text)
        self.assertIn('name="csrfmiddlewaretoken"', response.text)
        self.assertIn("csrftoken", session.cookies)
        self.assertIn('href="/static/admin/css/base.css"', response.text)
        css = session.get(self.url + "/static/admin/css/base.css", timeout=20)
        self.assertEqual(css.status_code, 200)
        self.assertEqual(css.headers["Content-Type"], "text/css")
        with open(
            os.path.join(self.adminStatic, "admin", "css", "base.css"), "rb"
        ) as f:
            self.assertEqual(css.content, f.read())
        self.assertIn("ETag", css.headers)

    def test_upload(self) -> None:
        """
        A file upload larger than Django keeps in memory arrives intact with
        the other form fields.
        """
        data = os.urandom(200_000)
        response = requests.post(
            self.url + "/upload",
            files={"f": ("b.bin", data)},
            data={"note": "héllo"},
            timeout=20,
        )
        self.assertEqual(
            response.content.decode("utf-8"),
            f"b.bin {len(data)} {hashlib.sha256(data).hexdigest()} héllo",
        )


class FalconTests(SynchronousTestCase):
    """
    A Falcon application.
    """

    def test_routes(self) -> None:
        """
        Routing, query parameters, a request body and a streamed body work.
        """
        server = serve("--app", "falconops:app")
        self.addCleanup(server.stop)
        url = server.url
        response = requests.get(url + "/items/a%20b?q=%C3%A9", timeout=20)
        self.assertEqual(response.json(), {"item": "a b", "q": "é", "method": "GET"})
        response = requests.put(url + "/items/x", data=b"z" * 70_000, timeout=20)
        self.assertEqual(
            (response.status_code, response.json()),
            (201, {"item": "x", "length": 70_000}),
        )
        response = requests.get(url + "/stream", timeout=20)
        self.assertEqual(response.content, b"x" * 300_000)
