HTTP/2 requests show ``HTTP/2.0`` in the access log and in ``SERVER_PROTOCOL`` (it was ``HTTP/2``), as nginx and Apache write it.
