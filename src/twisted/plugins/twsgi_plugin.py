"""
The C{twsgi} plugin for C{twistd} and C{twist}.

This module imports nothing of twsgi's own: plugin scans stay cheap and never
install a reactor.
"""

from twisted.application.service import ServiceMaker

twsgi = ServiceMaker(
    "twsgi",
    "twsgi.cli.options",
    "A production WSGI server: serve a WSGI application on Twisted endpoints.",
    "twsgi",
)
