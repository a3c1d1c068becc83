#!/usr/bin/env bash
# Create bench/.venv with twsgi (from this checkout) and the peer servers,
# and make sure wrk and h2load are installed.  Safe to run again: it only adds what is
# missing.  Usage: bash bench/setup.sh   (from anywhere)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
venv="$here/.venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
pip="$venv/bin/pip"

"$pip" install -q --upgrade pip >/dev/null 2>&1 || true
"$pip" install -q -e "$repo[http2]" 'twisted[tls,http2]' gunicorn waitress

# granian ships Rust wheels; where no wheel fits this machine, skip it.
if "$pip" install -q granian; then
    echo "setup: granian installed"
else
    echo "setup: granian did not install; the benchmark skips it" >&2
fi

if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        apt-get install -y -qq wrk
    else
        echo "setup: wrk is missing; run: sudo apt-get install -y wrk" >&2
        exit 1
    fi
fi

# h2load (Debian's nghttp2-client) loads the TLS scenarios, over HTTP/2 and
# HTTP/1.1.
if ! command -v h2load >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        apt-get install -y -qq nghttp2-client
    else
        echo "setup: h2load is missing; run: sudo apt-get install -y nghttp2-client" >&2
        exit 1
    fi
fi

echo "setup: ready ($venv, $(command -v wrk), $(command -v h2load))"
