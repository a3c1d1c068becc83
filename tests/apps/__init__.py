"""
WSGI applications the integration and command-line tests serve.

The command-line tests give this directory with C{--pythonpath} and name the
modules at top level (C{--app wsgiapps:app}); the in-process tests import
them as C{tests.apps.*}.
"""
