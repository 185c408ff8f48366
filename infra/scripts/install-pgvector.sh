#!/usr/bin/env bash
# Makes the pgvector extension available to this machine's PostgreSQL, for RETRIEVAL_INDEX=pgvector
# and its tests. Debian bookworm packages no pgvector; the next Debian release's source package
# (pgvector 0.8.x) builds against bookworm's postgresql-server-dev in under a minute. Its source is
# fetched through apt with a private source list (nothing else changes on the machine), built with
# OPTFLAGS="" (no -march=native: the result runs on any x86-64) and installed with `make install`.
# Needs root and apt-get. Idempotent: exits at once when the extension is already there.
#   infra/scripts/install-pgvector.sh [postgres-major]    (default: the newest server installed)
set -euo pipefail

major=${1:-$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)}
if [[ -z $major ]]; then
  echo "install-pgvector: no PostgreSQL server found under /usr/lib/postgresql" >&2
  exit 1
fi
if [[ -f /usr/share/postgresql/$major/extension/vector.control ]]; then
  echo "install-pgvector: pgvector is already available to PostgreSQL $major"
  exit 0
fi
if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-pgvector: needs root and apt-get (or install pgvector for PostgreSQL $major yourself)" >&2
  exit 1
fi

echo "install-pgvector: building pgvector for PostgreSQL $major from Debian's source package"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "postgresql-server-dev-$major" dpkg-dev make gcc >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" >"$work/sources.list"
apt_opts=(-o APT::Sandbox::User=root -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache")
apt-get "${apt_opts[@]}" update -qq >/dev/null
(cd "$work" && apt-get "${apt_opts[@]}" source --download-only pgvector >/dev/null 2>&1 && dpkg-source -x --no-check pgvector_*.dsc src >/dev/null)
make -C "$work/src" -s OPTFLAGS="" PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" >/dev/null
make -C "$work/src" -s OPTFLAGS="" PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" install >/dev/null
echo "install-pgvector: pgvector $(sed -n "s/^default_version = '\(.*\)'/\1/p" "/usr/share/postgresql/$major/extension/vector.control") installed for PostgreSQL $major"
