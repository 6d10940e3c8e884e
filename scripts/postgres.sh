#!/usr/bin/env bash
# A throwaway PostgreSQL server for the store tests, on 127.0.0.1 and a free port.
#   scripts/postgres.sh          install PostgreSQL (Debian packages) if absent, start a cluster in a
#                                temp dir; print its URL (line 1) and its directory (line 2)
#   scripts/postgres.sh install  only install PostgreSQL if absent (CI, before parallel test workers)
#   scripts/postgres.sh stop DIR stop that cluster and delete DIR
set -euo pipefail

as_owner() {  # initdb and postgres refuse to run as root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [ "${1:-}" = stop ]; then
  dir="${2:?usage: $0 stop DIR}"
  as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir" &  # in the background: deleting a cluster can take seconds
  exit 0
fi

if [ -z "$(bindir)" ]; then
  echo "installing PostgreSQL from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
fi
if [ "${1:-}" = install ]; then exit 0; fi
bin="$(bindir)"
[ -x "$bin/initdb" ] || { echo "no initdb under /usr/lib/postgresql/*/bin after installing postgresql" >&2; exit 1; }

dir="$(mktemp -d -t lrpilot-pg.XXXXXX)"
password="$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s\n' "$password" > "$dir/pw"
if [ "$(id -u)" = 0 ]; then chown -R postgres "$dir"; fi
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

as_owner "$bin/initdb" -D "$dir/data" -U lrpilot --pwfile="$dir/pw" --auth=scram-sha-256 -E UTF8 --no-sync \
  >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }

echo "postgresql+psycopg://lrpilot:$password@127.0.0.1:$port/postgres"
echo "$dir"
