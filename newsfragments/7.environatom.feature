Access-log templates take gunicorn's ``%({variable}e)s`` atom: a WSGI environ value as the application left it (``REMOTE_USER`` set by an authentication middleware, say).
