"""
The lifecycle: the service that owns the listeners, the drain that stops it
without losing a request, and the signals that start either.
"""
