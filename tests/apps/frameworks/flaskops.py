"""
A Flask application for the framework tests: a streamed response,
C{send_file}, a file upload, and a view that reads its body after its
client left.
"""

from __future__ import annotations

import hashlib
import os

from flask import Flask, Response, request, send_file, stream_with_context
from lateread import readLate

app = Flask(__name__)

DATA = os.environ.get("FLASKOPS_FILE", __file__)


@app.route("/stream")
def stream() -> Response:
    count = int(request.args.get("n", "100"))

    def chunks():  # type: ignore[no-untyped-def]
        for i in range(count):
            yield b"%05d" % i + b"." * 995

    return Response(stream_with_context(chunks()), mimetype="application/octet-stream")


@app.route("/file")
def file() -> Response:
    return send_file(DATA, mimetype="application/octet-stream", conditional=True)


@app.route("/upload", methods=["POST"])
def upload() -> str:
    f = request.files["f"]
    data = f.read()
    return f"{f.filename} {len(data)} {hashlib.sha256(data).hexdigest()}"


@app.route("/remote")
def remote() -> str:
    return request.remote_addr or ""


@app.route("/late-read", methods=["POST"])
def lateRead() -> str:
    # The test makes the client leave, then creates the X-Release file.
    readLate(request.headers["X-Release"], lambda: request.data)
    return "read"
