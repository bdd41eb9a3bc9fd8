"""The TLS extras of a `mysql` connection: what pymysql and the option file of mysqldump/mysql get.

The certificates are the lab's own kind (tests/unit/test_lab_tls.py), made in a temporary folder; the
handshakes run over a local socket pair, so no server is needed."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from pathlib import Path

import pymysql
import pytest

from multicloud_dr.connections import Endpoint, parse_uri
from multicloud_dr.connections.mysql import MySqlConnection
from multicloud_dr.exceptions import ConfigError, InputError, TlsError
from multicloud_dr.lab.tls import LabTls


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> tuple[LabTls, LabTls]:
    """(the server's CA and certificate, another CA that did not sign it)."""
    lab, other = LabTls(tmp_path_factory.mktemp("tls")), LabTls(tmp_path_factory.mktemp("other"))
    lab.ensure()
    other.ensure()
    return lab, other


def mysql(extra: dict, host: str = "127.0.0.1") -> MySqlConnection:
    return MySqlConnection(Endpoint("mysql", host, 3306, "dr_admin", "s3cret", extra=extra))


def handshake(ctx: ssl.SSLContext, server: LabTls, host: str = "127.0.0.1") -> None:
    """A TLS handshake of `ctx` (as client, to `host`) with a server presenting `server`'s certificate."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(server.cert, server.key)
    left, right = socket.socketpair()

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(right, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with ctx.wrap_socket(left, server_hostname=host) as tls:
            tls.sendall(b"x")
    finally:
        left.close()
        thread.join(5)


def test_ssl_as_a_dict_verifies_the_certificate_and_the_host(certs):
    lab, other = certs
    conn = mysql({"ssl": {"ca": str(lab.ca)}})
    kwargs = conn.connect_kwargs()
    ctx = kwargs["ssl"]
    assert (kwargs["host"], kwargs["port"], kwargs["user"], kwargs["password"]) == ("127.0.0.1", 3306, "dr_admin",
                                                                                     "s3cret")
    assert conn.tls.mode == "VERIFY_IDENTITY"
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    handshake(ctx, lab)                                  # signed by the CA, names 127.0.0.1
    handshake(mysql({"ssl": {"ca": str(lab.ca)}}, "localhost").connect_kwargs()["ssl"], lab, "localhost")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(mysql({"ssl": {"ca": str(other.ca)}}).connect_kwargs()["ssl"], lab)
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        handshake(ctx, lab, "10.9.8.7")                   # not a name the certificate lists


def test_ssl_as_a_json_string_in_a_uri_is_the_same(certs):
    lab, _ = certs
    uri = ("mysql://u:p@127.0.0.1:23308/db?ssl=" + json.dumps({"ca": str(lab.ca), "cert": "/c.pem", "key": "/k.pem"})
           + "&ssl_mode=VERIFY_IDENTITY")
    tls = MySqlConnection(parse_uri(uri)).tls
    assert (tls.mode, tls.ca, tls.cert, tls.key) == ("VERIFY_IDENTITY", str(lab.ca), "/c.pem", "/k.pem")
    as_text = MySqlConnection(Endpoint("mysql", "h", extra={"ssl": json.dumps({"ca": str(lab.ca)})})).tls
    assert (as_text.mode, as_text.ca) == ("VERIFY_IDENTITY", str(lab.ca))


@pytest.mark.parametrize(("extra", "mode"), [
    ({}, "PREFERRED"),
    ({"ssl_ca": "/ca.pem"}, "VERIFY_IDENTITY"),                                  # pymysql's flat keys
    ({"ssl_ca": "/ca.pem", "ssl_verify_identity": "false"}, "VERIFY_CA"),
    ({"ssl": {"ca": "/ca.pem", "check_hostname": False}}, "VERIFY_CA"),
    ({"ssl": {"ca": "/ca.pem"}, "ssl_verify_cert": False}, "REQUIRED"),
    ({"ssl": {"ca": "/ca.pem"}, "ssl_mode": "verify_ca"}, "VERIFY_CA"),          # the provider's ssl_mode
    ({"ssl": {"ca": "/ca.pem"}, "ssl_mode": "DISABLED"}, "DISABLED"),
    ({"ssl_disabled": "true"}, "DISABLED"),
    ({"ssl": {"cipher": "ECDHE-ECDSA-AES256-GCM-SHA384"}}, "REQUIRED"),
    ({"ssl": True}, "REQUIRED"),
    ({"ssl_verify_identity": True}, "VERIFY_IDENTITY"),                          # the system's CAs
])
def test_mode_from_the_extras(extra, mode):
    assert mysql(extra).tls.mode == mode


def test_required_encrypts_without_verifying_and_disabled_and_preferred_ask_for_nothing(certs):
    lab, other = certs
    ctx = mysql({"ssl": {"ca": str(other.ca)}, "ssl_mode": "REQUIRED"}).connect_kwargs()["ssl"]
    assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname
    handshake(ctx, lab)                                   # any certificate: nothing is verified
    verify_ca = mysql({"ssl": {"ca": str(lab.ca)}, "ssl_mode": "VERIFY_CA"}).connect_kwargs()["ssl"]
    handshake(verify_ca, lab, "10.9.8.7")                 # the CA checked, not the name
    disabled = mysql({"ssl_mode": "DISABLED"}).connect_kwargs()
    assert disabled["ssl_disabled"] is True and "ssl" not in disabled
    assert "ssl" not in mysql({}).connect_kwargs() and "ssl_disabled" not in mysql({}).connect_kwargs()


@pytest.mark.parametrize(("extra", "says"), [
    ({"ssl": "{not json"}, "extra ssl is not valid JSON"),
    ({"ssl": "[1]"}, "not an object"),
    ({"ssl": {"ca": "/ca.pem", "crl": "/crl.pem"}}, "crl, which this client does not use"),
    ({"ssl": {"key": "/k.pem"}}, "without ssl.cert"),
    ({"ssl_mode": "ALWAYS"}, "give one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY"),
    ({"ssl_verify_cert": "maybe"}, "give true or false"),
    ({"ssl": {"ca": 42}}, "give a path"),
])
def test_bad_extras_are_one_line_config_errors(extra, says):
    with pytest.raises(ConfigError) as err:
        mysql(extra)
    assert says in str(err.value) and "\n" not in str(err.value) and "mysql://dr_admin@127.0.0.1:3306" in str(err.value)
    assert err.value.exit_code == 2


def test_an_unreadable_ca_says_which_file(tmp_path):
    with pytest.raises(ConfigError, match=f"{tmp_path}/missing.pem.*cannot be read"):
        mysql({"ssl": {"ca": str(tmp_path / "missing.pem")}}).connect_kwargs()


def test_option_file_lines_carry_the_tls_settings(certs):
    lab, _ = certs
    files = {"ca": str(lab.ca), "cert": "/etc/client cert.pem", "key": '/etc/"k".pem'}
    lines = mysql({"ssl": files}).option_file_lines()
    assert lines[:4] == ["[client]", "host=127.0.0.1", "port=3306", "protocol=TCP"]
    assert 'user="dr_admin"' in lines and 'password="s3cret"' in lines
    assert lines[-5:] == ["ssl", f'ssl-ca="{lab.ca}"', 'ssl-cert="/etc/client cert.pem"', 'ssl-key="/etc/\\"k\\".pem"',
                          "ssl-verify-server-cert"]
    # MariaDB's clients cannot check the CA alone: VERIFY_CA verifies the host name too, never less.
    assert "ssl-verify-server-cert" in mysql({"ssl": {"ca": "/ca.pem"}, "ssl_mode": "VERIFY_CA"}).option_file_lines()
    required = mysql({"ssl": {"ca": "/ca.pem"}, "ssl_mode": "REQUIRED"}).option_file_lines()
    assert "ssl" in required and "ssl-verify-server-cert" not in required
    assert mysql({"ssl_mode": "DISABLED"}).option_file_lines()[-1] == "skip-ssl"
    assert not any(line.startswith(("ssl", "skip-ssl")) for line in mysql({}).option_file_lines())


def test_option_file_lines_for_oracle_mysql_clients_spell_the_mode_as_they_read_it():
    """Oracle's MySQL 8 clients refuse MariaDB's `ssl`/`ssl-verify-server-cert` as unknown options (and MariaDB's
    refuse `ssl-mode`): each gets its own spelling, and VERIFY_CA stays a CA-only check for MySQL's."""
    lines = mysql({"ssl": {"ca": "/ca.pem"}}).option_file_lines("mysql")
    assert lines[-2:] == ["ssl-mode=VERIFY_IDENTITY", 'ssl-ca="/ca.pem"']
    assert not {"ssl", "ssl-verify-server-cert", "skip-ssl"} & set(lines)
    ca_only = mysql({"ssl": {"ca": "/ca.pem"}, "ssl_mode": "VERIFY_CA"}).option_file_lines("mysql")
    assert "ssl-mode=VERIFY_CA" in ca_only
    assert mysql({"ssl_mode": "DISABLED"}).option_file_lines("mysql")[-1] == "ssl-mode=DISABLED"
    assert not any(line.startswith("ssl") for line in mysql({}).option_file_lines("mysql"))
    assert not any(line.startswith("ssl-mode") for line in mysql({"ssl": {"ca": "/ca.pem"}}).option_file_lines())


def _failure(exc: BaseException) -> pymysql.err.OperationalError:
    """The error pymysql raises when the TLS handshake fails (it wraps the OSError)."""
    err = pymysql.err.OperationalError(2003, f"Can't connect to MySQL server on '127.0.0.1' ({exc})")
    err.original_exception = exc
    return err


def _handshake_error(ctx: ssl.SSLContext, server: LabTls, host: str = "127.0.0.1") -> ssl.SSLError:
    with pytest.raises(ssl.SSLError) as err:
        handshake(ctx, server, host)
    return err.value


def test_tls_failures_become_one_line_that_says_what_to_fix(certs):
    lab, other = certs
    wrong = mysql({"ssl": {"ca": str(other.ca)}})
    line = wrong.tls_failure(_failure(_handshake_error(wrong.connect_kwargs()["ssl"], lab)))
    assert line.startswith(f"TLS certificate of mysql://dr_admin@127.0.0.1:3306 not trusted by CA {other.ca}")
    assert line.endswith("set extra.ssl.ca to the CA that signed the server's certificate") and "\n" not in line
    right = mysql({"ssl": {"ca": str(lab.ca)}}, host="10.9.8.7")
    line = right.tls_failure(_failure(_handshake_error(right.connect_kwargs()["ssl"], lab, "10.9.8.7")))
    assert "does not name host 10.9.8.7" in line and "VERIFY_CA" in line
    assert "does not offer TLS" in right.tls_failure(
        pymysql.err.OperationalError(2026, "SSL is required but the server doesn't support it"))
    assert "requires TLS" in mysql({}).tls_failure(pymysql.err.OperationalError(
        3159, "Connections using insecure transport are prohibited while --require_secure_transport=ON."))
    denied = pymysql.err.OperationalError(1045, "Access denied for user 'dr_admin'@'127.0.0.1' (using password: YES)")
    assert "remove ssl_mode DISABLED" in mysql({"ssl_mode": "DISABLED"}).tls_failure(denied)
    assert mysql({"ssl": {"ca": str(lab.ca)}}).tls_failure(denied) is None   # a wrong password stays one
    assert mysql({}).tls_failure(pymysql.err.OperationalError(2003, "Connection refused")) is None


def test_connect_raises_the_line_as_a_tls_error(certs):
    _, other = certs
    wrong = mysql({"ssl": {"ca": str(other.ca)}})
    failure = _failure(ssl.SSLCertVerificationError(1, "certificate verify failed"))

    def refused(**kwargs):
        assert isinstance(kwargs["ssl"], ssl.SSLContext) and kwargs["database"] == "petclinic"
        raise failure

    with pytest.raises(TlsError, match="not trusted by CA") as err:
        wrong.connect(refused, database="petclinic")
    assert isinstance(err.value, InputError) and "s3cret" not in str(err.value)


def test_the_password_is_never_in_an_error(tmp_path: Path):
    with pytest.raises(ConfigError) as err:
        mysql({"ssl": {"ca": str(tmp_path / "none.pem")}}).connect_kwargs()
    assert "s3cret" not in str(err.value)
