New hooks: --access-log-observer module:attr receives the frozen AccessRecord of every request, and --on-start, --on-drain and --on-stop run callables (which may return Deferreds) in order.
