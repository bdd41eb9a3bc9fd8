"""A `mysql` connection's client settings, TLS included: for pymysql, and for the command-line clients
(mysqldump, mysql) as the [client] section of their option file.

The TLS extras are spelled as Airflow's MySQL provider spells them: `ssl`, a dict (or, as a URI query
must give it, a JSON string of one) with `ca`, `capath`, `cert`, `key`, `cipher`; and `ssl_mode`, one of
DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY. PyMySQL's flat keys are read too (`ssl_ca`,
`ssl_capath`, `ssl_cert`, `ssl_key`, `ssl_cipher`, `ssl_verify_cert`, `ssl_verify_identity`,
`ssl_disabled`). A CA means verification: the server's certificate must chain to it and name the host
connected to, unless `ssl_mode` (or `ssl_verify_identity`/`ssl_verify_cert` false) asks for less.
Without any of these the drivers' default applies: TLS when the server offers it, nothing verified.

The MariaDB clients have no "check the CA only": for them VERIFY_CA is `ssl-verify-server-cert`,
which checks the host name as well. Oracle's MySQL 8 clients get `ssl-mode` instead (option_file_lines).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import pymysql

from multicloud_dr.connections import Endpoint, json_object
from multicloud_dr.exceptions import ConfigError, TlsError

DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY = (
    "DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")
MODES = (DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY)
_FILES = ("ca", "capath", "cert", "key", "cipher")
_SSL_KEYS = (*_FILES, "check_hostname", "verify_mode")
# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH and X509_V_ERR_CERT_HAS_EXPIRED.
_NAME_MISMATCH = (62, 64)
_EXPIRED = 10
_CR_SSL_CONNECTION_ERROR = 2026  # pymysql: TLS asked for, the server offers none
_ACCESS_DENIED = 1045


def _flag(value: Any, where: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on", "required"):
        return True
    if text in ("0", "false", "no", "off", "none"):
        return False
    raise ConfigError(f"{where} is {value!r}: give true or false")


@dataclass(frozen=True)
class MySqlTls:
    """The TLS a connection asks for: `mode` (one of MODES) and the files it names."""

    mode: str
    ca: str | None = None
    capath: str | None = None
    cert: str | None = None
    key: str | None = None
    cipher: str | None = None

    @property
    def verifies(self) -> bool:
        return self.mode in (VERIFY_CA, VERIFY_IDENTITY)

    @classmethod
    def from_extra(cls, extra: dict[str, Any], where: str) -> MySqlTls:
        raw = extra.get("ssl")
        asked = raw is True  # {"ssl": true}: TLS, nothing named
        if isinstance(raw, str):
            raw = json_object(raw, f"{where}: extra ssl", ConfigError) if raw.strip() else {}
        elif raw is None or isinstance(raw, bool):
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: extra ssl is a {type(raw).__name__}: give an object, "
                              f'e.g. {{"ssl": {{"ca": "/path/to/ca.pem"}}}}')
        unknown = sorted(set(raw) - set(_SSL_KEYS))
        if unknown:
            raise ConfigError(f"{where}: extra ssl has {', '.join(unknown)}, which this client does not use: "
                              f"give only {', '.join(_SSL_KEYS)}")
        files = {name: raw.get(name) or extra.get(f"ssl_{name}") or None for name in _FILES}
        for name, value in files.items():
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{where}: extra ssl.{name} is a {type(value).__name__}: give a path")
        if files["key"] and not files["cert"]:
            raise ConfigError(f"{where}: extra ssl.key is set without ssl.cert: give the client certificate too")
        identity = _flag(raw.get("check_hostname"), f"{where}: extra ssl.check_hostname")
        if identity is None:
            identity = _flag(extra.get("ssl_verify_identity"), f"{where}: extra ssl_verify_identity")
        verify = _flag(raw.get("verify_mode"), f"{where}: extra ssl.verify_mode")
        if verify is None:
            verify = _flag(extra.get("ssl_verify_cert"), f"{where}: extra ssl_verify_cert")
        mode = extra.get("ssl_mode")
        if mode:
            mode = str(mode).strip().upper()
            if mode not in MODES:
                raise ConfigError(f"{where}: extra ssl_mode is {extra['ssl_mode']!r}: give one of {', '.join(MODES)}")
        elif _flag(extra.get("ssl_disabled"), f"{where}: extra ssl_disabled"):
            mode = DISABLED
        elif files["ca"] or files["capath"] or identity or verify:
            # A CA (or asking for verification against the system's CAs) verifies, host name included,
            # unless told to check less.
            mode = REQUIRED if verify is False else VERIFY_CA if identity is False else VERIFY_IDENTITY
        elif asked or raw or any(files.values()):
            mode = REQUIRED
        else:
            mode = PREFERRED
        return cls(mode, **files)


def _option_value(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MySqlConnection:
    """`MySqlConnection(endpoint)`: how pymysql and the MySQL command-line clients reach its server."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.tls = MySqlTls.from_extra(endpoint.extra, endpoint.describe())

    def ssl_context(self) -> ssl.SSLContext:
        """The client's TLS context for modes REQUIRED and stricter."""
        tls, where = self.tls, self.endpoint.describe()
        try:
            ctx = ssl.create_default_context(cafile=tls.ca, capath=tls.capath)
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"{where}: the CA in extra ssl.ca/capath ({tls.ca or tls.capath}) cannot be read "
                              f"({getattr(err, 'strerror', None) or err}): give a PEM file this process can read"
                              ) from None
        # MySQL's own auto-generated certificates are not strict X.509 (pymysql relaxes this too).
        ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if tls.mode != VERIFY_IDENTITY:
            ctx.check_hostname = False
        if not tls.verifies:
            ctx.verify_mode = ssl.CERT_NONE
        try:
            if tls.cert:
                ctx.load_cert_chain(tls.cert, keyfile=tls.key)
            if tls.cipher:
                ctx.set_ciphers(tls.cipher)
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"{where}: the client certificate, key or cipher in extra ssl cannot be used "
                              f"({getattr(err, 'strerror', None) or err}): check ssl.cert, ssl.key and ssl.cipher"
                              ) from None
        return ctx

    def connect_kwargs(self) -> dict[str, Any]:
        """host, port, user, password and TLS for `pymysql.connect` (the caller adds database, timeouts, ...)."""
        ep = self.endpoint
        kwargs: dict[str, Any] = {"host": ep.host or "127.0.0.1", "port": ep.port or 3306, "user": ep.login,
                                  "password": ep.password or ""}
        if self.tls.mode == DISABLED:
            kwargs["ssl_disabled"] = True
        elif self.tls.mode != PREFERRED:
            kwargs["ssl"] = self.ssl_context()
        return kwargs

    def connect(self, factory=pymysql.connect, **kwargs) -> pymysql.connections.Connection:
        """`factory(**connect_kwargs() | kwargs)`; a TLS failure becomes one TlsError line saying what to fix,
        any other error is the driver's."""
        try:
            return factory(**(self.connect_kwargs() | kwargs))
        except pymysql.err.OperationalError as err:
            message = self.tls_failure(err)
            if message:
                raise TlsError(message) from None
            raise

    def tls_failure(self, err: pymysql.err.OperationalError) -> str | None:
        """What to fix, when `err` (from connecting) is about TLS; None otherwise."""
        where, tls = self.endpoint.describe(), self.tls
        cause = getattr(err, "original_exception", None)
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = getattr(cause, "verify_message", None) or str(cause)
            verify_code = getattr(cause, "verify_code", None)
            if verify_code in _NAME_MISMATCH:
                return (f"TLS certificate of {where} does not name host {self.endpoint.host} ({reason}): connect by "
                        f"a name the certificate lists, or set extra ssl_mode VERIFY_CA to check the CA only")
            if verify_code == _EXPIRED:
                return f"TLS certificate of {where} has expired: renew the server's certificate"
            trusted_by = f"CA {tls.ca or tls.capath}" if tls.ca or tls.capath else "the system's CAs"
            return (f"TLS certificate of {where} not trusted by {trusted_by} ({reason}): set extra.ssl.ca to the CA "
                    f"that signed the server's certificate")
        if isinstance(cause, ssl.SSLError):
            return (f"TLS handshake with {where} failed ({cause.reason or cause}): check the connection's extra ssl "
                    f"(cert, key, cipher) against the server's TLS settings")
        code = err.args[0] if err.args else None
        text = str(err.args[-1]) if err.args else ""
        if code == _CR_SSL_CONNECTION_ERROR:
            return (f"{where} does not offer TLS but the connection asks for it (ssl_mode {tls.mode}): enable TLS on "
                    f"the server (ssl_cert, ssl_key), or set extra ssl_mode PREFERRED")
        example = '{"ssl": {"ca": "/path/to/ca.pem"}}'
        if "insecure transport" in text.lower():  # MySQL's require_secure_transport
            return f"the server {where} requires TLS: set the connection's extra ssl, e.g. {example}"
        if code == _ACCESS_DENIED and tls.mode == DISABLED:
            # MariaDB's require_secure_transport (and a user's REQUIRE SSL) answer plaintext like a wrong password.
            return (f"the server {where} denied access over plaintext (extra ssl_mode DISABLED), as a server that "
                    f"requires TLS does: remove ssl_mode DISABLED and set extra ssl, e.g. {example} (if it does not "
                    f"require TLS, check the login and password)")
        return None

    def option_file_lines(self, client: str = "mariadb") -> list[str]:
        """The [client] section for mysqldump/mysql/mariadb-binlog: server, account and TLS. Holds the password:
        write it only to a 0600 file or a memfd.

        `client` is whose tools read it: "mariadb" (Debian's and the image's mysqldump; the lab's) or "mysql"
        (Oracle's 8.x clients). Both read ssl-ca/ssl-cert/ssl-key, but they spell the mode differently and
        each refuses the other's spelling as an unknown option: MariaDB `ssl`, `skip-ssl` and
        `ssl-verify-server-cert`; MySQL `ssl-mode=...` (which can check the CA alone)."""
        ep, tls = self.endpoint, self.tls
        lines = ["[client]", f"host={ep.host or '127.0.0.1'}", f"port={ep.port or 3306}", "protocol=TCP"]
        if ep.login:
            lines.append(f"user={_option_value(ep.login)}")
        if ep.password:
            lines.append(f"password={_option_value(ep.password)}")
        if client == "mysql":
            if tls.mode != PREFERRED:
                lines.append(f"ssl-mode={tls.mode}")
        elif tls.mode == DISABLED:
            lines.append("skip-ssl")
        elif tls.mode != PREFERRED:
            lines.append("ssl")
        if tls.mode not in (DISABLED, PREFERRED):
            lines += [f"ssl-{name}={_option_value(getattr(tls, name))}" for name in _FILES if getattr(tls, name)]
            if tls.verifies and client != "mysql":
                lines.append("ssl-verify-server-cert")
        return lines


def session_tls(conn: pymysql.connections.Connection) -> str:
    """The TLS of this session as the server sees it ("TLSv1.3 TLS_AES_256_GCM_SHA384"), or "off"."""
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute("SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')")
        status = dict(cur.fetchall())
    if not status.get("Ssl_cipher"):
        return "off"
    return f"{status.get('Ssl_version') or '?'} {status['Ssl_cipher']}"

