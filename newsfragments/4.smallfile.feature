A wsgi.file_wrapper around a small file (up to 64 KiB) is sent like a list body, in one hand-over to the network thread.
