# Mount a WSGI application under /app of an existing twisted.web site:
#
#     twistd -n -y docs/examples/mount.tac
#
# TWSGI_TAC_ENDPOINT overrides where it listens (the tests use port 0).

import os

from twisted.application import strports
from twisted.application.service import Application
from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

import twsgi


def hello(environ, start_response):
    """
    Say where the application is mounted and what was asked of it.
    """
    body = f"SCRIPT_NAME={environ['SCRIPT_NAME']} PATH_INFO={environ['PATH_INFO']}\n"
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [body.encode("utf-8")]


root = Resource()
root.putChild(b"", Data(b"The rest of the site.\n", "text/plain"))
root.putChild(b"app", twsgi.WSGIResource(reactor, reactor.getThreadPool(), hello))

endpoint = os.environ.get("TWSGI_TAC_ENDPOINT", "tcp:8000:interface=127.0.0.1")

application = Application("mounted")
site = Site(root, parsePOSTFormSubmission=False)
strports.service(endpoint, site).setServiceParent(application)
