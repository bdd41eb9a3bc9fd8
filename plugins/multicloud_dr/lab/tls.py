"""The lab's TLS: a private CA of its own and one server certificate (127.0.0.1, ::1, localhost) that every
lab database serves, under `.lab/tls/`. The lab's connections name the CA and verify the server with it.

`ensure()` makes what is missing, expiring within a week, or not signed by the current CA, and reuses
the rest, so `drctl lab up` twice is safe. The keys are mode 0600; the CA's key never leaves the folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 397
RENEW_BEFORE = dt.timedelta(days=7)
SERVER_NAMES = ("localhost",)
SERVER_ADDRESSES = ("127.0.0.1", "::1")


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load(cert: Path, key: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The certificate and its key, if both exist, match and are valid for at least RENEW_BEFORE."""
    try:
        certificate = x509.load_pem_x509_certificate(cert.read_bytes())
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    now = dt.datetime.now(dt.UTC)
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.public_key() != certificate.public_key():
        return None
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc - RENEW_BEFORE:
        return None
    return certificate, private


@dataclass(frozen=True)
class LabTls:
    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca-key.pem"

    @property
    def cert(self) -> Path:
        return self.dir / "server.pem"

    @property
    def key(self) -> Path:
        return self.dir / "server-key.pem"

    def fingerprint(self) -> str:
        """SHA-256 of the server certificate: what a running server must have been started with."""
        return hashlib.sha256(self.cert.read_bytes()).hexdigest()

    def ensure(self) -> bool:
        """Make the CA and the server certificate unless valid ones exist; True if the server's changed."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)  # the CA certificate is public; the keys are 0600
        ca = _load(self.ca, self.ca_key)
        if ca is None:
            ca = self._make_ca()
        server = _load(self.cert, self.key)
        if server is not None:
            try:
                server[0].verify_directly_issued_by(ca[0])
                return False
            except (ValueError, TypeError, InvalidSignature):
                pass
        self._make_server(*ca)
        return True

    def _make_ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "multicloud-dr lab"),
                          x509.NameAttribute(NameOID.COMMON_NAME, f"multicloud-dr lab CA {self.dir}"[:64])])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                             crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        _write(self.ca_key, _key_pem(key), 0o600)
        _write(self.ca, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return cert, key

    def _make_server(self, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        names = [x509.DNSName(n) for n in SERVER_NAMES] + [x509.IPAddress(ipaddress.ip_address(a))
                                                           for a in SERVER_ADDRESSES]
        ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "multicloud-dr lab"),
                                         x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
                .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                             crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
                .sign(ca_key, hashes.SHA256()))
        _write(self.key, _key_pem(key), 0o600)
        _write(self.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
