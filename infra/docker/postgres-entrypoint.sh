#!/usr/bin/env bash
# Entrypoint of the local pgvector/pgvector:pg15 stand-in (postgres-base.Dockerfile). Does what the
# official image's entrypoint does for the variables the compose stack sets:
#   - started as root: makes PGDATA the postgres user's and runs again as that user;
#   - an empty PGDATA: initdb with POSTGRES_USER as superuser and POSTGRES_PASSWORD as its password
#     (required: no database without one), scram-sha-256 for every host connection, listening on all
#     addresses; then POSTGRES_DB is created on a server that listens on the Unix socket only, so
#     pg_isready on TCP fails until the database is there;
#   - then exec postgres (PID 1 as the postgres user, so SIGINT from `docker stop` reaches it).
# Any other command (bash, psql ...) is run as it is.
set -euo pipefail

if [[ ${1:-} == -* ]]; then set -- postgres "$@"; fi
if [[ ${1:-} != postgres ]]; then exec "$@"; fi

: "${PGDATA:=/var/lib/postgresql/data}"
if [[ $(id -u) == 0 ]]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [[ ! -s $PGDATA/PG_VERSION ]]; then
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  if [[ -z ${POSTGRES_PASSWORD:-} ]]; then
    echo 'postgres-entrypoint: POSTGRES_PASSWORD is empty; set it (the database is not initialized without one)' >&2
    exit 1
  fi
  # The password goes through a file descriptor, never the command line.
  initdb --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") --auth-local=trust \
    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
  printf '\n%s\n' "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  printf '%s\n' 'host all all all scram-sha-256' >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [[ $db != postgres ]]; then
    psql -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres --set=db="$db" -q <<<'CREATE DATABASE :"db";'
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "postgres-entrypoint: initialized $PGDATA (user $user, database $db)"
fi

exec "$@"
