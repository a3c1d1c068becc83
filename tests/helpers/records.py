"""
A sample access record.
"""

from __future__ import annotations

from twsgi.logs.accesslog import AccessRecord

RECORD = AccessRecord(
    timestamp=1_700_000_000.25,
    method="GET",
    target="/a/b?x=1&y=2",
    protocol="HTTP/1.1",
    status=200,
    bytesSent=13,
    duration=0.0123456,
    remoteAddr="192.0.2.7",
    remotePort=54321,
    listener="tcp:8000",
    requestId="abc123",
    userAgent="curl/8.5",
    referer="http://example.com/",
    bytesReceived=5,
    requestHeaders=(("Host", "example.com"), ("X-Thing", "one"), ("x-thing", "two")),
    responseHeaders=(("Content-Type", "text/plain"),),
)
