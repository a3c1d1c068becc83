# -*- test-case-name: tests.server.test_proxyheader -*-
"""
The PROXY protocol header (HAProxy's C{proxy-protocol.txt}, versions 1 and
2) that a load balancer sends before the client's bytes: who the client is
and which address it connected to.

Pure: bytes in, values out; nothing here imports Twisted.
L{ProxyHeaderParser} reads a header that may arrive split across any number
of reads, and refuses anything else with L{ProxyHeaderError}.
L{twsgi.server.proxyprotocol} puts it on a connection.
"""

from __future__ import annotations

import ipaddress
import struct

from attrs import frozen

V1_PREFIX = b"PROXY "
"""
How a version 1 header starts.
"""

V1_MAX = 107
"""
The longest version 1 header, with its CRLF (the specification's bound).
"""

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
"""
How a version 2 header starts.
"""

V2_MAX = 4096
"""
The longest version 2 header twsgi reads, its TLVs included: HAProxy's own
headers (addresses, TLS details, a unique id) stay far below it, and a
connection cannot make the server buffer more before it is refused.
"""

_V2_FIXED = 16
_COMMANDS = {0x0: False, 0x1: True}
"""
Version 2 commands: LOCAL (the proxy's own connection, a health check: no
addresses) and PROXY.
"""
_FAMILIES = {0x0: None, 0x1: 12, 0x2: 36, 0x3: 216}
"""
Version 2 address families (UNSPEC, INET, INET6, UNIX) and the size of
their address block.
"""
_TRANSPORTS = {0x0: None, 0x1: "TCP", 0x2: "UDP"}
"""
Version 2 transport protocols (UNSPEC, STREAM, DGRAM).
"""


class ProxyHeaderError(ValueError):
    """
    The bytes are no PROXY protocol header twsgi accepts.
    """


@frozen
class InetAddress:
    """
    An IP address and port from a PROXY header, the address in the form RFC
    5952 recommends (C{2001:db8::9}, not C{2001:DB8:0::9}; an IPv4-mapped
    one as C{::ffff:192.0.2.1}, as the kernel, HAProxy and nginx write it,
    whichever Python's L{ipaddress} would write).

    @ivar transport: C{"TCP"} or C{"UDP"}.
    @ivar version: 4 or 6.
    """

    transport: str
    version: int
    host: str
    port: int


@frozen
class ProxyHeader:
    """
    A parsed PROXY header.

    @ivar version: 1 or 2.
    @ivar source: the client; C{None} if the header names none (C{PROXY
        UNKNOWN}, a version 2 LOCAL or UNSPEC header) or names no IP
        address (a version 2 UNIX one, a version 1 field that is no address
        of the header's family): the connection's own peer then stands, as
        behind HAProxy and nginx.
    @ivar destination: the address the client connected to, likewise.
    @ivar size: how many bytes the header took.
    """

    version: int
    source: InetAddress | None
    destination: InetAddress | None
    size: int


def _port(field: bytes) -> int:
    # The specification forbids leading zeroes ("to avoid any possible
    # confusion with octal numbers").
    if (
        not field.isdigit()
        or len(field) > 5
        or int(field) > 65535
        or field[:1] == b"0" != field
    ):
        raise ProxyHeaderError(f"port {field!r} is not a number from 0 to 65535")
    return int(field)


def _inet(transport: str, address: bytes | str, port: int) -> InetAddress:
    """
    An L{InetAddress} of an IP address given as text or packed bytes.

    @raise ValueError: if C{address} is no IP address.
    """
    parsed = ipaddress.ip_address(address)
    mapped = getattr(parsed, "ipv4_mapped", None)
    text = str(parsed) if mapped is None else f"::ffff:{mapped}"
    return InetAddress(transport, parsed.version, text, port)


def _v1Address(field: bytes, port: int, version: int) -> InetAddress | None:
    """
    The address of a version 1 header field, or C{None} for one that is no
    IP address of the header's family (C{TCP4}: IPv4, C{TCP6}: IPv6) in the
    specification's form (no leading zeroes, no IPv6 zone): not believed,
    the connection's own address stands.
    """
    try:
        address = _inet("TCP", field.decode("ascii"), port)
    except ValueError:
        return None
    if address.version != version or b"%" in field:
        return None
    return address


def parseV1(line: bytes) -> ProxyHeader:
    """
    Parse a version 1 header line, its CRLF included.

    @raise ProxyHeaderError: if it is malformed.
    """
    fields = line[: -len(b"\r\n")].split(b" ")
    if fields[:2] == [b"PROXY", b"UNKNOWN"]:
        # "the receiver must ignore anything presented before the CRLF"
        return ProxyHeader(1, None, None, len(line))
    if len(fields) != 6 or fields[0] != b"PROXY" or fields[1] not in (b"TCP4", b"TCP6"):
        raise ProxyHeaderError(f"malformed version 1 header {line!r}")
    sourcePort, destinationPort = _port(fields[4]), _port(fields[5])
    version = 4 if fields[1] == b"TCP4" else 6
    return ProxyHeader(
        1,
        _v1Address(fields[2], sourcePort, version),
        _v1Address(fields[3], destinationPort, version),
        len(line),
    )


def parseV2(header: bytes) -> ProxyHeader:
    """
    Parse a whole version 2 header (the 16 fixed bytes and the length they
    give); TLVs after the addresses are skipped.

    @raise ProxyHeaderError: if it is malformed.
    """
    versionCommand, familyTransport, length = struct.unpack_from("!BBH", header, 12)
    if versionCommand >> 4 != 2 or (versionCommand & 0xF) not in _COMMANDS:
        raise ProxyHeaderError(f"unknown version/command byte {versionCommand:#04x}")
    family, transport = familyTransport >> 4, familyTransport & 0xF
    if family not in _FAMILIES or transport not in _TRANSPORTS:
        raise ProxyHeaderError(f"unknown family/protocol byte {familyTransport:#04x}")
    size = _V2_FIXED + length
    blockSize = _FAMILIES[family]
    kind = _TRANSPORTS[transport]
    if not _COMMANDS[versionCommand & 0xF] or blockSize is None or kind is None:
        return ProxyHeader(2, None, None, size)
    if length < blockSize:
        raise ProxyHeaderError(f"{length} bytes cannot hold the addresses")
    if family == 0x3:
        # UNIX socket paths name no client: the connection's own addresses
        # stand, as HAProxy and nginx do with such a header.
        return ProxyHeader(2, None, None, size)
    block = header[_V2_FIXED : _V2_FIXED + blockSize]
    half = (blockSize - 4) // 2
    sourcePort, destinationPort = struct.unpack_from("!HH", block, 2 * half)
    return ProxyHeader(
        2,
        _inet(kind, block[:half], sourcePort),
        _inet(kind, block[half : 2 * half], destinationPort),
        size,
    )


_TLS_HANDSHAKE = b"\x16"
"""
The first byte of a TLS handshake record (a client's C{ClientHello}).
"""


class ProxyHeaderParser:
    """
    Reads a PROXY header of either version from bytes as they arrive, split
    anywhere.
    """

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> tuple[ProxyHeader, bytes] | None:
        """
        Take the next bytes of the connection.

        @return: C{None} while the header is incomplete; then the header and
            the bytes that followed it.
        @raise ProxyHeaderError: as soon as the bytes cannot start or be a
            header, or the header runs past its bound.
        """
        buffer = self._buffer = self._buffer + data
        if buffer.startswith(V1_PREFIX[: len(buffer)]):
            end = buffer.find(b"\r\n", 0, V1_MAX) + 2
            if end < 2:
                if len(buffer) >= V1_MAX:
                    raise ProxyHeaderError(
                        f"no CRLF in the first {V1_MAX} bytes of a version 1 header"
                    )
                return None
            return parseV1(buffer[:end]), buffer[end:]
        if not buffer.startswith(V2_SIGNATURE[: len(buffer)]):
            if buffer.startswith(_TLS_HANDSHAKE):
                raise ProxyHeaderError(
                    "no PROXY header: a TLS handshake came first (the load "
                    "balancer sends none, e.g. HAProxy without send-proxy)"
                )
            raise ProxyHeaderError(f"no PROXY header: {buffer[:16]!r}")
        if len(buffer) < _V2_FIXED:
            return None
        size = _V2_FIXED + struct.unpack_from("!H", buffer, 14)[0]
        if size > V2_MAX:
            raise ProxyHeaderError(f"a {size}-byte version 2 header (at most {V2_MAX})")
        if len(buffer) < size:
            # Refuse a bad version or family at once, not after the length.
            parseV2(buffer[:_V2_FIXED] + bytes(size - _V2_FIXED))
            return None
        return parseV2(buffer[:size]), buffer[size:]


__all__ = [
    "InetAddress",
    "ProxyHeader",
    "ProxyHeaderError",
    "ProxyHeaderParser",
    "V1_MAX",
    "V1_PREFIX",
    "V2_MAX",
    "V2_SIGNATURE",
    "parseV1",
    "parseV2",
]
