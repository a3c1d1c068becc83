A new counter, twsgi_requests_refused_total, counts the requests answered 503 by --max-pending.
