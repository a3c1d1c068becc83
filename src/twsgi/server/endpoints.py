# -*- test-case-name: tests.server.test_endpoints -*-
"""
Where to listen, as text: gunicorn's C{--bind} addresses turned into Twisted
endpoint strings, the listen backlog every listener gets unless its endpoint
string names one, the port range, and the hint for a C{HOST:PORT} given where
an endpoint string belongs.

Pure functions on strings: nothing here imports Twisted or opens a socket.
Endpoint strings are read with the grammar of L{serverFromString}: fields
separated by C{:}, C{name=value} for a keyword, and a backslash escaping the
next character.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from twsgi.http.abnf import HOST_NAME

DEFAULT_BACKLOG = 2048
"""
The listen backlog of every listener whose endpoint string does not name
one: gunicorn's default.  Twisted's own default, 50, drops connections (SYNs)
under a burst.  The kernel caps it silently (Linux: C{net.core.somaxconn},
4096 by default since Linux 5.4).
"""

DEFAULT_PORT = "8000"
"""
The port of a C{--bind HOST} without one, as in gunicorn.
"""

_HAPROXY = "haproxy:"

_BACKLOG_POSITION = {"tcp": 2, "tcp6": 1, "ssl": 5, "tls": 2, "unix": 2}
"""
The endpoint types that take a C{backlog}, and its position among their
arguments (C{tcp:PORT:INTERFACE:BACKLOG}, C{tcp6:PORT:BACKLOG:INTERFACE},
C{ssl:PORT:KEY:CERT:METHOD:INTERFACE:BACKLOG}, C{tls:DIR:PORT:BACKLOG:INTERFACE},
C{unix:PATH:MODE:BACKLOG}).
"""

_ENDPOINT_TYPES = ("tcp", "tcp6", "ssl", "tls", "systemd", "haproxy")
"""
The endpoint types that a C{--bind} address can be mistaken for (as a host
name): an endpoint string belongs to C{--endpoint}.
"""


def unwrapped(description: str) -> str:
    """
    The endpoint string inside any C{haproxy:} prefix.
    """
    while description.startswith(_HAPROXY):
        description = description[len(_HAPROXY) :]
    return description


def parameters(description: str) -> tuple[list[str], dict[str, str]]:
    """
    The positional and keyword fields of an endpoint string, its type
    first, unescaped (as L{serverFromString} reads them).
    """
    fields: list[list[str]] = [[""]]
    characters = iter(description)
    for character in characters:
        if character == "\\":
            fields[-1][-1] += next(characters, "")
        elif character == ":":
            fields.append([""])
        elif character == "=" and len(fields[-1]) == 1:
            fields[-1].append("")
        else:
            fields[-1][-1] += character
    positional = [field[0] for field in fields if len(field) == 1]
    keywords = {field[0]: field[1] for field in fields if len(field) == 2}
    return positional, keywords


def escape(value: str) -> str:
    """
    Escape a value for an endpoint string.
    """
    return re.sub(r"([\\:=])", r"\\\1", value)


def endpointType(description: str) -> str:
    """
    The type of an endpoint string (C{tcp}, C{unix}...) inside any
    C{haproxy:} prefix.
    """
    return parameters(unwrapped(description))[0][0]


def givesOption(description: str, name: str, position: int) -> bool:
    """
    Whether an endpoint string (behind any C{haproxy:} prefix) gives the
    option C{name}, as a keyword or as its C{position}th argument after the
    type (0 is the first).
    """
    positional, keywords = parameters(unwrapped(description))
    return name in keywords or len(positional) > position + 1


def withBacklog(description: str) -> str:
    """
    Give a C{tcp:}, C{tcp6:}, C{ssl:}, C{tls:} or C{unix:} endpoint string (also
    behind C{haproxy:}) the listen backlog L{DEFAULT_BACKLOG}, unless it
    names one.  Other endpoint types are returned as they are.
    """
    position = _BACKLOG_POSITION.get(endpointType(description))
    if position is None or givesOption(description, "backlog", position):
        return description
    return f"{description}:backlog={DEFAULT_BACKLOG}"


def _port(text: str, quoted: str = "") -> int:
    """
    A port number from 0 to 65535.

    @param quoted: what to name first in the error, if anything.
    @raise ValueError: if C{text} is not one.
    """
    prefix = f"{quoted}: " if quoted else ""
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"{prefix}{text!r} is not a port number")
    if not 0 <= port <= 65535:
        raise ValueError(f"{prefix}port {port} is outside 0-65535")
    return port


_NO_SOCKET_PATH = "no socket path (for example unix:/run/app.sock)"


def checkAddress(description: str) -> None:
    """
    Check the address of a C{tcp:}, C{tcp6:}, C{ssl:} or C{tls:} endpoint
    string (also behind C{haproxy:}), or the path of a C{unix:} one.  Its
    port: the kernel would refuse one outside 0-65535 only when it listens,
    after C{--check-config} said all is well.  Its C{interface=}, if given:
    an empty one (an unset variable in C{interface=$HOST}) would listen on
    every address.  An empty C{unix:} path would listen where no client can
    connect.

    @raise ValueError: if the port is no number, or outside 0-65535, or
        C{interface=} or the C{unix:} path is empty.
    """
    positional, keywords = parameters(unwrapped(description))
    fields = _ADDRESS_FIELDS.get(positional[0])
    if fields is None:
        return
    if fields[0] == "unix":
        path = keywords.get("address", positional[1] if len(positional) > 1 else "")
        if not path:
            # Bound to an empty path, Linux picks an abstract address that
            # no client can know.
            raise ValueError(_NO_SOCKET_PATH)
        return
    where, position, interface = fields[1], fields[2], fields[3]
    port = keywords.get(
        where, positional[position] if position < len(positional) else None
    )
    if port is not None:
        _port(port)
    if keywords.get(interface) == "" and "" not in positional[1:]:
        # (interface=::1 unescaped reads as an empty interface= followed by
        # empty positional values: the parser names that mistake.)
        raise ValueError(
            "interface= is empty: name an address (interface=127.0.0.1), or "
            "leave interface= out to listen on every address"
        )


_ADDRESS_FIELDS = {
    "tcp": ("tcp", "port", 1, "interface", 2, ""),
    "ssl": ("tcp", "port", 1, "interface", 5, ""),
    "tcp6": ("tcp6", "port", 1, "interface", 3, "::"),
    "tls": ("tcp", "port", 2, "interface", 4, "::"),
    "unix": ("unix", "address", 1, "", 0, ""),
}
"""
Where the address of a listening socket is in an endpoint string of each
type: the socket family, the keyword and position of the port (or path),
the keyword and position of the interface, and the interface's default (as
L{serverFromString} reads them).  An C{ssl:} or C{tls:} listener is a TCP
socket.
"""


def _listenAddress(description: str) -> tuple[str, ...]:
    """
    What a listener of an endpoint string listens on, however written: its
    socket family, port (or path) and interface, for the types of
    L{_ADDRESS_FIELDS}; any other endpoint string as it is.
    """
    positional, keywords = parameters(unwrapped(description))
    fields = _ADDRESS_FIELDS.get(positional[0])
    if fields is None:
        return ("", description)
    family, where, wherePosition, interface, interfacePosition, default = fields

    def field(name: str, position: int, missing: str) -> str:
        if name in keywords:
            return keywords[name]
        return positional[position] if 0 < position < len(positional) else missing

    place = field(where, wherePosition, "")
    if family != "unix":
        # A port as a number (08000 is 8000); checkAddress refuses a bad one.
        place = str(int(place)) if place.isdigit() else place
    return (family, place, field(interface, interfacePosition, default))


def anyFreePort(description: str) -> bool:
    """
    Whether the endpoint string listens on a TCP port the system picks
    (port 0).
    """
    address = _listenAddress(description)
    return address[0] in ("tcp", "tcp6") and address[1] == "0"


def repeatedListener(descriptions: Iterable[str]) -> str | None:
    """
    The first endpoint string that would listen on the address of an
    earlier one (however written), where the second would fail (address in
    use); C{None} if there is none.  A port 0 given twice is two free ports.
    """
    seen = set()
    for description in descriptions:
        if anyFreePort(description):
            continue
        address = _listenAddress(description)
        if address in seen:
            return description
        seen.add(address)
    return None


def bindEndpoint(address: str) -> str:
    """
    The endpoint string for a C{--bind} address, in gunicorn's forms:
    C{HOST:PORT}, C{[IPV6]:PORT}, C{:PORT} (every IPv4 address), C{HOST}
    alone (port 8000), C{tcp://HOST:PORT}, C{unix:PATH} or C{unix://PATH}.

    A bare port (C{8000}) is refused: gunicorn takes it as a host name and
    listens on port 8000 of an address nobody meant.

    @raise ValueError: naming the address, if it is none of those forms.
    """
    text = address.strip()
    quoted = repr(text)
    if not text:
        raise ValueError(
            f"{quoted}: empty (write HOST:PORT, for example 127.0.0.1:8000)"
        )
    if text.startswith("unix:"):
        path = text[len("unix:") :].removeprefix("//")
        if not path:
            raise ValueError(f"{quoted}: {_NO_SOCKET_PATH}")
        return "unix:" + escape(path)
    if text.startswith("fd://"):
        raise ValueError(
            f"{quoted}: descriptors are not bound by --bind; for a socket that "
            "systemd passes, use --endpoint systemd:domain=INET:index=0"
        )
    if "," in text:
        raise ValueError(
            f"{quoted}: one address each: repeat --bind (in TWSGI_BIND, "
            "separate them with spaces)"
        )
    scheme, slashes, rest = text.partition("://")
    if slashes and scheme != "tcp":
        raise ValueError(f"{quoted}: no scheme: write {rest.partition('/')[0]}")
    text = text.removeprefix("tcp://")
    if text.partition(":")[0] in _ENDPOINT_TYPES:
        raise ValueError(f"{quoted}: an endpoint string: use --endpoint {text}")
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise ValueError(f"{quoted}: the IPv6 address has no closing ]")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{quoted}: {host!r} is not an IPv6 address")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{quoted}: write [{host}]:PORT, for example [::1]:8000")
        number = _port(rest[1:] if rest else DEFAULT_PORT, quoted)
        return f"tcp6:{number}:interface={escape(host)}"
    if text.isdigit():
        raise ValueError(
            f"{quoted}: a bare port is ambiguous; write 127.0.0.1:{text} (this "
            f"machine) or :{text} (every IPv4 address)"
        )
    host, colon, port = text.partition(":")
    if ":" in port:
        raise ValueError(f"{quoted}: an IPv6 address goes in brackets, as [::1]:8000")
    number = _port(port if colon else DEFAULT_PORT, quoted)
    if not host:
        return f"tcp:{number}"
    if not HOST_NAME.match(host):
        raise ValueError(f"{quoted}: {host!r} is not a host name or IPv4 address")
    return f"tcp:{number}:interface={host}"


def hostPortHint(description: str, bind: bool = True) -> str | None:
    """
    For an endpoint string that is a C{--bind} address instead
    (C{127.0.0.1:8000}, C{localhost:8000}, C{:8000}, C{[::1]:8000}, a host
    name with a dot) or a bare port, what to write; C{None} for anything
    else.

    @param bind: also name the C{--bind} that means the same (an
        application listener's; an admin listener has no C{--bind}).
    """
    text = description.strip()
    if text.isdigit():
        text = f"127.0.0.1:{text}"
    host = text.rpartition("]")[0] or text.partition(":")[0]
    if ":" not in text or not (host in ("", "localhost") or "." in host or "[" in host):
        # A word before the colon may be the type of an endpoint plugin
        # that is not installed: Twisted's own message says so.
        return None
    try:
        endpoint = bindEndpoint(text)
    except ValueError:
        return None
    return f"write '{endpoint}'" + (f" (or --bind {text})" if bind else "")


__all__ = [
    "DEFAULT_BACKLOG",
    "DEFAULT_PORT",
    "anyFreePort",
    "bindEndpoint",
    "checkAddress",
    "endpointType",
    "escape",
    "givesOption",
    "hostPortHint",
    "parameters",
    "repeatedListener",
    "unwrapped",
    "withBacklog",
]
