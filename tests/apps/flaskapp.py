"""
A Flask application for the framework tests.
"""

from __future__ import annotations

import hashlib

from flask import Flask, request

app = Flask(__name__)


@app.get("/hello/<name>")
def hello(name: str) -> str:
    return f"hello {name} via {request.scheme}"


@app.post("/upload")
def upload() -> dict[str, object]:
    body = request.get_data()
    return {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}
