The server keeps the objects that live as long as the process out of Python's full garbage-collection passes, which removes pauses of up to a fifth of a second from the tail latency.
