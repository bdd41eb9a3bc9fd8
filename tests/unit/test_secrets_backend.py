"""drctl's lookup of connection ids in a secrets backend (AIRFLOW__SECRETS__BACKEND), with fake backends:
AIRFLOW_CONN_<ID> first, the backend only for ids not found there, and Airflow never imported without one."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from multicloud_dr import connections, secrets_backend
from multicloud_dr.connections import get_endpoint
from multicloud_dr.exceptions import ConfigError, ConnectionNotFoundError

SECRET = "s3cr3t-in-kwargs"

FAKE_BACKENDS = '''
class DictBackend:
    def __init__(self, connections=None, **kwargs):
        self.connections = connections or {}

    def get_conn_value(self, conn_id):
        return self.connections.get(conn_id)


class BrokenBackend:
    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def get_conn_value(self, conn_id):
        raise RuntimeError(f"denied for key {self.kwargs}")
'''


@pytest.fixture
def backends(tmp_path, monkeypatch):
    (tmp_path / "fake_secrets_backends.py").write_text(FAKE_BACKENDS)
    monkeypatch.syspath_prepend(str(tmp_path))
    # These tests stand for drctl, outside Airflow; in the whole suite other tests have imported airflow.sdk,
    # which would otherwise send get_endpoint through Airflow's own lookup.
    monkeypatch.setattr(connections, "running_in_airflow", lambda: False)
    secrets_backend._backend.cache_clear()
    yield lambda name, **kwargs: (monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", f"fake_secrets_backends.{name}"),
                                  monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND_KWARGS", json.dumps(kwargs)))
    secrets_backend._backend.cache_clear()


def test_an_id_only_in_the_backend_is_read_from_it(backends):
    backends("DictBackend", connections={"sb_only": json.dumps({"conn_type": "mysql", "host": "db.internal",
                                                                "port": 3306, "login": "u", "password": "p"})})
    ep = get_endpoint("sb_only")
    assert (ep.conn_type, ep.host, ep.port, ep.login, ep.password) == ("mysql", "db.internal", 3306, "u", "p")


def test_the_variable_wins_over_the_backend(backends, monkeypatch):
    backends("DictBackend", connections={"sb_both": "mysql://u:p@from-backend:3306"})
    monkeypatch.setenv("AIRFLOW_CONN_SB_BOTH", "mysql://u:p@from-variable:3306")
    assert get_endpoint("sb_both").host == "from-variable"


def test_an_id_in_neither_names_the_id(backends, monkeypatch):
    backends("DictBackend")
    monkeypatch.delenv("AIRFLOW_CONN_SB_NOWHERE", raising=False)
    with pytest.raises(ConnectionNotFoundError, match=r"'sb_nowhere'.*AIRFLOW_CONN_SB_NOWHERE"):
        get_endpoint("sb_nowhere")


def test_a_backend_that_raises_is_one_error_without_its_message(backends):
    backends("BrokenBackend", aws_secret_access_key=SECRET)
    with pytest.raises(ConnectionNotFoundError, match=r"'sb_x'.*BrokenBackend.*RuntimeError") as caught:
        get_endpoint("sb_x")
    assert SECRET not in str(caught.value)


def test_an_unknown_class_or_bad_kwargs_is_a_config_error_without_the_kwargs(backends, monkeypatch):
    backends("NoSuchBackend")
    with pytest.raises(ConfigError, match=r"fake_secrets_backends\.NoSuchBackend"):
        get_endpoint("sb_x")
    backends("DictBackend")
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND_KWARGS", f'{{"aws_secret_access_key": "{SECRET}"')
    with pytest.raises(ConfigError, match="AIRFLOW__SECRETS__BACKEND_KWARGS is not valid JSON") as caught:
        get_endpoint("sb_x")
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("backend", ["", "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"],
                         ids=["no-backend", "backend-not-needed"])
def test_get_endpoint_imports_nothing_from_airflow_unless_it_needs_the_backend(backend):
    code = textwrap.dedent("""
        import os, sys
        from multicloud_dr.connections import get_endpoint
        from multicloud_dr.exceptions import ConnectionNotFoundError
        assert get_endpoint("sb_var").host == "h"
        if not os.environ.get("AIRFLOW__SECRETS__BACKEND"):
            try:
                get_endpoint("sb_missing")
            except ConnectionNotFoundError:
                pass
            else:
                raise SystemExit("sb_missing resolved")
        print(sorted(m for m in sys.modules if m == "airflow" or m.startswith("airflow.")))
    """)
    env = {"PATH": "/usr/bin:/bin", "AIRFLOW_CONN_SB_VAR": "mysql://u:p@h:3306"}
    if backend:
        env["AIRFLOW__SECRETS__BACKEND"] = backend
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                         check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
