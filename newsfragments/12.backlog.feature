Listeners get a listen backlog of 2048 (gunicorn's default) instead of Twisted's 50, also under ``--workers`` and behind ``haproxy:``; an endpoint string's own ``backlog=`` still wins.
