"""The TLS extras of a `postgres` connection: what psycopg2 (libpq) gets."""

from __future__ import annotations

import pytest

from multicloud_dr.connections import Endpoint, parse_uri
from multicloud_dr.connections.postgres import PostgresConnection
from multicloud_dr.exceptions import ConfigError


def pg(extra: dict) -> PostgresConnection:
    return PostgresConnection(Endpoint("postgres", "127.0.0.1", 5432, "dr_admin", "s3cret", "petclinic", extra))


def test_a_root_certificate_alone_means_verify_full():
    kwargs = pg({"sslrootcert": "/lab/ca.pem"}).connect_kwargs()
    assert kwargs == {"host": "127.0.0.1", "port": 5432, "user": "dr_admin", "password": "s3cret",
                      "dbname": "petclinic", "sslmode": "verify-full", "sslrootcert": "/lab/ca.pem"}


def test_libpq_parameters_from_a_uri_pass_through():
    ep = parse_uri("postgres://u:p@db:5433/app?sslmode=verify-ca&sslrootcert=%2Fca.pem&sslcert=%2Fc.pem"
                   "&sslkey=%2Fk.pem&sslcrl=%2Fcrl.pem&application_name=ignored")
    kwargs = PostgresConnection(ep).connect_kwargs()
    assert {k: kwargs[k] for k in ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl")} == {
        "sslmode": "verify-ca", "sslrootcert": "/ca.pem", "sslcert": "/c.pem", "sslkey": "/k.pem", "sslcrl": "/crl.pem"}
    assert "application_name" not in kwargs and kwargs["dbname"] == "app"


def test_no_extras_leave_libpq_its_default():
    assert not any(k.startswith("ssl") for k in pg({}).connect_kwargs())
    assert pg({"sslmode": "disable"}).connect_kwargs()["sslmode"] == "disable"


@pytest.mark.parametrize(("extra", "says"), [
    ({"sslmode": "verify_full"}, "give one of disable, allow, prefer, require, verify-ca, verify-full"),
    ({"sslkey": "/k.pem"}, "without sslcert"),
])
def test_bad_extras_are_one_line_config_errors(extra, says):
    with pytest.raises(ConfigError) as err:
        pg(extra)
    assert says in str(err.value) and "\n" not in str(err.value) and "s3cret" not in str(err.value)


# libpq 17's messages, as psycopg2 gives them (first lines).
@pytest.mark.parametrize(("message", "says"), [
    ('connection to server at "127.0.0.1", port 25432 failed: SSL error: certificate verify failed\n',
     "TLS certificate of postgres://dr_admin@127.0.0.1:5432 not trusted by CA /other/ca.pem: set extra sslrootcert "
     "to the CA that signed the server's certificate"),
    ('connection to server at "127.0.0.1", port 25432 failed: server certificate for "localhost" (and 2 other names) '
     'does not match host name "127.0.0.1"\n', "does not name host 127.0.0.1"),
    ('connection to server at "127.0.0.1", port 25432 failed: root certificate file "/other/ca.pem" does not exist\n'
     "Either provide the file, use the system's trusted roots with sslrootcert=system, or change sslmode to disable "
     "server certificate verification.\n", "the CA in extra sslrootcert (/other/ca.pem) cannot be read"),
    ('connection to server at "127.0.0.1", port 25432 failed: server does not support SSL, but SSL was required\n',
     "does not offer TLS"),
    ('connection to server at "127.0.0.1", port 25432 failed: FATAL:  no pg_hba.conf entry for host "127.0.0.1", '
     'user "dr_admin", database "petclinic", no encryption\n', "requires TLS: set the connection's extra sslmode"),
])
def test_tls_failures_become_one_line_that_says_what_to_fix(message, says):
    line = pg({"sslrootcert": "/other/ca.pem"}).tls_failure(message)
    assert line is not None and says in line and "\n" not in line


def test_other_failures_are_left_to_the_caller():
    assert pg({}).tls_failure('connection to server at "127.0.0.1", port 9 failed: Connection refused') is None
    assert pg({}).tls_failure('FATAL:  password authentication failed for user "dr_admin"') is None
