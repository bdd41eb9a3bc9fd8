"""boto3 clients from an `aws` connection: login/password as keys (or the default credential chain),
extra `region_name`, and extra `endpoint_url` (a moto server in the lab), as Airflow's AWS hook reads them."""

from __future__ import annotations

from typing import Any

from multicloud_dr.connections import Endpoint


def aws_client(endpoint: Endpoint, service: str) -> Any:
    import boto3

    kwargs: dict[str, Any] = {"region_name": endpoint.extra.get("region_name", "us-east-1")}
    if endpoint.extra.get("endpoint_url"):
        kwargs["endpoint_url"] = endpoint.extra["endpoint_url"]
    if endpoint.login:
        kwargs["aws_access_key_id"] = endpoint.login
        kwargs["aws_secret_access_key"] = endpoint.password
    return boto3.client(service, **kwargs)
