# -*- test-case-name: tests.server.test_tls -*-
"""
TLS listeners: the options of an C{ssl:} listener built once from its files,
and of a C{tls:} listener from its directory of PEM files, one certificate
for each server name (SNI), with clear startup errors; client certificates
(mTLS), and what the environ says about the client certificate.

Every TLS listener follows a L{TLSProfile}: by default Mozilla's
"intermediate" one (TLS 1.2 and 1.3; for TLS 1.2 only ECDHE and DHE key
exchange with AES-GCM or ChaCha20-Poly1305; the P-256 curve), or "modern"
(TLS 1.3 only), with the cipher list, the curve and the minimum version
settable per listener and globally.  It resumes sessions by session ID and
by ticket, with keys of its own process.  A listener option
C{;client-ca=ca.pem} after an C{ssl:} endpoint string makes it require a
client certificate signed by that CA.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from attrs import evolve, frozen
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL, crypto
from twisted.internet import ssl
from twisted.internet.error import CertificateError, VerifyError
from twisted.internet.interfaces import ISSLTransport
from twisted.logger import Logger
from twisted.python.filepath import FilePath

from twsgi.server.endpoints import endpointType, givesOption, parameters, unwrapped
from twsgi.server.negotiate import alpnProtocols
from twsgi.server.plainhttp import PlainHTTPRequest

_log = Logger(namespace="twsgi")

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


def _dn(name: ssl.DistinguishedName) -> tuple[tuple[str, bytes], ...]:
    return tuple(sorted(name.items()))


def _subjectText(certificate: ssl.Certificate) -> str:
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


@frozen
class _Named:
    """
    A certificate of a C{tls:} directory that has its key there: the names
    it serves, and the chain sent with it.
    """

    names: list[str]
    certificate: ssl.PrivateCertificate
    chain: list[crypto.X509]


def _relative(path: FilePath[str], directory: FilePath[str]) -> str:
    """
    The path of a file below a C{tls:} listener's directory, from there.
    """
    return "/".join(path.segmentsFrom(directory))


def _readDirectory(given: str) -> list[_Named]:
    """
    The certificates of a C{tls:} listener's directory that have their key
    in it and a DNS subjectAltName, in the order of their files' paths, each
    with its chain: the other certificates of the directory, followed by
    issuer.  The files are read as Twisted's C{tls:} endpoint reads them:
    every C{.pem} file below the directory, each a list of certificates and
    keys.

    A certificate with a DNS name but without its key there, and a key
    without its certificate, are each named in a warning: neither is used.

    @raise ValueError: with one line naming the problem: no directory, a
        file that cannot be read or parsed, a root CA (a certificate that
        issued itself) on a chain, or no certificate to serve.
    """
    if not given:
        # FilePath("") is the current directory, which is no choice.
        raise ValueError(
            "tls: names no directory of PEM files (write tls:DIR:port=443)"
        )
    directory = FilePath(given)
    if not directory.isdir():
        raise ValueError(f"tls:{given} is not a directory of PEM files")
    certificates: list[tuple[FilePath[str], ssl.Certificate]] = []
    keys: dict[str, tuple[FilePath[str], ssl.KeyPair]] = {}
    try:
        paths = sorted(directory.walk(), key=lambda each: each.path)
    except _BAD as e:
        raise ValueError(f"tls:{given}: {_oneLine(e)}")
    for path in paths:
        if not (path.basename().endswith(".pem") and path.isfile()):
            continue
        try:
            certificateBlocks, keyBlocks = _pemBlocks(path)
            certificates.extend(
                (path, ssl.Certificate.loadPEM(block)) for block in certificateBlocks
            )
            for block in keyBlocks:
                _refuseEncrypted(block, f"tls:{given}: {_relative(path, directory)}")
                key = ssl.KeyPair.load(block, crypto.FILETYPE_PEM)
                keys[key.keyHash()] = (path, key)
        except _BAD as e:
            raise ValueError(
                f"tls:{given}: {_relative(path, directory)}: {_oneLine(e)}"
            )
    bySubject: dict[
        tuple[tuple[str, bytes], ...], tuple[FilePath[str], ssl.Certificate]
    ] = {}
    leaves = []
    used = set()
    for path, certificate in certificates:
        keyHash = certificate.getPublicKey().keyHash()
        owned = keys.get(keyHash)
        if owned is not None:
            used.add(keyHash)
            leaves.append(
                ssl.PrivateCertificate.fromCertificateAndKeyPair(certificate, owned[1])
            )
        else:
            bySubject[_dn(certificate.getSubject())] = (path, certificate)
            names = _dnsNames(certificate)
            if names:
                _log.warn(
                    "tls:{given}: {file} holds the certificate of {names} "
                    "without its private key: not served",
                    given=given,
                    file=_relative(path, directory),
                    names=", ".join(names),
                )
    for keyHash, (path, _) in keys.items():
        if keyHash not in used:
            _log.warn(
                "tls:{given}: {file} holds a private key of no certificate "
                "there: not used",
                given=given,
                file=_relative(path, directory),
            )
    named = []
    for leaf in leaves:
        chain = []
        seen = set()
        chained: ssl.Certificate = leaf
        while (issuer := _dn(chained.getIssuer())) in bySubject:
            path, chained = bySubject[issuer]
            if issuer in seen:
                raise ValueError(
                    f"tls:{given}: {path.basename()} holds the root CA "
                    f"{_subjectText(chained)} (it issued itself); remove it "
                    f"(clients have their own roots)"
                )
            seen.add(issuer)
            chain.append(chained.original)
        names = [name.lower() for name in _dnsNames(leaf)]
        if names:
            named.append(_Named(names, leaf, chain))
    if not named:
        raise ValueError(
            f"tls:{given}: no certificate with its private key and a DNS "
            f"subjectAltName in any .pem file"
        )
    return named


def _oneLine(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        name = error.filename if error.filename is not None else ""
        return f"cannot read {name}: {error.strerror}".replace("cannot read : ", "")
    if isinstance(error, (SSL.Error, crypto.Error)):
        return "bad certificate or key: " + _reasons(error)
    return f"bad certificate or key: {error}"


def _reasons(error: SSL.Error | crypto.Error) -> str:
    """
    OpenSSL's reasons for an error, in its words (C{"http request"}).
    """
    reasons = [
        str(part[-1])
        for part in (
            error.args[0] if error.args and isinstance(error.args[0], list) else []
        )
        if isinstance(part, tuple)
    ]
    return "; ".join(reasons) or str(error)


def tlsFailure(error: SSL.Error | PlainHTTPRequest) -> str:
    """
    What went wrong on a TLS connection that ended, for the server log: a
    plain-HTTP request on a TLS port in words (twsgi's TLS layer or OpenSSL
    saw it), anything else (no protocol version or cipher in common, a
    client certificate refused, an alert from the client) as OpenSSL's
    reasons.
    """
    reasons = "" if isinstance(error, PlainHTTPRequest) else _reasons(error)
    if reasons in ("", "http request", "https proxy request"):
        return "a plain-HTTP request on a TLS port (the client must use https://)"
    return f"TLS error: {reasons}"


def filesError(error: BaseException) -> ValueError | None:
    """
    The one-line L{ValueError} for an error reading a certificate, a key or
    another TLS file; C{None} for any other error.
    """
    return ValueError(_oneLine(error)) if isinstance(error, _BAD) else None


INTERMEDIATE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"
    "DHE-RSA-CHACHA20-POLY1305"
)
"""
The TLS 1.2 ciphers of Mozilla's "intermediate" profile, as an OpenSSL
cipher list (TLS 1.3 has its own three, all of them in the profile).  The
DHE ones are offered only by a listener given C{dhParameters=}.
"""

CURVES: dict[str, ec.EllipticCurve | None] = {
    "prime256v1": ec.SECP256R1(),
    "P-256": ec.SECP256R1(),
    "secp384r1": ec.SECP384R1(),
    "P-384": ec.SECP384R1(),
    "openssl": None,
}
"""
The key-exchange curves a listener may be given.  pyOpenSSL's public API
sets one curve (L{OpenSSL.SSL.Context.set_tmp_ecdh}); C{openssl} leaves
OpenSSL's own list (X25519 first, but X448 and P-521 too, which Mozilla's
profiles leave out).
"""

MINIMUMS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
"""
The minimum TLS versions a listener may be given.
"""


@frozen
class TLSProfile:
    """
    What a TLS listener offers: its lowest TLS version, its TLS 1.2
    ciphers, its key-exchange curve, and whether it offers HTTP/2.

    @ivar minimum: a key of L{MINIMUMS}.
    @ivar ciphers: an OpenSSL cipher list, for TLS 1.2 (its words may be
        separated by C{:} or C{,}).
    @ivar curve: a key of L{CURVES}.
    @ivar http2: whether a client may choose HTTP/2 in ALPN, where it can
        be served (see L{twsgi.server.negotiate.alpnProtocols}).
    """

    minimum: str = "TLSv1.2"
    ciphers: str = INTERMEDIATE_CIPHERS
    curve: str = "prime256v1"
    http2: bool = True

    def given(
        self,
        profile: str | None = None,
        ciphers: str | None = None,
        curve: str | None = None,
        minimum: str | None = None,
    ) -> TLSProfile:
        """
        This profile, or the named one, with the given values instead of its
        own (and this one's C{http2}: C{--no-http2} holds for every listener).

        @raise ValueError: naming a value that is not one of the choices.
        """
        base = (
            self
            if profile is None
            else evolve(_choice("profile", profile, PROFILES), http2=self.http2)
        )
        if ciphers is not None:
            checkCiphers(ciphers)
            base = evolve(base, ciphers=ciphers)
        if curve is not None:
            _choice("curve", curve, CURVES)
            base = evolve(base, curve=curve)
        if minimum is not None:
            _choice("minimum", minimum, MINIMUMS)
            base = evolve(base, minimum=minimum)
        return base


PROFILES = {"intermediate": TLSProfile(), "modern": TLSProfile(minimum="TLSv1.3")}
"""
The profiles, named as Mozilla names them: C{intermediate} (the default)
and C{modern} (TLS 1.3 only).
"""


def _choice(name: str, value: str, choices: dict[str, Any]) -> Any:
    if value not in choices:
        raise ValueError(f"{name}={value} is not one of {', '.join(choices)}")
    return choices[value]


def checkCiphers(ciphers: str) -> str:
    """
    Check an OpenSSL cipher list: it must name at least one cipher that
    OpenSSL has.

    @raise ValueError: if it names none.
    """
    try:
        SSL.Context(SSL.TLS_METHOD).set_cipher_list(ciphers.encode("ascii"))
    except (SSL.Error, UnicodeEncodeError):
        raise ValueError(f"ciphers={ciphers} names no cipher that OpenSSL has")
    return ciphers


@frozen
class SSLListen:
    """
    Where and how a TLS listener listens: a TCP port, and the TLS
    options of its connections.
    """

    port: int
    interface: str
    backlog: int
    options: ssl.CertificateOptions


_CERTIFICATE = re.compile(
    rb"(-----BEGIN CERTIFICATE-----\r?\n.+?\n-----END CERTIFICATE-----)", re.DOTALL
)
# Only where a block begins: OpenSSL reads a file of CRLF lines too.
_CERTIFICATE_BEGINS = re.compile(rb"-----BEGIN [A-Z0-9 ]*CERTIFICATE-----")
_PRIVATE_KEY_BEGINS = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
# "-----BEGIN DH PARAMETERS-----", or "X9.42 DH PARAMETERS".
_DH_PARAMETERS_BEGIN = re.compile(rb"-----BEGIN [A-Z0-9. ]*DH PARAMETERS-----")
# The methods of OpenSSL.SSL that a server speaking TLS 1.2 or 1.3 can use
# (the others are TLS 1.0 or 1.1 only, a client's, or DTLS).
_SERVER_METHODS = ("TLS_METHOD", "TLS_SERVER_METHOD", "SSLv23_METHOD", "TLSv1_2_METHOD")
# PKCS#8 and the older PEM encryption; OpenSSL would ask for the passphrase
# on the terminal, and then fail in a dozen words.
_ENCRYPTED_KEY = re.compile(
    rb"-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: *4, *ENCRYPTED"
)


def _refuseEncrypted(pem: bytes, where: str) -> None:
    """
    Refuse an encrypted private key in one line, before OpenSSL asks for its
    passphrase.

    @param pem: the text of a PEM file or block.
    @param where: what holds it, as the line names it.
    @raise ValueError: if C{pem} holds an encrypted private key.
    """
    if _ENCRYPTED_KEY.search(pem):
        raise ValueError(
            f"{where} holds an encrypted private key (twsgi asks for no "
            "passphrase): give it the key decrypted, readable by twsgi only "
            "(openssl pkey -in KEY -out KEY.decrypted)"
        )


def _sslListen(
    clientCA: str | None,
    defaults: TLSProfile,
    /,
    port: str,
    privateKey: str = "server.pem",
    certKey: str | None = None,
    sslmethod: str | None = None,
    interface: str = "",
    backlog: str = "50",
    extraCertChain: str | None = None,
    dhParameters: str | None = None,
    profile: str | None = None,
    ciphers: str | None = None,
    curve: str | None = None,
    minimum: str | None = None,
) -> SSLListen:
    """
    L{sslListen}, with the arguments of C{ssl:} named as Twisted names them
    (so that a misspelt one is refused in the same words).
    """
    tls = defaults.given(profile, ciphers, curve, minimum)
    method: dict[str, Any] = {}
    if sslmethod is not None:
        if not sslmethod.endswith("_METHOD") or not hasattr(SSL, sslmethod):
            raise ValueError(f"sslmethod={sslmethod} is no method of OpenSSL.SSL")
        if sslmethod not in _SERVER_METHODS:
            # A listener that would start, then fail every handshake.
            raise ValueError(
                f"sslmethod={sslmethod} cannot serve TLS 1.2 or 1.3 (the TLS "
                f"profile's versions): use one of {', '.join(_SERVER_METHODS)}, "
                "or leave it out"
            )
        if tls.minimum != "TLSv1.2":
            raise ValueError(
                f"sslmethod={sslmethod} cannot be given with minimum={tls.minimum}"
            )
        method = {"method": getattr(SSL, sslmethod)}
    keyPEM = FilePath(privateKey).getContent()
    certificatePEM = FilePath(privateKey if certKey is None else certKey).getContent()
    # Said in words here: OpenSSL's own reasons for a missing block are "no
    # start line" (the certificate) and "unsupported" (the key).
    if not _CERTIFICATE_BEGINS.search(certificatePEM + b"\n" + keyPEM):
        raise ValueError(
            f"certKey={certKey} holds no certificate in PEM format"
            if certKey is not None
            else f"privateKey={privateKey} holds no certificate in PEM format "
            "(give the certificate's file as certKey=)"
        )
    if not _PRIVATE_KEY_BEGINS.search(keyPEM + b"\n" + certificatePEM):
        raise ValueError(f"privateKey={privateKey} holds no private key in PEM format")
    _refuseEncrypted(keyPEM, f"privateKey={privateKey}")
    certificate = ssl.PrivateCertificate.loadPEM(certificatePEM + b"\n" + keyPEM)
    # The certificates after the first (certbot's fullchain.pem, as nginx
    # reads ssl_certificate) are its chain, before extraCertChain's.
    chain = _certificates(certificatePEM)[1:]
    if extraCertChain is not None:
        chain += _certificatesIn(f"extraCertChain={extraCertChain}", extraCertChain)
    verify: dict[str, Any] = {}
    if clientCA is not None:
        try:
            # Every CA of a bundle (two while one replaces the other).
            authorities = _certificatesIn(f"client-ca={clientCA}", clientCA)
        except _BAD as e:
            raise ValueError(f"client-ca={clientCA}: {_oneLine(e)}")
        verify = {
            "verify": True,
            "caCerts": authorities,
            "requireCertificate": True,
        }
    if dhParameters is not None:
        # OpenSSL reads it only for the context, and then names no file.
        if not _DH_PARAMETERS_BEGIN.search(FilePath(dhParameters).getContent()):
            raise ValueError(
                f"dhParameters={dhParameters} holds no Diffie-Hellman "
                "parameters in PEM format"
            )
    options = _certificateOptions(
        tls,
        certificate,
        chain or None,
        dhParameters=(
            None
            if dhParameters is None
            else ssl.DiffieHellmanParameters.fromFile(FilePath(dhParameters))
        ),
        **method,
        **verify,
    )
    return SSLListen(int(port), interface, int(backlog), options)


def _certificates(pem: bytes) -> list[crypto.X509]:
    """
    Every certificate of the PEM text C{pem}, in order.
    """
    return [
        ssl.Certificate.loadPEM(block).original for block in _CERTIFICATE.findall(pem)
    ]


def _certificatesIn(option: str, path: str) -> list[crypto.X509]:
    """
    Every certificate of a PEM file, in order.

    @param option: the listener's option that names the file, as an error
        names it.
    @raise ValueError: if the file holds no certificate.
    """
    certificates = _certificates(FilePath(path).getContent())
    if not certificates:
        raise ValueError(f"{option} holds no certificate in PEM format")
    return certificates


class NoProtocolInCommon(SSL.Error):
    """
    A TLS client offered in ALPN no protocol that its listener speaks: the
    handshake fails with the C{no_application_protocol} alert (RFC 7301
    3.2), as nginx's does, and the server log says what the client offered.
    """


def _offered(protocols: Sequence[bytes]) -> str:
    """
    The protocols a client offered, for a log line: escaped, each cut at 32
    bytes, the first 8 of them.
    """
    shown = ", ".join(repr(p[:32])[2:-1] for p in protocols[:8])
    return shown + (", ..." if len(protocols) > 8 else "")


def protocolSelector(
    ours: Sequence[bytes],
) -> Callable[[SSL.Connection, list[bytes]], bytes]:
    """
    The ALPN callback of a listener's contexts: the first of C{ours} that
    the client offered; none raises L{NoProtocolInCommon}, which fails the
    handshake with the C{no_application_protocol} alert.  (Twisted's own
    callback answers an empty protocol there, which OpenSSL turns into an
    C{internal_error} alert and the server log into "internal error".)
    """

    def select(connection: SSL.Connection, offered: list[bytes]) -> bytes:
        for protocol in ours:
            if protocol in offered:
                return protocol
        raise NoProtocolInCommon(
            [
                (
                    "ALPN",
                    "",
                    "no application protocol in common (the client offered "
                    f"{_offered(offered)}; this listener speaks {_offered(ours)})",
                )
            ]
        )

    return select


def _certificateOptions(
    tls: TLSProfile,
    certificate: ssl.PrivateCertificate,
    chain: list[crypto.X509] | None,
    **more: Any,
) -> ssl.CertificateOptions:
    """
    The TLS options of a certificate, following a profile, with more
    arguments of L{ssl.CertificateOptions}, and their context built.
    """
    options = ssl.CertificateOptions(
        privateKey=certificate.privateKey.original,
        certificate=certificate.original,
        extraCertChain=chain,
        acceptableCiphers=ssl.AcceptableCiphers.fromOpenSSLCipherString(tls.ciphers),
        # Resumption by session ID (TLS 1.2) and by ticket, with the
        # OpenSSL context's own ticket keys: see docs/security.rst.
        enableSessions=True,
        enableSessionTickets=True,
        **(
            {"raiseMinimumTo": MINIMUMS[tls.minimum]}
            if tls.minimum != "TLSv1.2"
            else {}
        ),
        **more,
    )
    # Build the context now: a key that does not match its certificate is
    # an error at startup, not on the first connection.  CertificateOptions
    # keeps it, and makes every connection from it.
    context = options.getContext()
    curveObject = CURVES[tls.curve]
    if curveObject is not None:
        context.set_tmp_ecdh(curveObject)
    # In place of the callback that getContext() set, which takes the
    # protocols from the factory a connection's TLS layer wraps.
    context.set_alpn_select_callback(protocolSelector(alpnProtocols(tls.http2)))
    return options


def _tlsListen(
    defaults: TLSProfile,
    /,
    path: str = "",
    port: str = "443",
    backlog: str = "50",
    interface: str = "::",
    profile: str | None = None,
    ciphers: str | None = None,
    curve: str | None = None,
    minimum: str | None = None,
) -> SSLListen:
    """
    L{tlsListen}, with the arguments of C{tls:} named as Twisted names them.
    """
    tls = defaults.given(profile, ciphers, curve, minimum)
    contexts: dict[str, SSL.Context] = {}

    def contextFor(name: bytes | None) -> SSL.Context | None:
        # None keeps the connection on the first certificate's context.
        if not name:
            return None
        # A fully qualified name's trailing dot (RFC 6066 leaves it out, but
        # some clients send it) names the same host.
        text = name.decode("ascii", "replace").lower().removesuffix(".")
        found = contexts.get(text)
        if found is None and "." in text:
            found = contexts.get("*." + text.split(".", 1)[1])
        return found

    everyOptions = []
    for named in _readDirectory(path):
        options = _certificateOptions(
            tls, named.certificate, named.chain, contextForServerName=contextFor
        )
        everyOptions.append(options)
        for name in named.names:
            contexts.setdefault(name, options.getContext())
    return SSLListen(int(port), interface, int(backlog), everyOptions[0])


def sslListen(
    description: str,
    clientCA: str | None = None,
    defaults: TLSProfile = PROFILES["intermediate"],
) -> SSLListen:
    """
    Read an C{ssl:} endpoint string (with the arguments of Twisted's C{ssl:}
    endpoint: C{ssl:PORT:privateKey=KEY:certKey=CERT}, C{sslmethod},
    C{interface}, C{backlog}, C{extraCertChain}, C{dhParameters}; and
    twsgi's C{profile}, C{ciphers}, C{curve} and C{minimum}, see
    L{TLSProfile.given}) and build its TLS options once, from its files,
    with the public loaders of L{twisted.internet.ssl}, and the ALPN
    protocols of the profile (see L{protocolSelector}).

    @param clientCA: the PEM file of the CA that must have signed every
        client's certificate (C{client-ca=}), if any.
    @param defaults: the profile of the listener where its endpoint string
        names none (the C{--tls-*} settings).
    @raise ValueError: naming a file that cannot be read or holds no valid
        certificate or key, in one line.
    @raise TypeError: for a missing or unknown argument, in Python's words.
    """
    args, kwargs = parameters(description)
    try:
        return _sslListen(clientCA, defaults, *args[1:], **kwargs)
    except _BAD as e:
        raise ValueError(_oneLine(e))


def tlsListen(
    description: str, defaults: TLSProfile = PROFILES["intermediate"]
) -> SSLListen:
    """
    Read a C{tls:} endpoint string (Twisted's SNI endpoint: a directory of
    PEM files, C{tls:DIR:port=443}, with its C{backlog} and C{interface},
    C{::} by default; and twsgi's C{profile}, C{ciphers}, C{curve} and
    C{minimum}, see L{TLSProfile.given}) and build the TLS options of its
    certificates once, each with the profile of L{sslListen}.  A client's
    server name (SNI) picks the certificate with that DNS subjectAltName
    (or a wildcard C{*.} one); a client that sends none, or a name no
    certificate has, gets the first certificate, in the order of its
    file's path.  Called at startup, in the I/O thread.

    @param defaults: see L{sslListen}.
    @raise ValueError: naming a directory or a file that cannot be used, or
        a bad value, in one line.
    @raise TypeError: for an unknown argument, in Python's words.
    """
    args, kwargs = parameters(unwrapped(description))
    try:
        return _tlsListen(defaults, *args[1:], **kwargs)
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
    "CURVES",
    "INTERMEDIATE_CIPHERS",
    "MINIMUMS",
    "NoProtocolInCommon",
    "PROFILES",
    "UNIX_MODE",
    "SSLListen",
    "TLSProfile",
    "checkCiphers",
    "clientCertificateEnviron",
    "defaultUnixMode",
    "filesError",
    "protocolSelector",
    "speaksTLS",
    "sslListen",
    "tlsFailure",
    "tlsListen",
]
