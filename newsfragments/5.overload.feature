New --max-connections (stop accepting above it; connections wait in the kernel backlog) and --max-pending (default 1024: requests beyond it waiting for a thread get 503 with Retry-After) settings.
