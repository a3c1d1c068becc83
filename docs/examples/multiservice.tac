# twsgi beside another Twisted service in one process, stopped in order.
#
# Run it with:
#
#     twistd -n -y docs/examples/multiservice.tac
#
# The WSGI application asks the echo service (a stand-in for a database pool,
# a cache or a message queue) for every request.  OrderedMultiService stops
# its children last-added first, one at a time: on SIGTERM twsgi drains every
# request in flight while the echo service still runs, and only then does
# the echo service stop.  (A plain MultiService would stop both at once.)
#
# TWSGI_TAC_ENDPOINT and TWSGI_TAC_ECHO_PORT override where they listen (the
# tests use free ports).

import os
import socket

from twisted.application import strports
from twisted.application.service import Application
from twisted.internet import reactor
from twisted.internet.protocol import Factory
from twisted.protocols.wire import Echo

from twsgi import OrderedMultiService, ServerConfig, TwsgiService

ECHO_PORT = int(os.environ.get("TWSGI_TAC_ECHO_PORT", "8001"))


def app(environ, start_response):
    with socket.create_connection(("127.0.0.1", ECHO_PORT), timeout=5) as s:
        s.sendall(b"ping\n")
        answer = s.recv(64)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"echo said: " + answer]


application = Application("twsgi-multiservice")
services = OrderedMultiService()
services.setServiceParent(application)

# Added first, so stopped last.
strports.service(
    f"tcp:{ECHO_PORT}:interface=127.0.0.1", Factory.forProtocol(Echo)
).setServiceParent(services)

config = ServerConfig(
    endpoint=(os.environ.get("TWSGI_TAC_ENDPOINT", "tcp:8000:interface=127.0.0.1"),),
    threads=(4, 16),
    graceful_timeout=30.0,
    access_log="-",
    access_log_format="json",
)
TwsgiService(config, app, reactor).setServiceParent(services)
