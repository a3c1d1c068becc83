With the new ``http2`` extra installed, TLS listeners serve HTTP/2 through ALPN, with the same limits, timeouts, access log and graceful stop as HTTP/1.1; ``--no-http2`` turns it off.
