"""The lab's CA and server certificate: made once, reused, remade when missing, expiring or re-signed."""

from __future__ import annotations

import ipaddress

from cryptography import x509

from multicloud_dr.lab import tls as lab_tls
from multicloud_dr.lab.tls import LabTls


def _cert(tls: LabTls) -> x509.Certificate:
    return x509.load_pem_x509_certificate(tls.cert.read_bytes())


def test_made_with_private_keys_and_names_for_loopback(tmp_path):
    tls = LabTls(tmp_path / "tls")
    assert tls.ensure() is True
    for key in (tls.ca_key, tls.key):
        assert key.stat().st_mode & 0o777 == 0o600, f"{key.name} must be private"
    cert = _cert(tls)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(tls.ca.read_bytes()))


def test_up_twice_reuses_them(tmp_path):
    tls = LabTls(tmp_path / "tls")
    tls.ensure()
    before = {p.name: p.read_bytes() for p in (tls.ca, tls.ca_key, tls.cert, tls.key)}
    assert tls.ensure() is False
    assert {p.name: p.read_bytes() for p in (tls.ca, tls.ca_key, tls.cert, tls.key)} == before


def test_a_missing_or_expiring_server_certificate_is_remade_by_the_same_ca(tmp_path, monkeypatch):
    tls = LabTls(tmp_path / "tls")
    tls.ensure()
    ca, first = tls.ca.read_bytes(), tls.fingerprint()
    tls.key.unlink()
    assert tls.ensure() is True and tls.fingerprint() != first and tls.ca.read_bytes() == ca
    second = tls.fingerprint()
    monkeypatch.setattr(lab_tls, "RENEW_BEFORE", lab_tls.dt.timedelta(days=lab_tls.SERVER_DAYS + 1))  # "expiring"
    assert tls.ensure() is True and tls.fingerprint() != second


def test_a_new_ca_re_signs_the_server_certificate(tmp_path):
    tls = LabTls(tmp_path / "tls")
    tls.ensure()
    tls.ca.unlink()
    assert tls.ensure() is True
    _cert(tls).verify_directly_issued_by(x509.load_pem_x509_certificate(tls.ca.read_bytes()))
