"""GCS clients from a `google_cloud_platform` connection. Extra `endpoint_url` points at an emulator
(anonymous credentials); without it the default credential chain is used, as on GKE."""

from __future__ import annotations

from multicloud_dr.connections import Endpoint


def storage_client(endpoint: Endpoint):
    from google.cloud import storage

    project = endpoint.extra.get("project") or endpoint.extra.get("project_id")
    url = endpoint.extra.get("endpoint_url")
    if url:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project=project or "lab", credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": url})
    return storage.Client(project=project)
