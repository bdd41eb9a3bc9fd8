"""Every error the library raises on purpose. Each message says what to do next."""


class DrError(Exception):
    """Base class: an error whose message is meant for the operator, not a stack trace."""


class ConfigError(DrError):
    """A setting is missing or malformed."""


class ConnectionNotFoundError(DrError):
    """A connection id names no Airflow connection and no AIRFLOW_CONN_* variable."""


class LabError(DrError):
    """The local DR lab could not do what was asked."""


class MissingBinaryError(LabError):
    """A program the lab needs is not installed."""


class PortInUseError(LabError):
    """A lab port is taken by a program the lab did not start."""


class ServiceFailedError(LabError):
    """A lab service did not become healthy."""
