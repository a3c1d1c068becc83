"""
The HTTP grammar and parsers: request heads, chunked bodies, limits and
error responses.  Pure Python: nothing here imports Twisted.
"""
