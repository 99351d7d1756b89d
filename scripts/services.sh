#!/usr/bin/env bash
# Install the Debian services the Celery topology system test runs (tests/system/test_celery_topology.py):
# redis-server (the Celery broker) and PostgreSQL (Airflow's metadata database and Celery's results).
# Idempotent: installs nothing when both are there. Run as root (CI is).
#
# The test starts its own redis-server and its own PostgreSQL cluster in temporary directories, on free
# ports on 127.0.0.1: it uses only the binaries, never the service or the cluster that Debian's package
# creates (which this script leaves as the package sets it up).
set -euo pipefail

have_redis() { command -v redis-server >/dev/null 2>&1; }
have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; }

if have_redis && have_postgres; then
    echo "services: redis-server and postgresql already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "services: redis-server or postgresql missing; run this script as root to install them" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server postgresql >/dev/null
have_redis && have_postgres || { echo "services: install failed" >&2; exit 1; }
echo "services: installed redis-server and postgresql"
