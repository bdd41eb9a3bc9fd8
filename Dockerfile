# Airflow image for the multicloud-dr workstation stack (docker-compose.yaml).
#
# The base tag is pinned exactly: the Airflow version must match the `apache-airflow==` pin in
# requirements.txt (tests/unit/test_compose.py checks both), and the Python minor version must
# satisfy `requires-python` in pyproject.toml.  Never use a floating tag here.
FROM apache/airflow:3.3.2-python3.11

# --- System packages (as root) ----------------------------------------------------------------
# The DR tasks shell out to these tools:
#   mariadb-client     mariadb / mariadb-dump / mariadb-binlog for MariaDB backups, binlog shipping
#                      and replica (re)pointing on the primary and DR servers;
#   zstd               compression of dumps and binlog archives before they go to object storage;
#   postgresql-client  pg_dump / pg_restore / psql for the PostgreSQL side of the product;
#   libmariadb-dev, pkg-config, gcc  build mysqlclient (the mysql provider's driver, which gives the UI
#                      its MySQL connection form) when the base image's copy differs from the pin.
# --no-install-recommends keeps the image small; the apt lists are removed in the same layer so
# they never end up in the image.
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        mariadb-client \
        postgresql-client \
        zstd \
        libmariadb-dev \
        pkg-config \
        gcc \
    && apt-get autoremove -yqq --purge \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

# --- Python dependencies (as the airflow user) ------------------------------------------------
# The official image expects pip to run as `airflow` (it installs into the airflow user's
# site-packages); running pip as root would break the image's layout.
USER airflow

# requirements.txt is the fully pinned lock of everything the DAGs and the library need
# (providers, pymysql, zstandard, ...).  It is copied on its own, before the project source, so
# this slow layer is rebuilt only when the lock changes.  apache-airflow is repeated on the
# command line, as the Airflow docs recommend, so pip can never up- or downgrade the Airflow that
# ships in the base image.
COPY --chown=airflow:0 requirements.txt /requirements.txt
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -r /requirements.txt

# --- The project package (multicloud_dr) ------------------------------------------------------
# pyproject.toml builds the `multicloud_dr` package from plugins/multicloud_dr with setuptools
# (README.md is copied because pyproject.toml declares it as the readme; the build fails without
# it).  The project is placed at /opt/airflow so that plugins/ lands exactly where the compose
# file bind-mounts ./plugins: the editable install therefore resolves `multicloud_dr` to the
# mounted source, and edits on the workstation are live without rebuilding, while the image still
# works on its own (e.g. under Kubernetes) with the copy baked in here.
# --no-deps: every dependency is already installed, pinned, from requirements.txt above.
COPY --chown=airflow:0 pyproject.toml README.md /opt/airflow/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
RUN pip install --no-cache-dir --no-deps -e /opt/airflow
