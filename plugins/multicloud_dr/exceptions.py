"""Every error the library raises on purpose. Each message says what to do next."""


class DrError(Exception):
    """Base class: an error whose message is meant for the operator, not a stack trace.

    `exit_code` is what drctl exits with: 1 when the work ran and failed, 2 when the input or a
    prerequisite is wrong (fix the command or the setup, a retry alone will not help).
    """

    exit_code = 1


class InputError(DrError):
    """Bad input or a missing prerequisite: retrying unchanged cannot help (unless `retry_may_help`:
    an unreachable server is reported like bad input by drctl, but may come back for a retry)."""

    exit_code = 2
    retry_may_help = False


class ConfigError(InputError):
    """A setting is missing or malformed."""


class ConnectionNotFoundError(InputError):
    """A connection id names no Airflow connection and no AIRFLOW_CONN_* variable."""


class LabError(InputError):
    """The local DR lab could not do what was asked."""


class MissingBinaryError(LabError):
    """A program the lab needs is not installed."""


class PortInUseError(LabError):
    """A lab port is taken by a program the lab did not start."""


class ServiceFailedError(LabError):
    """A lab service did not become healthy."""


class TlsError(InputError):
    """A database connection's TLS does not fit its server (certificate not trusted, TLS required but
    not asked for, asked for but not offered): fix the connection's extras or the server."""


class TrafficError(DrError):
    """A traffic layer (Route 53, CloudFront, Cloudflare) refused a change, or did not settle in time."""


class TrafficConflictError(TrafficError):
    """What is live is no longer what was read (someone else changed it meanwhile): nothing was
    overwritten. Read the status again and decide again."""


class HealthCheckError(DrError):
    """A site's application did not answer its health check in time; the message holds the last failure."""


class KubernetesError(DrError):
    """The Kubernetes API refused a change, or a rollout did not finish in time."""


class StateConflictError(DrError):
    """Another run changed the DR state between this run's read and its write: nothing was written. Re-read the
    state and decide again; if another run holds it now, stop without acting."""
