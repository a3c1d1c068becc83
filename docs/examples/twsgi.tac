# Serve twsgi's example application from a .tac file:
#
#     twistd -n -y docs/examples/twsgi.tac
#
# TWSGI_TAC_ENDPOINT overrides where it listens (the tests use port 0).

import os

from twisted.application.service import Application
from twisted.internet import reactor

import twsgi
from twsgi.example import app

endpoint = os.environ.get("TWSGI_TAC_ENDPOINT", "tcp:8000:interface=127.0.0.1")

application = Application("twsgi")
config = twsgi.ServerConfig(
    # Names the application in the log.
    app="twsgi.example:app",
    endpoint=(endpoint,),
    threads=(4, 32),
    # The access log, in the Combined Log Format, on standard output (with
    # twistd -n) or in a file: access_log="/var/log/app/access.log".  A daemon
    # (twistd without -n) needs a file: its standard output is /dev/null.
    access_log="-",
    access_log_format="combined",
)
try:
    # handleSignals: this process runs twsgi alone, with twsgi's signal
    # handling, and exit status 1 when it cannot listen.
    service = twsgi.TwsgiService(config, app, reactor, handleSignals=True)
except (twsgi.ConfigError, ValueError) as e:
    # A malformed endpoint string, a bad certificate, an access log that
    # cannot be opened: one line and exit status 1, not a traceback.
    raise SystemExit(f"twsgi: {e}")
service.setServiceParent(application)
