A cleartext listener serves HTTP/2 by prior knowledge (h2c, as HAProxy's `proto h2` speaks it) when `;http2=prior-knowledge` follows its endpoint string; other connections on it stay HTTP/1.1.
