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
try:
    service = twsgi.TwsgiService(
        app,
        [endpoint],
        reactor,
        threads=(4, 32),
        appName="twsgi.example:app",
        # The access log, in the Combined Log Format, on standard output (with
        # twistd -n) or in a file: accessLog="/var/log/app/access.log".  A daemon
        # (twistd without -n) needs a file: its standard output is /dev/null.
        accessLog="-",
        accessLogFormat="combined",
        # This process runs twsgi alone: twsgi's signal handling, and exit
        # status 1 when it cannot listen.
        handleSignals=True,
    )
except (ValueError, OSError) as e:
    # A malformed endpoint string, a bad certificate, an access log that
    # cannot be opened: one line and exit status 1, not a traceback.
    raise SystemExit(f"twsgi: {e}")
service.setServiceParent(application)
