An HTTP/2 response whose client does not read holds at most 128 KiB queued in the server (HTTP/1.1: 256 KiB), so that a client opening 100 streams and reading none holds about 21 MB.
