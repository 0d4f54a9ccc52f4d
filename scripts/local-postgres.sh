#!/usr/bin/env bash
# A PostgreSQL 15 server with pgvector for trying team collections on one machine.
#
#   bash scripts/local-postgres.sh start [FOLDER] [PORT]   first run: installs PostgreSQL and
#                                                          pgvector if needed (scripts/setup-postgres.sh),
#                                                          creates the cluster, prints the URL
#   bash scripts/local-postgres.sh stop  [FOLDER]
#
# FOLDER defaults to ~/.local/share/archivist-postgres, PORT to 5433 (beside a system
# server on 5432). It listens on 127.0.0.1 only, with password (SCRAM) authentication;
# the user "archivist" may create collections. Its password is made at the first start
# and kept in FOLDER/password (readable by you only): give the printed URL to
# `archivist collections add NAME URL --create`, which moves the password to your keychain.
# For a server other people use, follow docs/team.md ("A server for a team").
set -euo pipefail
cd "$(dirname "$0")/.."
command=${1:-start}
port=${3:-5433}
bindir=/usr/lib/postgresql/15/bin
run=()
default=${XDG_DATA_HOME:-$HOME/.local/share}/archivist-postgres
if [ "$(id -u)" -eq 0 ]; then   # PostgreSQL will not run as root: run it as the postgres user
    run=(runuser -u postgres --)
    default=/var/lib/postgresql/archivist-postgres   # (a folder the postgres user can reach)
fi
folder=${2:-$default}

case "$command" in
stop)
    "${run[@]}" "$bindir/pg_ctl" -D "$folder/data" -m fast -w stop
    exit 0 ;;
start) ;;
*) echo "usage: $0 start|stop [FOLDER] [PORT]" >&2; exit 2 ;;
esac

if [ ! -x "$bindir/initdb" ] || [ ! -f "$("$bindir/pg_config" --sharedir 2>/dev/null)/extension/vector.control" ]; then
    bash scripts/setup-postgres.sh
fi
mkdir -p "$folder"
chmod 700 "$folder"
[ ${#run[@]} -eq 0 ] || chown postgres: "$folder"
if [ ! -f "$folder/data/PG_VERSION" ]; then
    password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    umask 077
    echo "$password" > "$folder/password"
    pwfile=$(mktemp)
    echo "$password" > "$pwfile"
    [ ${#run[@]} -eq 0 ] || chown postgres: "$pwfile"
    "${run[@]}" "$bindir/initdb" -D "$folder/data" -U archivist --pwfile "$pwfile" -E UTF8 --locale C \
        --auth-host scram-sha-256 --auth-local scram-sha-256 >/dev/null
    rm -f "$pwfile"
    created=1
fi
password=$(cat "$folder/password")
if ! "${run[@]}" "$bindir/pg_ctl" -D "$folder/data" status >/dev/null 2>&1; then
    "${run[@]}" "$bindir/pg_ctl" -D "$folder/data" -l "$folder/data/server.log" -w \
        -o "-p $port -c listen_addresses=127.0.0.1 -k $folder" start >/dev/null
fi
if [ -n "${created:-}" ]; then
    PGPASSWORD=$password "$bindir/psql" -h 127.0.0.1 -p "$port" -U archivist -d postgres -q \
        -c "CREATE DATABASE archivist" >/dev/null
fi
echo "PostgreSQL with pgvector is running on 127.0.0.1:$port (data in $folder/data)."
echo "Add a collection (the password goes to your keychain):"
echo "  archivist collections add docs 'postgresql://archivist:$password@127.0.0.1:$port/archivist?sslmode=disable' --create"
