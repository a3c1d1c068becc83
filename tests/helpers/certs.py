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
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "twsgi tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _issue(
    subject: str, issuerName: x509.Name, issuerKey: object, ca: bool = False
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
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
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    signer = issuerKey if issuerKey is not None else key
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


def makeCertificates(directory: str) -> str:
    """
    Write C{ca}, C{server}, C{client} (signed by C{ca}) and C{stranger}
    (signed by another CA), each as C{NAME.pem} and C{NAME.key}, into
    C{directory}; return it.
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
        cert, key = _issue(name, issuer.subject, issuerKey)
        _write(directory, name, cert, key)
    return directory
