`--request-timeout` logs the stack of a request that runs past its deadline, and with `--request-timeout-action recycle` replaces its worker gracefully.
