# The multicloud-dr runtime image: Airflow 3.3.2, the runtime requirements, the multicloud_dr package, the
# DAGs and include/ (topologies, SQL, Terraform), and the command-line tools the DR tasks run.  The same image
# serves the workstation stack (docker-compose.yaml) and production (deploy/helm/values.yaml, the official
# Apache Airflow Helm chart).
#
# What is NOT in it: requirements-dev.txt (the lab's emulators moto and the GCS emulator, pytest, ruff, ...),
# the local DR lab (plugins/multicloud_dr/lab, `drctl lab`: it runs MariaDB/PostgreSQL servers on a workstation),
# tests/, bench/ and docs/.  .dockerignore keeps them out of the build context; tests/unit/test_dockerfile.py
# checks both files (no Docker engine exists on CI, so the image is never built there).
#
# The base tag is pinned exactly: the Airflow version must match the `apache-airflow==` pin in requirements.txt
# (tests/unit/test_compose.py checks both), and the Python minor version must satisfy `requires-python` in
# pyproject.toml.  Never use a floating tag here.

# --- Stage 1: the mysqlclient wheel -------------------------------------------------------------------------
# mysqlclient (the mysql provider's driver, pinned in requirements.txt) ships no Linux wheels on PyPI, so pip
# compiles it, which needs gcc, pkg-config and the MariaDB headers.  They are needed for that one build only:
# building the wheel in a throw-away stage keeps the compiler and the -dev headers out of the runtime image
# (a compiler in a production image is attack surface and ~150 MB), instead of installing and purging them
# in one layer, which would also need pip to run as root.
FROM apache/airflow:3.3.2-python3.11 AS mysqlclient-wheel
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc pkg-config libmariadb-dev \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
USER airflow
COPY --chown=airflow:0 requirements.txt /tmp/requirements.txt
# The version comes from the lock itself, so the wheel can never disagree with requirements.txt.
RUN pin="$(grep -E '^mysqlclient==' /tmp/requirements.txt | awk '{print $1}')" \
    && test -n "$pin" \
    && pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels "$pin"

# --- Stage 2: the runtime image -----------------------------------------------------------------------------
FROM apache/airflow:3.3.2-python3.11

# System packages (as root).  The DR tasks shell out to these tools:
#   mariadb-client  mariadb / mariadb-dump / mariadb-binlog: backups, restores, binlog archiving and replay,
#                   replica (re)pointing on the primary and DR servers;
#   libmariadb3     the client library the mysqlclient wheel from stage 1 links against;
#   zstd            the zstd CLI, to read a backup by hand (`zstd -dc`) from inside a worker; the tasks
#                   themselves compress in-process with the zstandard package;
#   unzip           only to unpack the terraform release below, purged in the same layer.
# No PostgreSQL client tools: the PostgreSQL side (promotion, fencing, lag) goes through psycopg only;
# pg_basebackup is used by the local lab, which is not in this image.
# --no-install-recommends keeps the image small; the apt lists go in the same layer.
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        mariadb-client \
        libmariadb3 \
        zstd \
    && apt-get autoremove -yqq --purge \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

# Terraform, for environment_provision, terraform_drift and the failover's DR stack (terraform.binary in the
# topology; include/terraform requires >= 1.6, < 2.0).  Version and SHA-256 are pinned here and checked with
# `sha256sum -c` before anything is unpacked, so a changed or truncated download fails the build.  The two
# checksums are HashiCorp's for the 1.9.8 linux_amd64 and linux_arm64 zips, as HashiCorp's own Homebrew tap
# lists them (hashicorp/homebrew-tap, Formula/terraform.rb at 1.9.8) and as terraform_1.9.8_SHA256SUMS lists
# them; they were copied, not recomputed (this repository's machines cannot reach releases.hashicorp.com).
# To upgrade: take the new values from
# https://releases.hashicorp.com/terraform/<version>/terraform_<version>_SHA256SUMS after checking that file's
# signature (terraform_<version>_SHA256SUMS.sig) with HashiCorp's PGP key, as HashiCorp documents.
# TARGETARCH is set by BuildKit (docker buildx, or `docker build` with BuildKit) for the platform being built;
# amd64 and arm64 are supported, and the legacy builder, which sets nothing, gets amd64.
ARG TARGETARCH
ARG TERRAFORM_VERSION=1.9.8
ARG TERRAFORM_SHA256_AMD64=186e0145f5e5f2eb97cbd785bc78f21bae4ef15119349f6ad4fa535b83b10df8
ARG TERRAFORM_SHA256_ARM64=f85868798834558239f6148834884008f2722548f84034c9b0f62934b2d73ebb
RUN set -eu; \
    arch="${TARGETARCH:-amd64}"; \
    case "${arch}" in \
        amd64) sha256="${TERRAFORM_SHA256_AMD64}" ;; \
        arm64) sha256="${TERRAFORM_SHA256_ARM64}" ;; \
        *) echo "no pinned terraform checksum for architecture ${arch}" >&2; exit 1 ;; \
    esac; \
    zip="terraform_${TERRAFORM_VERSION}_linux_${arch}.zip"; \
    apt-get update; \
    apt-get install -y --no-install-recommends unzip; \
    curl -fsSL --retry 3 -o "/tmp/${zip}" \
        "https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/${zip}"; \
    echo "${sha256}  /tmp/${zip}" | sha256sum -c -; \
    unzip -o "/tmp/${zip}" terraform -d /usr/local/bin; \
    chmod 0755 /usr/local/bin/terraform; \
    rm -f "/tmp/${zip}"; \
    apt-get purge -y --auto-remove unzip; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*; \
    /usr/local/bin/terraform version

# --- Python dependencies (as the airflow user) ----------------------------------------------------------------
# The official image expects pip to run as `airflow` (it installs into the airflow user's site-packages);
# running pip as root would break the image's layout.
USER airflow

# requirements.txt is the fully pinned runtime lock (providers incl. celery and cncf-kubernetes, pymysql,
# zstandard, ...).  It is copied on its own, before the project source, so this slow layer is rebuilt only
# when the lock changes.  apache-airflow is repeated on the command line, as the Airflow docs recommend, so
# pip can never up- or downgrade the Airflow that ships in the base image.  --find-links offers pip the
# mysqlclient wheel built in stage 1, so nothing is compiled here.
COPY --chown=airflow:0 requirements.txt /requirements.txt
COPY --from=mysqlclient-wheel --chown=airflow:0 /tmp/wheels /tmp/wheels
RUN pip install --no-cache-dir --find-links /tmp/wheels "apache-airflow==3.3.2" -r /requirements.txt \
    && rm -rf /tmp/wheels

# --- The project: the multicloud_dr package, the DAGs and include/ ------------------------------------------
# pyproject.toml builds `multicloud_dr` from plugins/multicloud_dr with setuptools (README.md is copied because
# pyproject.toml declares it as the readme; the build fails without it).  The project sits at /opt/airflow, the
# image's AIRFLOW_HOME, so dags/, plugins/ and include/ land where Airflow and the package look for them (the
# package finds include/sql and include/topology.yaml next to plugins/), and where docker-compose.yaml
# bind-mounts the working tree over them: the editable install then resolves `multicloud_dr` to the mounted
# source, and edits on a workstation are live without a rebuild.  Under Kubernetes the copies baked in here
# are what runs.
# --no-deps: every dependency is already installed, pinned, from requirements.txt above.
COPY --chown=airflow:0 pyproject.toml README.md /opt/airflow/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 include/ /opt/airflow/include/
RUN pip install --no-cache-dir --no-deps -e /opt/airflow

# The image runs as the non-root airflow user (uid 50000), as the official image does.
USER airflow
