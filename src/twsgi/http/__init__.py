"""
The HTTP grammar and parsers: request heads, chunked bodies, limits and
error responses; and HTTP/2's frames, header blocks and connection state
(streams, settings, flow control), without I/O.  Pure Python: nothing here
imports Twisted.
"""
