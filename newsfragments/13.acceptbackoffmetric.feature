A new counter, twsgi_accept_backoffs_total, counts the times a listener stopped accepting for 0.1 s because the process was out of file descriptors.
