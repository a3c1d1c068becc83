"""
A Flask application for the framework tests: a streamed response,
C{send_file}, and a file upload.
"""

from __future__ import annotations

import hashlib
import os

from flask import Flask, Response, request, send_file, stream_with_context

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
