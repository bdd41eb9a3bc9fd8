"""Connections kept in an Airflow secrets backend, read by drctl outside Airflow.

Airflow reads `AIRFLOW__SECRETS__BACKEND` (a dotted class path, e.g.
`airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend`) and
`AIRFLOW__SECRETS__BACKEND_KWARGS` (a JSON object of constructor arguments). drctl reads the same two
variables, imports just that class and calls its `get_conn_value(conn_id)`, which returns the
connection as a URI or as Airflow's JSON form (parsed like an AIRFLOW_CONN_* value).

Precedence outside Airflow: AIRFLOW_CONN_<ID> first, then the secrets backend. Airflow itself asks the
backend first; drctl deliberately does not, because importing a provider's backend imports parts of
Airflow (about 4 s for the Amazon provider, measured on the lab machine) and then costs a network
round trip, and drctl is the break-glass tool for when Airflow or the backend is broken: a variable
exported on the shell is the operator's explicit override and must work without either. The cost: an
id defined in both places resolves to the variable in drctl and to the secret in Airflow tasks, so
define each id in one place only. Inside Airflow, `connections.get_endpoint` uses Airflow's own lookup
(backend first) and this module is not used.

For AWS Secrets Manager the kwargs are the backend's own (`connections_prefix`, default
`airflow/connections`; `connections_lookup_pattern`, `sep`, ...) plus the extras of an AWS
connection, which it uses for its client: `region_name`, `endpoint_url` (e.g. moto's),
`aws_access_key_id` / `aws_secret_access_key`, `role_arn`, `profile_name`. Example:

    AIRFLOW__SECRETS__BACKEND=airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend
    AIRFLOW__SECRETS__BACKEND_KWARGS='{"region_name": "us-east-1", "endpoint_url": "http://127.0.0.1:15000"}'

Errors (an unknown class, kwargs that are not a JSON object, a backend that raises or cannot be
reached) are a one-line `ConfigError` / `ConnectionNotFoundError` (drctl exit 2) that names the
variable, the class and the connection id, never a kwargs value or the backend's message, either of
which may hold a credential.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
from typing import Any

from multicloud_dr.connections import Endpoint, env_var_name, parse_connection_value
from multicloud_dr.exceptions import ConfigError, ConnectionNotFoundError

BACKEND_VAR = "AIRFLOW__SECRETS__BACKEND"
KWARGS_VAR = "AIRFLOW__SECRETS__BACKEND_KWARGS"

# Exceptions that mean the backend could not be reached (botocore's are not OSErrors): a retry may help.
_UNREACHABLE = {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"}

_state = {"imported_airflow": False}


def imported_airflow() -> bool:
    """True once this module has imported Airflow into a process that had not imported it: then
    `airflow.sdk` is in sys.modules although drctl is still not running inside Airflow."""
    return _state["imported_airflow"]


def backend_configured() -> bool:
    return bool(os.environ.get(BACKEND_VAR, "").strip())


def endpoint_from_backend(conn_id: str) -> Endpoint | None:
    """The connection `conn_id` from the configured secrets backend; None when no backend is set or
    the backend has no such connection."""
    if not backend_configured():
        return None
    class_path = os.environ[BACKEND_VAR].strip()
    backend = _backend(class_path, os.environ.get(KWARGS_VAR, ""))
    name = type(backend).__name__
    try:
        value = backend.get_conn_value(conn_id)
    except Exception as err:  # any backend's own errors: their messages may quote a credential
        error = ConnectionNotFoundError(
            f"connection {conn_id!r}: the secrets backend {name} ({BACKEND_VAR}) failed with "
            f"{type(err).__name__}: check its endpoint, region and credentials in {KWARGS_VAR}, "
            f"or export {env_var_name(conn_id)}=<uri> to bypass it")
        error.retry_may_help = _unreachable(err)
        raise error from None
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConnectionNotFoundError(f"connection {conn_id!r}: the secrets backend {name} returned a "
                                      f"{type(value).__name__}, not a URI or JSON string")
    return parse_connection_value(value, f"connection {conn_id!r} from the secrets backend {name}")


@functools.cache
def _backend(class_path: str, kwargs_text: str) -> Any:
    """The backend instance, built once per process (its client is reused for every id)."""
    kwargs = _kwargs(kwargs_text)
    module_name, _, class_name = class_path.rpartition(".")
    if not module_name:
        raise ConfigError(f"{BACKEND_VAR}={class_path!r} is not a dotted class path "
                          f"(e.g. airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend)")
    airflow_was_loaded = "airflow.sdk" in sys.modules
    if not airflow_was_loaded:
        logging.getLogger("airflow").setLevel(logging.WARNING)  # "Reading the config from ..." on import
    root = logging.getLogger()
    drctl_logging = (root.handlers[:], root.level)
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"{BACKEND_VAR}={class_path!r} names no importable class ({type(err).__name__}: "
                          f"{err}): install its provider package in this environment or fix the path") from None
    except Exception as err:  # a provider (or Airflow) that is itself broken
        raise ConfigError(f"{BACKEND_VAR}={class_path!r}: importing it failed with {type(err).__name__}: "
                          f"unset {BACKEND_VAR} and export AIRFLOW_CONN_<ID> instead") from None
    finally:
        if not airflow_was_loaded and "airflow.sdk" in sys.modules:
            _state["imported_airflow"] = True
            _keep_drctl_logging(*drctl_logging)
    if not callable(getattr(cls, "get_conn_value", None)):
        raise ConfigError(f"{BACKEND_VAR}={class_path!r} is not a secrets backend (it has no get_conn_value)")
    try:
        return cls(**kwargs)
    except TypeError as err:  # an unknown keyword: the message names the keyword, not its value
        raise ConfigError(f"{KWARGS_VAR} does not fit {class_name}: {err}") from None
    except Exception as err:
        raise ConfigError(f"{class_name}({KWARGS_VAR}) failed with {type(err).__name__}: check the kwargs") from None


def _kwargs(text: str) -> dict[str, Any]:
    from multicloud_dr.connections import json_object

    return json_object(text, KWARGS_VAR, ConfigError) if text.strip() else {}


def _keep_drctl_logging(handlers: list[logging.Handler], level: int) -> None:
    """Importing Airflow configures logging for an Airflow process: the root logger and structlog (which
    Airflow's classes log through) both write to stdout, where they would corrupt drctl's `--json` output.
    Put drctl's stderr handlers back and route structlog to them, without Airflow's INFO chatter. Only
    called when drctl (not Airflow) imported Airflow, so Airflow's own logging setup is never overridden."""
    import structlog

    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level)

    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, structlog.stdlib.PositionalArgumentsFormatter(),
                    structlog.stdlib.render_to_log_kwargs],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.getLogger("airflow").setLevel(logging.WARNING)


def _unreachable(err: BaseException) -> bool:
    return isinstance(err, OSError) or any(c.__name__ in _UNREACHABLE for c in type(err).__mro__)
