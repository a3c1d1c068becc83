`twsgi.testing.SynchronousReactor` is now a memory reactor, so a `TwsgiService` can be built and started on it and its sites driven with `MemoryServer(site=...)`, without a socket.
