# -*- test-case-name: tests.http.test_abnf -*-
"""
The header fields that belong to one connection, not to the message, written
once: what an application may not set (PEP 3333), and what HTTP/2 refuses.
Pure: nothing here imports Twisted.
"""

from __future__ import annotations

CONNECTION_SPECIFIC = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
    }
)
"""
Connection-specific fields (lower case), which HTTP/2 forbids in a message
(RFC 9113 section 8.2.2); a shared code path may set them for HTTP/1.1.
"""

HOP_BY_HOP = CONNECTION_SPECIFIC | {b"te", b"trailer"}
"""
Hop-by-hop fields (lower case): the connection-specific ones, C{TE} and
C{Trailer}.  RFC 9110 section 7.6.1 and PEP 3333 ("Other HTTP Features"): an
application must not set them; the server owns the framing.
"""

__all__ = ["CONNECTION_SPECIFIC", "HOP_BY_HOP"]
