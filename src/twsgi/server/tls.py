# -*- test-case-name: tests.server.test_tls -*-
"""
TLS listeners: the options of an C{ssl:} listener built once from its files
(with clear startup errors), the startup check of a C{tls:} listener's
directory, client certificates (mTLS), and what the environ says about the
client certificate.

An C{ssl:} listener refuses anything below TLS 1.2 (the default minimum of
L{twisted.internet.ssl.CertificateOptions}).  A listener option
C{;client-ca=ca.pem} after the endpoint string makes it require a client
certificate signed by that CA.
"""

from __future__ import annotations

import re
from typing import Any

from attrs import frozen
from cryptography import x509
from OpenSSL import SSL, crypto
from twisted.internet import ssl
from twisted.internet.error import CertificateError, VerifyError
from twisted.internet.interfaces import ISSLTransport
from twisted.python.filepath import FilePath

from twsgi.server.endpoints import endpointType, givesOption, parameters, unwrapped

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


def _pemBlocks(path: FilePath[str]) -> tuple[list[bytes], list[bytes]]:
    """
    The certificates and the keys of a PEM file, each block as its text
    (as Twisted's C{tls:} endpoint reads them).
    """
    certificates: list[bytes] = []
    keys: list[bytes] = []
    blocks = [b""]
    with path.open() as lines:
        for line in lines:
            if line.startswith(b"-----BEGIN"):
                blocks = certificates if b"CERTIFICATE" in line else keys
                blocks.append(b"")
            blocks[-1] += line
    return certificates, keys


def _dnsNames(certificate: ssl.Certificate) -> list[str]:
    """
    The DNS names of a certificate's subjectAltName extension.
    """
    parsed = certificate.original.to_cryptography()
    try:
        names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(names.value.get_values_for_type(x509.DNSName))


def checkTLSDirectory(description: str) -> None:
    """
    Check the directory of PEM files of a C{tls:} endpoint string (Twisted's
    SNI endpoint, C{tls:DIR:port=443}) the way L{sslListen} checks an
    C{ssl:} one's files: Twisted itself accepts a missing or empty
    directory and then fails every handshake, and loops forever on a root
    CA (a certificate that issued itself) kept beside the chain.  The files
    are read as Twisted reads them: every C{.pem} file below the directory,
    each a list of certificates and keys.  Other endpoint strings are left
    alone.  Called at startup, in the I/O thread.

    @raise ValueError: with one line naming the problem.
    """
    inner = unwrapped(description)
    if not inner.startswith("tls:"):
        return
    args, kwargs = parameters(inner)
    given = kwargs.get("path", args[1] if len(args) > 1 else "")
    directory = FilePath(given)
    if not directory.isdir():
        raise ValueError(f"tls:{given} is not a directory of PEM files")
    certificates: list[tuple[FilePath[str], ssl.Certificate]] = []
    keyed: set[str] = set()
    try:
        for path in directory.walk():
            if not (path.basename().endswith(".pem") and path.isfile()):
                continue
            certificateBlocks, keyBlocks = _pemBlocks(path)
            certificates.extend(
                (path, ssl.Certificate.loadPEM(block)) for block in certificateBlocks
            )
            keyed.update(
                ssl.KeyPair.load(block, crypto.FILETYPE_PEM).keyHash()
                for block in keyBlocks
            )
    except _BAD as e:
        raise ValueError(f"tls:{given}: {_oneLine(e)}")
    # Twisted chains each certificate that has its key in the directory
    # through the others, by issuer; a root CA (one that issued itself) on
    # such a chain never ends it.
    bySubject = {}
    leaves = []
    for path, certificate in certificates:
        if certificate.getPublicKey().keyHash() in keyed:
            leaves.append(certificate)
        else:
            bySubject[_dn(certificate.getSubject())] = (path, certificate)
    for leaf in leaves:
        seen = set()
        chained = leaf
        while (issuer := _dn(chained.getIssuer())) in bySubject:
            path, chained = bySubject[issuer]
            if issuer in seen:
                raise ValueError(
                    f"tls:{given}: {path.basename()} holds the root CA "
                    f"{_subjectText(chained)} (it issued itself), which "
                    f"Twisted's tls: endpoint cannot chain; remove it "
                    f"(clients have their own roots)"
                )
            seen.add(issuer)
    if not any(_dnsNames(leaf) for leaf in leaves):
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


def filesError(error: BaseException) -> ValueError | None:
    """
    The one-line L{ValueError} for an error reading a certificate, a key or
    another TLS file; C{None} for any other error.
    """
    return ValueError(_oneLine(error)) if isinstance(error, _BAD) else None


@frozen
class SSLListen:
    """
    Where and how an C{ssl:} listener listens: a TCP port, and the TLS
    options of its connections.
    """

    port: int
    interface: str
    backlog: int
    options: ssl.CertificateOptions


_CERTIFICATE = re.compile(
    rb"(-----BEGIN CERTIFICATE-----\n.+?\n-----END CERTIFICATE-----)", re.DOTALL
)


def _sslListen(
    clientCA: str | None,
    /,
    port: str,
    privateKey: str = "server.pem",
    certKey: str | None = None,
    sslmethod: str | None = None,
    interface: str = "",
    backlog: str = "50",
    extraCertChain: str | None = None,
    dhParameters: str | None = None,
) -> SSLListen:
    """
    L{sslListen}, with the arguments of C{ssl:} named as Twisted names them
    (so that a misspelt one is refused in the same words).
    """
    method: dict[str, Any] = {}
    if sslmethod is not None:
        if not sslmethod.endswith("_METHOD") or not hasattr(SSL, sslmethod):
            raise ValueError(f"sslmethod={sslmethod} is no method of OpenSSL.SSL")
        method = {"method": getattr(SSL, sslmethod)}
    keyPEM = FilePath(privateKey).getContent()
    certificatePEM = FilePath(privateKey if certKey is None else certKey).getContent()
    certificate = ssl.PrivateCertificate.loadPEM(certificatePEM + b"\n" + keyPEM)
    chain = None
    if extraCertChain is not None:
        chain = [
            ssl.Certificate.loadPEM(block).original
            for block in _CERTIFICATE.findall(FilePath(extraCertChain).getContent())
        ]
        if not chain:
            raise ValueError(
                f"extraCertChain={extraCertChain} holds no certificate in PEM format"
            )
    verify: dict[str, Any] = {}
    if clientCA is not None:
        try:
            authority = ssl.Certificate.loadPEM(FilePath(clientCA).getContent())
        except _BAD as e:
            raise ValueError(f"client-ca={clientCA}: {_oneLine(e)}")
        verify = {
            "verify": True,
            "caCerts": [authority.original],
            "requireCertificate": True,
        }
    if dhParameters is not None:
        # OpenSSL reads it only for the context, and then names no file.
        FilePath(dhParameters).open().close()
    options = ssl.CertificateOptions(
        privateKey=certificate.privateKey.original,
        certificate=certificate.original,
        extraCertChain=chain,
        dhParameters=(
            None
            if dhParameters is None
            else ssl.DiffieHellmanParameters.fromFile(FilePath(dhParameters))
        ),
        **method,
        **verify,
    )
    # Build the context now: a key that does not match its certificate is
    # an error at startup, not on the first connection.
    options.getContext()
    return SSLListen(int(port), interface, int(backlog), options)


def sslListen(description: str, clientCA: str | None = None) -> SSLListen:
    """
    Read an C{ssl:} endpoint string (with the arguments of Twisted's C{ssl:}
    endpoint: C{ssl:PORT:privateKey=KEY:certKey=CERT}, C{sslmethod},
    C{interface}, C{backlog}, C{extraCertChain}, C{dhParameters}) and build
    its TLS options once, from its files, with the public loaders of
    L{twisted.internet.ssl}.  Twisted's default minimum, TLS 1.2, stands.
    ALPN is not set here: L{twisted.protocols.tls.TLSMemoryBIOFactory}
    takes it from the factory it wraps.

    @param clientCA: the PEM file of the CA that must have signed every
        client's certificate (C{client-ca=}), if any.
    @raise ValueError: naming a file that cannot be read or holds no valid
        certificate or key, in one line.
    @raise TypeError: for a missing or unknown argument, in Python's words.
    """
    args, kwargs = parameters(description)
    try:
        return _sslListen(clientCA, *args[1:], **kwargs)
    except _BAD as e:
        raise ValueError(_oneLine(e))


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
    "SSLListen",
    "checkTLSDirectory",
    "clientCertificateEnviron",
    "defaultUnixMode",
    "filesError",
    "speaksTLS",
    "sslListen",
]
