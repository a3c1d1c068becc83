The "listening on" line of the server log names a URL an operator can click or paste (`http://127.0.0.1:8000`, `https://[::1]:8443`, `unix:/run/app.sock`).
