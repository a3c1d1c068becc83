"""
Certificates the TLS tests generate: a CA, a server certificate for
localhost, a client certificate signed by the CA, and one signed by another
CA.
"""

from __future__ import annotations

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "twsgi tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _issue(
    subject: str,
    issuerName: x509.Name,
    issuerKey: object,
    ca: bool = False,
    withRSA: bool = False,
    dnsNames: tuple[str, ...] = ("localhost",),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey]:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if withRSA:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuerName)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    signer = issuerKey if issuerKey is not None else key
    # The extensions a strict (RFC 5280) verifier wants, such as sslyze's.
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    ).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(
            signer.public_key()  # type: ignore[attr-defined]
        ),
        critical=False,
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dnsNames]),
            critical=False,
        ).add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    return builder.sign(signer, hashes.SHA256()), key  # type: ignore[arg-type]


def _write(directory: str, name: str, cert: x509.Certificate, key: object) -> None:
    with open(os.path.join(directory, name + ".pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(directory, name + ".key"), "wb") as f:
        f.write(
            key.private_bytes(  # type: ignore[attr-defined]
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def makeCertificates(directory: str, withRSA: bool = False) -> str:
    """
    Write C{ca}, C{server}, C{client} (signed by C{ca}) and C{stranger}
    (signed by another CA), each as C{NAME.pem} and C{NAME.key}, into
    C{directory}; return it.  Every key is an ECDSA P-256 one, but the
    server's is a 2048-bit RSA one with C{withRSA}.
    """
    os.makedirs(directory, exist_ok=True)
    ca, caKey = _issue("twsgi test CA", _name("twsgi test CA"), None, ca=True)
    other, otherKey = _issue("other CA", _name("other CA"), None, ca=True)
    _write(directory, "ca", ca, caKey)
    for name, issuer, issuerKey in [
        ("server", ca, caKey),
        ("client", ca, caKey),
        ("stranger", other, otherKey),
    ]:
        cert, key = _issue(
            name, issuer.subject, issuerKey, withRSA=withRSA and name == "server"
        )
        _write(directory, name, cert, key)
    return directory


def makeServerCertificate(
    directory: str, name: str, dnsNames: tuple[str, ...], withRSA: bool = False
) -> None:
    """
    Write C{NAME.pem} and C{NAME.key} into a directory that
    L{makeCertificates} filled: a server certificate for C{dnsNames}, signed
    by its C{ca}.
    """
    with open(os.path.join(directory, "ca.pem"), "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(directory, "ca.key"), "rb") as f:
        caKey = serialization.load_pem_private_key(f.read(), None)
    cert, key = _issue(name, ca.subject, caKey, withRSA=withRSA, dnsNames=dnsNames)
    _write(directory, name, cert, key)


def makeIntermediateCertificate(directory: str, name: str) -> None:
    """
    Write C{NAME.key}, C{NAME.pem} (a server certificate for localhost,
    signed by an intermediate CA that its C{ca} signed) and
    C{NAME-fullchain.pem} (that certificate, then the intermediate one, as
    certbot writes C{fullchain.pem}) into a directory that
    L{makeCertificates} filled.
    """
    with open(os.path.join(directory, "ca.pem"), "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(directory, "ca.key"), "rb") as f:
        caKey = serialization.load_pem_private_key(f.read(), None)
    intermediate, intermediateKey = _issue(
        "twsgi intermediate CA", ca.subject, caKey, ca=True
    )
    cert, key = _issue(name, intermediate.subject, intermediateKey)
    _write(directory, name, cert, key)
    with open(os.path.join(directory, name + "-fullchain.pem"), "wb") as f:
        for each in (cert, intermediate):
            f.write(each.public_bytes(serialization.Encoding.PEM))


def makeTLSDirectory(
    certs: str,
    directory: str,
    files: tuple[tuple[str, str], ...] = (("localhost.pem", "server"),),
) -> str:
    """
    Make a directory for a C{tls:} listener: each of C{files} a file name
    and the name of a certificate in C{certs} (see L{makeCertificates}),
    written as that certificate's key followed by the certificate.  Return
    the directory.
    """
    os.makedirs(directory)
    for file, name in files:
        with open(os.path.join(directory, file), "wb") as pem:
            for part in (name + ".key", name + ".pem"):
                with open(os.path.join(certs, part), "rb") as f:
                    pem.write(f.read())
    return directory
