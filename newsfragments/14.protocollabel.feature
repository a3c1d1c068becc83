``twsgi_requests_total`` has a ``protocol`` label (``HTTP/1.1``, ``HTTP/2.0``, ``HTTP/1.0``, or ``unknown`` for a request refused before its request line was read) besides ``status_class``.
