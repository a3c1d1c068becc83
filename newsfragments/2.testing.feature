`twsgi.testing.spawnServer(..., listeners=N)` waits until N listeners are up, and `ServerProcess.addresses` lists the host and real port of each.
