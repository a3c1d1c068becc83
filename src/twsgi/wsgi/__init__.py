"""
WSGI: the environ, the response rules of PEP 3333, the thread pool and the
bridge that runs an application for a request.
"""
