"""
The server: HTTP/1.1 and HTTP/2 connections, listeners and endpoints, TLS,
the PROXY protocol and the per-listener policy (forwarding, routes, health).
"""
