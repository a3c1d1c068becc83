"""
The lifecycle: the service that owns the listeners, the drain that stops it
without losing a request, and the signals that start either; and the one
place where the config becomes the objects of a service
(L{twsgi.lifecycle.build}).
"""
