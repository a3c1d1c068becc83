# -*- test-case-name: tests.server.test_ports -*-
"""
The handshakes the kernel is answering for a listening TCP socket, asked of
Linux's C{sock_diag} netlink interface (what C{ss state syn-recv} shows):
what a stopping listener waits for before it closes (see
L{twsgi.server.ports.settled}).

A handshake is I{fresh} while the kernel has not sent its answer (the
SYN-ACK) a second time: it was answered less than the initial
retransmission timeout (a second) ago, and its client, if it is there, is
completing it.  One answered again is from a client that went away, a
forged address or a lost packet, and a stopping listener does not wait for
it: on a host open to the Internet there nearly always are some.

The kernel filters by state only, and walks every socket of the network
namespace to answer; the answer is parsed here.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from twisted.internet.address import IPv4Address, IPv6Address

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 0x1
_NLM_F_DUMP = 0x300
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_TCP_SYN_RECV = 3

_HEADER = struct.Struct("=IHHII")
"""C{struct nlmsghdr}: length, type, flags, sequence, port id."""

_REQUEST = struct.Struct("=BBBxI48x")
"""C{struct inet_diag_req_v2}: family, protocol, extensions, states, and a
C{struct inet_diag_sockid} left zero (a dump is filtered by state only)."""

_MESSAGE = struct.Struct("=BBBBHH16s16s")
"""The start of C{struct inet_diag_msg}: family, state, timer, retransmits,
then the source and destination ports (network order) and addresses."""


def _ask(family: int) -> list[tuple[int, int, bytes]]:
    """
    Every handshake in C{SYN_RECV} of address family C{family}, as
    C{(retransmits, local port, local address)}; an IPv4 address is the
    first 4 of its 16 bytes.

    @raise OSError: if the kernel cannot be asked.
    """
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG) as diag:
        diag.settimeout(1.0)
        request = _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 1 << _TCP_SYN_RECV)
        diag.send(
            _HEADER.pack(
                _HEADER.size + len(request),
                _SOCK_DIAG_BY_FAMILY,
                _NLM_F_REQUEST | _NLM_F_DUMP,
                1,
                0,
            )
            + request
        )
        found: list[tuple[int, int, bytes]] = []
        while True:
            data = diag.recv(1 << 16)
            if not data:
                raise OSError("sock_diag ended its answer early")
            if _read(data, found):
                return found


def _read(data: bytes, found: list[tuple[int, int, bytes]]) -> bool:
    """
    Read one part of C{sock_diag}'s answer into C{found} (see L{_ask}).

    @return: C{True} if the answer ends with it.
    @raise OSError: if it says the question failed, or is malformed.
    """
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind = _HEADER.unpack_from(data, offset)[:2]
        if kind == _NLMSG_DONE or kind == _NLMSG_ERROR:
            # Either may carry an error number (a dump that failed: no
            # tcp_diag module, for one).
            error = 0
            if length >= _HEADER.size + 4 and len(data) >= offset + _HEADER.size + 4:
                (error,) = struct.unpack_from("=i", data, offset + _HEADER.size)
            if error:
                raise OSError(-error, "sock_diag could not answer")
            if kind == _NLMSG_DONE:
                return True
            raise OSError("sock_diag answered an acknowledgement")
        if length < _HEADER.size + _MESSAGE.size or offset + length > len(data):
            raise OSError("sock_diag answered something unexpected")
        fields = _MESSAGE.unpack_from(data, offset + _HEADER.size)
        state, retransmits, port, address = fields[1], fields[3], fields[4], fields[6]
        if state == _TCP_SYN_RECV:
            found.append((retransmits, socket.ntohs(port), address))
        offset += (length + 3) & ~3
    return False


def freshHandshakes(host: IPv4Address | IPv6Address) -> int | None:
    """
    How many fresh handshakes (see the module's docstring) to C{host}'s
    port, and to its address unless that is a wildcard, the kernel is
    answering; C{None} where it cannot be asked (not Linux, or no
    C{sock_diag}).
    """
    address = ipaddress.ip_address(host.host.partition("%")[0])
    # The handshakes of an IPv6 socket, IPv4 ones to a dual-stack socket
    # too (as ::ffff:a.b.c.d), are of its own family.
    family = socket.AF_INET6 if isinstance(host, IPv6Address) else socket.AF_INET
    try:
        found = _ask(family)
    except (OSError, AttributeError):
        return None
    count = 0
    for retransmits, port, local in found:
        if retransmits or port != host.port:
            continue
        if not address.is_unspecified and local[: len(address.packed)] != (
            address.packed
        ):
            continue
        count += 1
    return count


__all__ = ["freshHandshakes"]
