#!/usr/bin/env bash
# PostgreSQL 15 with pgvector, for the team collections (plugins/archivist_team) and their
# tests. Debian/Ubuntu: installs postgresql-15 and postgresql-server-dev-15 with apt-get,
# then builds pgvector from the vendored archive (../shared/vendor, or PGVECTOR_TARBALL)
# in a temporary folder and installs it into that PostgreSQL. Needs root or sudo.
#
# Usage: bash scripts/setup-postgres.sh          (does nothing that is already done)
#        bash scripts/setup-postgres.sh --force  (rebuilds pgvector even if installed)
#
# It installs software only: no cluster is created and no server is started. The tests
# start their own throw-away server (tests/team/conftest.py); for your own local server
# see docs/team.md ("A local server in one command": scripts/local-postgres.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PG=15
PGVECTOR_VERSION=0.8.6
tarball="${PGVECTOR_TARBALL:-../shared/vendor/pgvector-${PGVECTOR_VERSION}.tar.gz}"
force=""; [ "${1:-}" = "--force" ] && force=1
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
bindir="/usr/lib/postgresql/$PG/bin"

if ! command -v apt-get >/dev/null; then
    echo "setup-postgres: no apt-get here; install PostgreSQL $PG and pgvector $PGVECTOR_VERSION" \
         "with your system's packages (see docs/team.md)" >&2
    exit 1
fi

need=()
[ -x "$bindir/initdb" ] || need+=("postgresql-$PG")
[ -x "$bindir/pg_config" ] && [ -d "/usr/include/postgresql/$PG/server" ] || need+=("postgresql-server-dev-$PG")
if [ ${#need[@]} -gt 0 ]; then
    echo "==> installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q "${need[@]}" build-essential >/dev/null 2>&1 \
        || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "${need[@]}" build-essential >/dev/null; }
fi

sharedir="$("$bindir/pg_config" --sharedir)"
control="$sharedir/extension/vector.control"
if [ -z "$force" ] && [ -f "$control" ] && grep -q "default_version = '$PGVECTOR_VERSION'" "$control"; then
    echo "==> pgvector $PGVECTOR_VERSION is already installed for PostgreSQL $PG"
    exit 0
fi
if [ ! -f "$tarball" ]; then
    echo "setup-postgres: $tarball is missing (set PGVECTOR_TARBALL to the pgvector $PGVECTOR_VERSION source archive)" >&2
    exit 1
fi
echo "==> building pgvector $PGVECTOR_VERSION from $tarball"
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
tar xzf "$tarball" -C "$build"
src="$build/pgvector-$PGVECTOR_VERSION"
# OPTFLAGS="": no -march=native, so the build runs on any x86-64 CPU (and gives the same
# distances on every CPU, ARCHITECTURE.md rule 11).
make -s -C "$src" PG_CONFIG="$bindir/pg_config" OPTFLAGS="" >/dev/null
$sudo make -s -C "$src" PG_CONFIG="$bindir/pg_config" OPTFLAGS="" install >/dev/null
echo "==> pgvector $PGVECTOR_VERSION installed for PostgreSQL $PG"
