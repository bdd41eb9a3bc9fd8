"""The application layer on Kubernetes (EKS, AKS, GKE): scale a site's app, point it at its database, check it.

Plain library code on the connection layer (`multicloud_dr.connections.kubernetes`; inside Airflow its clients
come from the cncf-kubernetes provider's KubernetesHook), callable from operators and from drctl alike:

- `cluster`: one cluster as one kubernetes connection reaches it, and the API's refusals as errors in words;
- `deployments`: scale through the `scale` subresource (idempotent, compare-and-set) and wait for a rollout;
- `objects`: write a ConfigMap or a Secret (read, compare, replace with its resourceVersion, create if absent);
- `site`: `SiteApp`, the app of one site of the topology (scale up, scale down, status), and
  `scale_down_if_reachable` for the old primary during a failover;
- `health`: wait until a site's app answers its health check.
"""
