#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL server for the cluster tests.
#
# Usage: .ci/postgres.sh start | stop | url
#
# Installs Debian's postgresql if needed, creates a cluster in $PG_DATA (as
# the postgres user, since the server refuses to run as root), and listens on
# 127.0.0.1:$PG_PORT only. The role "bench" may log in from 127.0.0.1 without
# a password and create databases; `url` prints its connection URL.
set -euo pipefail

PG_DATA=${PG_DATA:-/var/tmp/bench-ci-postgres}
PG_PORT=${PG_PORT:-55432}
URL="postgresql://bench@127.0.0.1:$PG_PORT/bench"

log() { echo "postgres.sh: $*" >&2; }

bin_dir() {
    local pg_ctl
    pg_ctl=$(ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n 1)
    if [[ -z $pg_ctl ]]; then
        log "installing postgresql"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            postgresql >/dev/null
        pg_ctl=$(ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)
    fi
    dirname "$pg_ctl"
}

as_postgres() { runuser -u postgres -- "$@"; }

start() {
    local bin
    bin=$(bin_dir)
    if [[ ! -f $PG_DATA/PG_VERSION ]]; then
        install -d -o postgres -g postgres -m 0700 "$PG_DATA"
        as_postgres "$bin/initdb" -D "$PG_DATA" -U postgres --auth=trust >/dev/null
        cat >"$PG_DATA/pg_hba.conf" <<EOF
local all all trust
host all all 127.0.0.1/32 trust
EOF
    fi
    install -d -o postgres -g postgres /var/run/postgresql
    if ! as_postgres "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
        as_postgres "$bin/pg_ctl" -D "$PG_DATA" -w -t 60 -l "$PG_DATA/server.log" \
            -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c max_connections=200" \
            start >/dev/null
    fi
    local psql=("$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
    if [[ -z $("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'bench'") ]]; then
        "${psql[@]}" -c "CREATE ROLE bench LOGIN CREATEDB"
    fi
    if [[ -z $("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'bench'") ]]; then
        "${psql[@]}" -c "CREATE DATABASE bench OWNER bench"
    fi
    log "ready at $URL"
}

stop() {
    local bin
    bin=$(bin_dir)
    if [[ -f $PG_DATA/PG_VERSION ]]; then
        as_postgres "$bin/pg_ctl" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) echo "$URL" ;;
    *)
        echo "usage: $0 start | stop | url" >&2
        exit 2
        ;;
esac
