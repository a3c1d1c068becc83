"""
Real frameworks (Flask, Django) served by a real L{twsgi.TwsgiService} over
a real socket.
"""

from __future__ import annotations

import hashlib
import json

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.helpers import server as _server


def _upload(size: int) -> tuple[bytes, list[bytes]]:
    """
    An upload of C{size} bytes, and the same cut into chunks.
    """
    data = bytes((i * 7) % 256 for i in range(size))
    return data, [data[i : i + 10_000] for i in range(0, size, 10_000)]


class FlaskTests(TestCase):
    """
    A Flask application.
    """

    timeout = 30

    @defer.inlineCallbacks
    def test_route(self) -> defer.Generator[object, object, None]:
        """
        A Flask route with a path variable answers.
        """
        from tests.apps.flaskapp import app

        server = yield _server.serve(self, app)
        status, _, body = yield server.request("GET", "/hello/tw%C3%A9")
        self.assertEqual((status, body), (200, "hello twé via http".encode()))

    @defer.inlineCallbacks
    def test_chunkedUpload(self) -> defer.Generator[object, object, None]:
        """
        A chunked upload reaches Flask's C{request.get_data()} whole.
        """
        from tests.apps.flaskapp import app

        server = yield _server.serve(self, app)
        data, pieces = _upload(123_457)
        status, _, body = yield server.request(
            "POST",
            "/upload",
            body=iter(pieces),
            headers={"Content-Type": "application/octet-stream"},
        )
        self.assertEqual(status, 200)
        self.assertEqual(
            json.loads(body),
            {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        )


class DjangoTests(TestCase):
    """
    A Django project configured in code.
    """

    timeout = 30

    @defer.inlineCallbacks
    def test_view(self) -> defer.Generator[object, object, None]:
        """
        A Django view answers a GET.
        """
        from tests.apps.djangoapp import application

        server = yield _server.serve(self, application)
        status, headers, body = yield server.request("GET", "/hello/world")
        self.assertEqual((status, body), (200, b"hello world from django"))
        self.assertTrue(headers["content-type"].startswith("text/plain"))

    @defer.inlineCallbacks
    def test_postBody(self) -> defer.Generator[object, object, None]:
        """
        A POSTed body, with a length or chunked, reaches C{request.body}
        whole.
        """
        from tests.apps.djangoapp import application

        server = yield _server.serve(self, application)
        data, pieces = _upload(54_321)
        for body in (data, iter(pieces)):
            status, _, answer = yield server.request(
                "POST",
                "/upload",
                body=body,
                headers={"Content-Type": "application/octet-stream"},
            )
            self.assertEqual(status, 200)
            self.assertEqual(
                json.loads(answer),
                {
                    "method": "POST",
                    "length": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "contentType": "application/octet-stream",
                },
            )
