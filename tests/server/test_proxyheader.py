"""
Tests for L{twsgi.server.proxyheader}: the PROXY protocol header parser.
"""

from __future__ import annotations

import socket
import struct
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twsgi.server.proxyheader import (
    V1_MAX,
    V2_MAX,
    V2_SIGNATURE,
    InetAddress,
    ProxyHeader,
    ProxyHeaderError,
    ProxyHeaderParser,
)


def v1(source: InetAddress, destination: InetAddress) -> bytes:
    """
    A version 1 header naming these addresses.
    """
    family = b"TCP4" if source.version == 4 else b"TCP6"
    return b"PROXY %s %s %s %d %d\r\n" % (
        family,
        source.host.encode(),
        destination.host.encode(),
        source.port,
        destination.port,
    )


def v2(
    source: InetAddress | bytes | None,
    destination: InetAddress | bytes | None,
    tlvs: bytes = b"",
    command: int = 0x1,
) -> bytes:
    """
    A version 2 header naming these addresses (C{bytes}: UNIX socket paths;
    C{None}: an UNSPEC one), followed by C{tlvs}.
    """
    if isinstance(source, bytes) and isinstance(destination, bytes):
        family = 0x31
        block = struct.pack("!108s108s", source, destination)
    elif isinstance(source, InetAddress) and isinstance(destination, InetAddress):
        version = source.version
        transport = 0x1 if source.transport == "TCP" else 0x2
        family = (0x10 if version == 4 else 0x20) | transport
        kind = socket.AF_INET if version == 4 else socket.AF_INET6
        block = (
            socket.inet_pton(kind, source.host)
            + socket.inet_pton(kind, destination.host)
            + struct.pack("!HH", source.port, destination.port)
        )
    else:
        family = 0x00
        block = b""
    body = block + tlvs
    return (
        V2_SIGNATURE
        + bytes([0x20 | command, family])
        + struct.pack("!H", len(body))
        + body
    )


def parseAll(data: bytes, *cuts: int) -> tuple[ProxyHeader, bytes] | None:
    """
    Feed C{data} to a new parser in pieces cut at C{cuts}; the first result
    that is not C{None}, with any later bytes appended to its rest.
    """
    parser = ProxyHeaderParser()
    bounds = [0, *sorted(cuts), len(data)]
    result = None
    for start, end in pairwise(bounds):
        piece = data[start:end]
        if result is None:
            result = parser.feed(piece)
        else:
            result = (result[0], result[1] + piece)
    return result


ports = st.integers(0, 65535)
ipv4 = st.builds(
    lambda host, port: InetAddress("TCP", 4, str(host), port),
    st.ip_addresses(v=4),
    ports,
)
ipv6 = st.builds(
    lambda host, port: InetAddress("TCP", 6, str(host), port),
    # IPv4-mapped ones are written apart (test_canonical).
    st.ip_addresses(v=6).filter(lambda host: host.ipv4_mapped is None),
    ports,
)
inetPairs = st.one_of(st.tuples(ipv4, ipv4), st.tuples(ipv6, ipv6))
tlvs = st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=4).map(
    lambda items: b"".join(struct.pack("!BH", t, len(v)) + v for t, v in items)
)


class ParserTests(SynchronousTestCase):
    """
    L{ProxyHeaderParser} reads both versions, split anywhere, and refuses
    everything else with L{ProxyHeaderError}.
    """

    @settings(
        max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(inetPairs, st.binary(max_size=30), st.data())
    def test_v1RoundTrip(
        self,
        pair: tuple[InetAddress, InetAddress],
        rest: bytes,
        data: st.DataObject,
    ) -> None:
        """
        A version 1 header of any TCP4 or TCP6 addresses gives them back,
        with the bytes after it, however the bytes are split.
        """
        header = v1(*pair)
        whole = header + rest
        cuts = data.draw(st.lists(st.integers(0, len(whole)), max_size=3))
        self.assertEqual(
            parseAll(whole, *cuts), (ProxyHeader(1, *pair, len(header)), rest)
        )

    @settings(
        max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(inetPairs, tlvs, st.binary(max_size=30), st.data())
    def test_v2RoundTrip(
        self,
        pair: tuple[InetAddress, InetAddress],
        extra: bytes,
        rest: bytes,
        data: st.DataObject,
    ) -> None:
        """
        A version 2 PROXY header of TCP4 or TCP6 addresses gives them back,
        its TLVs skipped, however the bytes are split.
        """
        header = v2(*pair, tlvs=extra)
        whole = header + rest
        cuts = data.draw(st.lists(st.integers(0, len(whole)), max_size=3))
        self.assertEqual(
            parseAll(whole, *cuts), (ProxyHeader(2, *pair, len(header)), rest)
        )

    @settings(
        max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(st.binary(max_size=300), st.data())
    def test_junk(self, junk: bytes, data: st.DataObject) -> None:
        """
        Random bytes, also after the start of a header, raise nothing but
        L{ProxyHeaderError}: they are refused, read as a header, or waited
        on.
        """
        prefix = data.draw(
            st.sampled_from([b"", b"PROXY ", b"PROXY TCP4 ", V2_SIGNATURE])
        )
        cuts = data.draw(st.lists(st.integers(0, len(prefix + junk)), max_size=3))
        try:
            parseAll(prefix + junk, *cuts)
        except ProxyHeaderError:
            pass

    def test_v1Unknown(self) -> None:
        """
        C{PROXY UNKNOWN}, bare or with addresses after it, names no
        addresses.
        """
        for line in (b"PROXY UNKNOWN\r\n", b"PROXY UNKNOWN ::1 ::1 1 2\r\n"):
            self.assertEqual(
                parseAll(line + b"GET"), (ProxyHeader(1, None, None, len(line)), b"GET")
            )

    def test_v1NotAnAddress(self) -> None:
        """
        A version 1 address that is no IP address is not believed; the
        other one stands, in canonical form.
        """
        header, _ = parseAll(b"PROXY TCP6 2001:DB8:0::9 999.1.1.1 40000 80\r\n")
        self.assertEqual(header.source, InetAddress("TCP", 6, "2001:db8::9", 40000))
        self.assertIsNone(header.destination)

    def test_v1WrongFamily(self) -> None:
        """
        A version 1 address that is not of the header's family (C{TCP4}:
        IPv4, C{TCP6}: IPv6), or not in the specification's form (leading
        zeroes, an IPv6 zone), is not believed.
        """
        for line in (
            b"PROXY TCP4 2001:db8::9 5.6.7.8 40000 80\r\n",
            b"PROXY TCP4 ::ffff:1.2.3.4 5.6.7.8 40000 80\r\n",
            b"PROXY TCP6 1.2.3.4 2001:db8::1 40000 80\r\n",
            b"PROXY TCP4 01.2.3.4 5.6.7.8 40000 80\r\n",
            b"PROXY TCP6 fe80::1%eth0 2001:db8::1 40000 80\r\n",
        ):
            header, _ = parseAll(line)
            self.assertIsNone(header.source, line)
            self.assertIsNotNone(header.destination, line)

    def test_v1Malformed(self) -> None:
        """
        Version 1 lines that are not a header are refused: bad ports (also
        with a leading zero), a field missing or added, an unknown family, a
        bare LF.
        """
        for line in (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 x 80\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 80\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 80\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 040000 80\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\nGET / HTTP/1.1\r\n",
            b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY\r\n",
        ):
            self.assertRaises(ProxyHeaderError, parseAll, line)

    def test_v1Bound(self) -> None:
        """
        A version 1 header without its CRLF in the first 107 bytes is
        refused as soon as those have arrived.
        """
        parser = ProxyHeaderParser()
        self.assertIsNone(parser.feed(b"PROXY UNKNOWN " + b"x" * (V1_MAX - 15)))
        self.assertRaises(ProxyHeaderError, parser.feed, b"x")
        line = b"PROXY UNKNOWN " + b"x" * (V1_MAX - 16) + b"\r\n"
        self.assertEqual(len(line), V1_MAX)
        self.assertIsNotNone(parseAll(line))

    def test_notAHeader(self) -> None:
        """
        Bytes that start no header are refused at the first byte that
        tells: a plain HTTP request at once.
        """
        self.assertRaises(ProxyHeaderError, ProxyHeaderParser().feed, b"G")
        parser = ProxyHeaderParser()
        self.assertIsNone(parser.feed(b"\r\n\r\n"))
        self.assertRaises(ProxyHeaderError, parser.feed, b"GET")

    def test_tlsFirst(self) -> None:
        """
        A TLS handshake where the header should be (a load balancer that
        sends none) is refused with an error that says so.
        """
        error = self.assertRaises(
            ProxyHeaderError, ProxyHeaderParser().feed, b"\x16\x03\x01\x02\x00\x01"
        )
        self.assertIn("a TLS handshake came first", str(error))

    def test_v2Local(self) -> None:
        """
        A version 2 LOCAL header (a health check) or an UNSPEC one names no
        addresses, whatever its body.
        """
        address = InetAddress("TCP", 4, "1.2.3.4", 5)
        for header in (v2(address, address, command=0x0), v2(None, None, b"abc")):
            self.assertEqual(
                parseAll(header), (ProxyHeader(2, None, None, len(header)), b"")
            )

    def test_v2Unix(self) -> None:
        """
        A version 2 header of UNIX socket paths names no IP address, so no
        addresses; one too short for its paths is refused.
        """
        header = v2(b"/run/client", b"/run/server", b"tlv")
        self.assertEqual(
            parseAll(header + b"GET"), (ProxyHeader(2, None, None, len(header)), b"GET")
        )
        short = header[:14] + struct.pack("!H", 215) + header[16:231]
        self.assertRaises(ProxyHeaderError, ProxyHeaderParser().feed, short)

    def test_v2Datagram(self) -> None:
        """
        A version 2 header for a datagram connection names UDP addresses.
        """
        address = InetAddress("UDP", 6, "::1", 5)
        header = v2(address, address)
        self.assertEqual(parseAll(header)[0].source, address)

    def test_v2Malformed(self) -> None:
        """
        Version 2 headers with an unknown version, command, family or
        protocol, or too short for their addresses, are refused as soon as
        their fixed part has arrived.
        """
        address = InetAddress("TCP", 4, "1.2.3.4", 5)
        good = v2(address, address)
        for at, value in ((12, 0x31), (12, 0x22), (13, 0x41), (13, 0x13)):
            bad = good[:at] + bytes([value]) + good[at + 1 :]
            self.assertRaises(ProxyHeaderError, ProxyHeaderParser().feed, bad[:16])
        short = good[:14] + struct.pack("!H", 11) + good[16:27]
        self.assertRaises(ProxyHeaderError, ProxyHeaderParser().feed, short)

    def test_v2Bound(self) -> None:
        """
        A version 2 header longer than L{V2_MAX} is refused at its length.
        """
        address = InetAddress("TCP", 4, "1.2.3.4", 5)
        fits = v2(address, address, b"\x00" * (V2_MAX - 16 - 12))
        self.assertEqual(len(fits), V2_MAX)
        self.assertIsNotNone(parseAll(fits))
        tooLong = v2(address, address, b"\x00" * (V2_MAX - 16 - 11))
        self.assertRaises(ProxyHeaderError, ProxyHeaderParser().feed, tooLong[:16])

    def test_canonical(self) -> None:
        """
        Addresses are written in the form RFC 5952 recommends, an
        IPv4-mapped one (HAProxy's for an IPv4 client of a dual-stack
        C{bind :::443 v4v6}) in dotted decimal as the kernel, HAProxy and
        nginx write it, not C{::ffff:102:304} as C{ipaddress} before Python
        3.13 does.
        """
        pair = (
            InetAddress("TCP", 6, "2001:db8::9", 1),
            InetAddress("TCP", 6, "::ffff:1.2.3.4", 2),
        )
        self.assertEqual(parseAll(v2(*pair))[0], ProxyHeader(2, *pair, 52))
        line = b"PROXY TCP6 2001:DB8:0::9 ::FFFF:0102:0304 1 2\r\n"
        self.assertEqual(parseAll(line)[0], ProxyHeader(1, *pair, len(line)))
