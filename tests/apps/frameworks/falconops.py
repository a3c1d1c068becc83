"""
A Falcon application for the framework tests.
"""

from __future__ import annotations

import io

import falcon


class Items:
    def on_get(self, req: falcon.Request, resp: falcon.Response, item: str) -> None:
        resp.media = {"item": item, "q": req.get_param("q"), "method": req.method}

    def on_put(self, req: falcon.Request, resp: falcon.Response, item: str) -> None:
        body = req.bounded_stream.read()
        resp.status = falcon.HTTP_201
        resp.media = {"item": item, "length": len(body)}


class Stream:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "text/plain"
        resp.stream = io.BytesIO(b"x" * 300_000)


app = falcon.App()
app.add_route("/items/{item}", Items())
app.add_route("/stream", Stream())
