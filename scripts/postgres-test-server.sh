#!/usr/bin/env bash
# Start (or reuse) a throw-away PostgreSQL server on 127.0.0.1 for the test suite and print its
# URL. Data lives in $PGTEST_DIR (default /tmp/turingct-pgtest); stop with `pg_ctl -D DIR stop`.
set -eu
dir=${PGTEST_DIR:-/tmp/turingct-pgtest}
port=${PGTEST_PORT:-54329}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "no PostgreSQL server installed" >&2; exit 1; }
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
if [ ! -f "$dir/PG_VERSION" ]; then
  mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown postgres "$dir"
  as_pg "$bin/initdb -D $dir -U turingct --auth=trust -E UTF8 >/dev/null"
fi
if ! as_pg "$bin/pg_ctl -D $dir status" >/dev/null 2>&1; then
  as_pg "$bin/pg_ctl -D $dir -l $dir/server.log -w -o \"-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200\" start" >/dev/null
fi
echo "postgresql+psycopg://turingct@127.0.0.1:$port/postgres"
