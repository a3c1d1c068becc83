twsgi serves any WSGI application with `twistd -n twsgi --app module:app`, `twist twsgi` or `python -m twsgi`, on any Twisted endpoint string.
