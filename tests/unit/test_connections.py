from __future__ import annotations

import json

import pytest

from multicloud_dr.connections import get_endpoint, parse_connection_value, parse_uri
from multicloud_dr.exceptions import ConnectionNotFoundError


def test_mysql_uri_with_escaped_password():
    ep = parse_uri("mysql://dr_admin:p%40ss%2Fw0rd@127.0.0.1:13306/petclinic")
    assert (ep.conn_type, ep.host, ep.port, ep.login, ep.password, ep.schema) == (
        "mysql", "127.0.0.1", 13306, "dr_admin", "p@ss/w0rd", "petclinic")


def test_password_never_in_repr_or_description():
    ep = parse_uri("postgresql://u:topsecret@db:5432/app")
    assert ep.conn_type == "postgres"
    assert "topsecret" not in repr(ep) and "topsecret" not in ep.describe()


def test_airflow_json_form_with_extra():
    ep = parse_connection_value(json.dumps({"conn_type": "aws", "login": "k", "password": "s",
                                            "extra": {"endpoint_url": "http://127.0.0.1:15000"}}))
    assert ep.conn_type == "aws" and ep.extra["endpoint_url"] == "http://127.0.0.1:15000"


def test_connection_id_read_from_airflow_conn_variable(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MYSQL_DR", "mysql://u:p@127.0.0.1:13308")
    assert get_endpoint("mysql_dr").port == 13308


def test_missing_connection_says_how_to_define_it(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_NO_SUCH_DB", raising=False)
    with pytest.raises(ConnectionNotFoundError) as err:
        get_endpoint("no_such_db")
    assert "AIRFLOW_CONN_NO_SUCH_DB" in str(err.value) and "Admin -> Connections" in str(err.value)


def test_malformed_json_connection_is_a_clear_error():
    with pytest.raises(ConnectionNotFoundError, match="does not parse"):
        parse_connection_value("{not json")
