# -*- test-case-name: tests.server.test_tls -*-
"""
TLS listeners: building their endpoints with clear startup errors, client
certificates (mTLS), and what the environ says about the client certificate.

Twisted's C{ssl:} endpoint already refuses anything below TLS 1.2 (the
default minimum of L{twisted.internet.ssl.CertificateOptions}).  A listener
option C{;client-ca=ca.pem} after the endpoint string makes it require a
client certificate signed by that CA.
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL, crypto
from twisted.internet import ssl
from twisted.internet.endpoints import _parse, serverFromString
from twisted.internet.error import CertificateError, VerifyError
from twisted.internet.interfaces import ISSLTransport
from twisted.python.filepath import FilePath

from twsgi.server.endpoints import (
    checkPort,
    endpointType,
    givesOption,
    unwrapped,
    withBacklog,
)
from twsgi.server.proxyprotocol import strictProxyEndpoint

_BAD = (OSError, SSL.Error, crypto.Error, VerifyError, CertificateError)

UNIX_MODE = "660"
"""
The default permissions of a C{unix:} listener's socket: the owner and its
group may connect, nobody else.
"""


def speaksTLS(description: str) -> bool:
    """
    Whether an endpoint string (also behind C{haproxy:}) is a TLS one:
    C{ssl:} or C{tls:}.
    """
    return unwrapped(description).startswith(("ssl:", "tls:"))


def defaultUnixMode(description: str) -> str:
    """
    Give a C{unix:} endpoint string (also behind C{haproxy:}) the mode
    L{UNIX_MODE} unless it names one.
    """
    if endpointType(description) == "unix" and not givesOption(description, "mode", 1):
        return f"{description}:mode={UNIX_MODE}"
    return description


def _dn(name: Any) -> tuple[tuple[str, bytes], ...]:
    return tuple(sorted(name.items()))


def _subjectText(certificate: Any) -> str:
    return str(certificate.original.to_cryptography().subject.rfc4514_string())


def checkTLSDirectory(description: str) -> None:
    """
    Check the directory of PEM files of a C{tls:} endpoint string (Twisted's
    SNI endpoint, C{tls:DIR:port=443}) the way L{buildEndpoint} checks an
    C{ssl:} one's files: Twisted itself accepts a missing or empty
    directory and then fails every handshake, and loops forever on a root
    CA (a certificate that issued itself) kept beside the chain.  Other
    endpoint strings are left alone.  Called at startup, in the I/O thread.

    @raise ValueError: with one line naming the problem.
    """
    inner = unwrapped(description)
    if not inner.startswith("tls:"):
        return
    try:
        from twisted.protocols._sni import PEMObjects
    except ImportError:  # pragma: no cover (a Twisted without tls:)
        return
    args, kwargs = _parse(inner)
    given = kwargs.get("path", args[1] if len(args) > 1 else "")
    directory = FilePath(given)
    if not directory.isdir():
        raise ValueError(f"tls:{given} is not a directory of PEM files")
    try:
        objects = PEMObjects.fromDirectory(directory)
    except _BAD as e:
        raise ValueError(f"tls:{given}: {_oneLine(e)}")
    # Twisted chains each certificate that has its key in the directory
    # through the others, by issuer; a root CA (one that issued itself) on
    # such a chain never ends it.
    keyed = {pair.keyHash() for _, pair in objects._keyPairs}
    bySubject = {}
    leaves = []
    for path, certificate in objects._certificates:
        if certificate.getPublicKey().keyHash() in keyed:
            leaves.append(certificate)
        else:
            bySubject[_dn(certificate.getSubject())] = (path, certificate)
    for certificate in leaves:
        seen = set()
        while (issuer := _dn(certificate.getIssuer())) in bySubject:
            path, certificate = bySubject[issuer]
            if issuer in seen:
                raise ValueError(
                    f"tls:{given}: {path.basename()} holds the root CA "
                    f"{_subjectText(certificate)} (it issued itself), which "
                    f"Twisted's tls: endpoint cannot chain; remove it "
                    f"(clients have their own roots)"
                )
            seen.add(issuer)
    if not objects.inferDomainMapping():
        raise ValueError(
            f"tls:{given}: no certificate with its private key and a DNS "
            f"subjectAltName in any .pem file"
        )


def _oneLine(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        name = error.filename if error.filename is not None else ""
        return f"cannot read {name}: {error.strerror}".replace("cannot read : ", "")
    if isinstance(error, (SSL.Error, crypto.Error)):
        reasons = [
            str(part[-1])
            for part in (
                error.args[0] if error.args and isinstance(error.args[0], list) else []
            )
            if isinstance(part, tuple)
        ]
        return "bad certificate or key: " + ("; ".join(reasons) or str(error))
    return f"bad certificate or key: {error}"


def requireClientCertificates(endpoint: Any, caPath: str) -> None:
    """
    Make a TLS endpoint require a client certificate signed by the CA in
    C{caPath} (PEM).

    @raise ValueError: if the endpoint is not an C{ssl:} one, or the CA
        cannot be read.
    """
    options = getattr(endpoint, "_sslContextFactory", None)
    if not isinstance(options, ssl.CertificateOptions):
        raise ValueError("client-ca= needs an ssl: endpoint")
    try:
        authority = ssl.Certificate.loadPEM(FilePath(caPath).getContent())
    except _BAD as e:
        raise ValueError(f"client-ca={caPath}: {_oneLine(e)}")
    endpoint._sslContextFactory = _rebuild(
        options,
        verify=True,
        caCerts=[authority.original],
        requireCertificate=True,
    )


def _rebuild(options: Any, **changes: Any) -> Any:
    """
    A copy of C{options} (a L{ssl.CertificateOptions}) with C{changes}.
    """
    keep = {
        "privateKey": options.privateKey,
        "certificate": options.certificate,
        "extraCertChain": options.extraCertChain,
        "dhParameters": options.dhParameters,
        "verify": options.verify,
        "caCerts": options.caCerts,
        "requireCertificate": options.requireCertificate,
        "acceptableProtocols": getattr(options, "_acceptableProtocols", None),
    }
    keep.update(changes)
    return ssl.CertificateOptions(**keep)


def buildEndpoint(reactor: Any, description: str, clientCA: str | None = None) -> Any:
    """
    Build a server endpoint from its string, with the listen backlog
    L{twsgi.server.endpoints.DEFAULT_BACKLOG} unless it names one, and check its port
    and a TLS one's certificate and key at once, so that a port out of
    range, a missing file or a key that does not match its certificate is
    one line at startup, not an error when it listens or on the first
    connection.

    @raise ValueError: with that line.
    """
    checkPort(description)
    checkTLSDirectory(description)
    try:
        endpoint = serverFromString(reactor, withBacklog(defaultUnixMode(description)))
    except _BAD as e:
        raise ValueError(_oneLine(e))
    strictProxyEndpoint(endpoint)
    if clientCA is not None:
        requireClientCertificates(endpoint, clientCA)
    options = getattr(endpoint, "_sslContextFactory", None)
    if options is not None and hasattr(options, "getContext"):
        try:
            options.getContext()
        except _BAD as e:
            raise ValueError(_oneLine(e))
    return endpoint


def clientCertificateEnviron(transport: Any) -> dict[str, str]:
    """
    The C{SSL_CLIENT_*} environ entries (as Apache's mod_ssl names them,
    with RFC 4514 distinguished names) for a connection; empty for one
    without TLS.  Called in the I/O thread.
    """
    # providedBy, not adaptation: adapting a plain TCP transport walks the
    # adapter hooks on every request only to find nothing.
    if transport is None or not ISSLTransport.providedBy(transport):
        return {}
    try:
        certificate = transport.getPeerCertificate()
    except Exception:
        certificate = None
    if certificate is None:
        return {"SSL_CLIENT_VERIFY": "NONE"}
    parsed = certificate.to_cryptography()
    return {
        "SSL_CLIENT_S_DN": parsed.subject.rfc4514_string(),
        "SSL_CLIENT_I_DN": parsed.issuer.rfc4514_string(),
        # Only a verified certificate gets this far: the handshake fails
        # otherwise, as the listener requires one signed by its CA.
        "SSL_CLIENT_VERIFY": "SUCCESS",
    }


__all__ = [
    "UNIX_MODE",
    "buildEndpoint",
    "checkTLSDirectory",
    "clientCertificateEnviron",
    "defaultUnixMode",
    "requireClientCertificates",
    "speaksTLS",
]
