"""AWS connections (`aws`): boto3 clients for S3, DMS, CloudWatch, Route 53, CloudFront, STS, ...

A connection id inside Airflow gets its client from the Amazon provider's `AwsBaseHook(client_type=...)`.
Everywhere else the table below reads the extras the provider reads:

- keys: login / password, or extras `aws_access_key_id` / `aws_secret_access_key`; `aws_session_token`;
  without keys, `profile_name` or boto3's default chain (environment, instance profile, IRSA on EKS);
- `region_name`: the connection's, else the environment's (AWS_REGION, AWS_DEFAULT_REGION, ~/.aws/config),
  and us-east-1 only when none of them names one;
- `endpoint_url` (a moto server in the lab), and `service_config` = {"<service>": {"endpoint_url": ...}};
- `config_kwargs`: botocore Config arguments, e.g. {"s3": {"addressing_style": "path"}};
- `role_arn`, `assume_role_kwargs` (e.g. ExternalId): the clients use that role's credentials from STS,
  refreshed before they expire. As in the provider, STS is reached at service_config's "sts" endpoint_url or
  AWS's own, never at `endpoint_url`. Only `assume_role_method` assume_role works outside Airflow;
- `verify`: false, or a CA bundle's path.

The old spellings `region` and `extra__aws__<name>` are accepted outside Airflow (Terraform read them
before this table); the provider reads only the names above.
"""

from __future__ import annotations

import re
from typing import Any

from multicloud_dr.connections import ConnectionType, Endpoint, Mode, Setting, Table
from multicloud_dr.exceptions import ConfigError

# boto3 needs a region for regional services; when neither the connection nor the environment names one, the
# region of AWS's global services (Route 53, CloudFront) is as good as any.
DEFAULT_REGION = "us-east-1"

AWS = Table(
    conn_types=("aws", "s3"),
    settings=(
        Setting("aws_access_key_id", field="login", kwarg="aws_access_key_id", env=("AWS_ACCESS_KEY_ID",)),
        Setting("aws_secret_access_key", field="password", kwarg="aws_secret_access_key",
                env=("AWS_SECRET_ACCESS_KEY",)),
        Setting("aws_session_token", kwarg="aws_session_token", env=("AWS_SESSION_TOKEN",)),
        Setting("profile_name", kwarg="profile_name", env=("AWS_PROFILE",)),
        Setting("region_name", aliases=("region",), kwarg="region_name", env=("AWS_REGION", "AWS_DEFAULT_REGION")),
        Setting("endpoint_url", env=("AWS_ENDPOINT_URL",)),
        Setting("service_config", kind=dict),
        Setting("config_kwargs", kind=dict),
        Setting("role_arn"),
        Setting("assume_role_method"),
        Setting("assume_role_kwargs", kind=dict),
        Setting("verify", kind=object),
    ),
    modes=(
        Mode("keys", requires=("aws_access_key_id", "aws_secret_access_key"), uses=("aws_session_token",)),
        Mode("default_chain"),
    ),
)


class AwsConnection(ConnectionType):
    table = AWS
    needs = "an AWS (aws) connection"

    def client(self, service: str) -> Any:
        """A boto3 client for `service` ("s3", "dms", "cloudwatch", "route53", ...)."""
        if self.through_hook:
            from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

            return AwsBaseHook(aws_conn_id=self.conn_id, client_type=service).get_conn()
        return self.session().client(service, **self.client_kwargs(service))

    def session_kwargs(self) -> dict[str, Any]:
        """What boto3.Session gets outside Airflow (the region may still come from the environment)."""
        return self.table.kwargs(self.values, self.mode)

    def client_kwargs(self, service: str) -> dict[str, Any]:
        """What session.client(service) gets outside Airflow."""
        kwargs: dict[str, Any] = {}
        if url := self.endpoint_url(service):
            kwargs["endpoint_url"] = url
        if config := self.botocore_config():
            kwargs["config"] = config
        if "verify" in self.values:
            kwargs["verify"] = self.values["verify"]
        return kwargs

    def endpoint_url(self, service: str, *, assume_role: bool = False) -> str | None:
        per_service = self.values.get("service_config", {}).get(service, {})
        return per_service.get("endpoint_url", None if assume_role else self.values.get("endpoint_url"))

    def botocore_config(self) -> Any:
        config_kwargs = dict(self.values.get("config_kwargs") or {})
        if not config_kwargs:
            return None
        from botocore import UNSIGNED
        from botocore.config import Config

        if config_kwargs.get("signature_version") == "unsigned":
            config_kwargs["signature_version"] = UNSIGNED
        try:
            return Config(**config_kwargs)
        except TypeError as err:
            raise ConfigError(f"{self.endpoint.describe()}: extra config_kwargs is not botocore Config's "
                              f"arguments ({err})") from None

    def session(self) -> Any:
        """A boto3 Session with the connection's credentials (or the role's) and region."""
        import boto3

        kwargs = self.session_kwargs()
        session = boto3.session.Session(**kwargs)
        if not session.region_name:
            session = boto3.session.Session(**kwargs, region_name=DEFAULT_REGION)
        if self.values.get("role_arn"):
            return self._assume_role(session)
        return session

    def _assume_role(self, source: Any) -> Any:
        import boto3
        import botocore.credentials
        import botocore.session

        method = self.values.get("assume_role_method") or "assume_role"
        if method != "assume_role":
            raise ConfigError(f"{self.endpoint.describe()}: assume_role_method {method!r} works only inside Airflow "
                              f"(the Amazon provider's hook); outside it, use assume_role or keys")
        sts = source.client("sts", endpoint_url=self.endpoint_url("sts", assume_role=True),
                            config=self.botocore_config())
        session_name = re.sub(r"[^\w+=,.@-]+", "-", f"multicloud-dr_{self.conn_id or self.endpoint.conn_type}")[:64]
        arguments = {"RoleSessionName": session_name, **self.values.get("assume_role_kwargs", {}),
                     "RoleArn": self.values["role_arn"]}

        def fetch() -> dict[str, str]:
            credentials = sts.assume_role(**arguments)["Credentials"]
            return {"access_key": credentials["AccessKeyId"], "secret_key": credentials["SecretAccessKey"],
                    "token": credentials["SessionToken"], "expiry_time": credentials["Expiration"].isoformat()}

        credentials = botocore.credentials.RefreshableCredentials.create_from_metadata(
            metadata=fetch(), refresh_using=fetch, method="sts-assume-role")
        botocore_session = botocore.session.get_session()
        # botocore has no public setter for refreshable credentials; the Amazon provider's hook sets them so too.
        botocore_session._credentials = credentials
        return boto3.session.Session(botocore_session=botocore_session, region_name=source.region_name)

    def terraform_env(self) -> dict[str, str]:
        env = super().terraform_env()
        if self.values.get("role_arn"):
            # Terraform runs as the role: its temporary credentials, fetched now (valid for the STS default of an
            # hour, or assume_role_kwargs' DurationSeconds), instead of the keys that may assume it.
            frozen = self.session().get_credentials().get_frozen_credentials()
            env.pop("AWS_PROFILE", None)
            env |= {"AWS_ACCESS_KEY_ID": frozen.access_key, "AWS_SECRET_ACCESS_KEY": frozen.secret_key,
                    "AWS_SESSION_TOKEN": frozen.token}
        return env


def aws_client(ref: str | Endpoint | AwsConnection, service: str) -> Any:
    """A boto3 client for `service` from an aws connection id, URI or Endpoint."""
    return AwsConnection.from_ref(ref).client(service)
