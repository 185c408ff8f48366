#!/usr/bin/env bash
# Makes sure the base images the stack names can be had, for machines that reach no container
# registry. For each of NODE_IMAGE (default node:20-bookworm-slim), REDIS_IMAGE (default
# redis:7-alpine), DEBIAN_IMAGE (default debian:bookworm-slim, under the load balancer) and
# POSTGRES_IMAGE (default pgvector/pgvector:pg15, the retrieval index): nothing is done when the image is present or can be pulled; otherwise a local stand-in is built from Debian
# packages (debootstrap, as root) and the Node installed on this machine:
#   aicache-base/debian:bookworm  Debian bookworm minbase
#   aicache-base/node:20          that + this machine's node and npm + a `node` user (uid 1000)
#   aicache-base/redis:7          that + Debian's redis-server 7 + a `redis` user, /data
#   aicache-base/pgvector:pg15    that + Debian's PostgreSQL 15 + pgvector built from Debian's source
#                                 package (infra/scripts/install-pgvector.sh) + an entrypoint that
#                                 initializes PGDATA as the official image does (postgres-entrypoint.sh)
# All trust this machine's CA certificates (/etc/ssl/certs), so npm and apt inside a build work behind
# a TLS-inspecting proxy; NODE_EXTRA_CA_CERTS points Node at that bundle.
#
# stdout gets one `NAME=image` line per stand-in in use (nothing when the public images are there), so
#   infra/docker/build-base-images.sh >> .env
# makes compose build and run with them. Progress goes to stderr.
#
# Environment: NODE_IMAGE, REDIS_IMAGE, DEBIAN_IMAGE, POSTGRES_IMAGE (the images to look for), DEBIAN_MIRROR (default: the Debian
# mirror apt uses here), REBUILD_BASE_IMAGES=1 (rebuild the stand-ins even if they exist).
set -euo pipefail

node_image=${NODE_IMAGE:-node:20-bookworm-slim}
redis_image=${REDIS_IMAGE:-redis:7-alpine}
debian_image=${DEBIAN_IMAGE:-debian:bookworm-slim}
postgres_image=${POSTGRES_IMAGE:-pgvector/pgvector:pg15}
local_debian=aicache-base/debian:bookworm
local_node=aicache-base/node:20
local_redis=aicache-base/redis:7
local_postgres=aicache-base/pgvector:pg15
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export DOCKER_BUILDKIT=0

log() { printf 'build-base-images: %s\n' "$*" >&2; }
present() { docker image inspect "$1" >/dev/null 2>&1; }
# A registry that cannot be reached fails at once (DNS or connection refused); the timeout is for one that hangs.
pullable() { timeout 120 docker pull -q "$1" >/dev/null 2>&1; }

if ! docker info >/dev/null 2>&1; then
  log 'no Docker engine answers (is dockerd running, and may this user use it?)'
  exit 1
fi

needed() { # image: no when it is here or can be pulled
  if [[ -z ${REBUILD_BASE_IMAGES:-} ]] && { present "$1" || pullable "$1"; }; then
    log "$1: present"
    echo no
  else
    echo yes
  fi
}
need_node=$(needed "$node_image")
need_redis=$(needed "$redis_image")
need_debian=$(needed "$debian_image")
need_postgres=$(needed "$postgres_image")

debian_mirror() {
  if [[ -n ${DEBIAN_MIRROR:-} ]]; then printf '%s' "$DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\/\{0,1\}\)$/\1/p' | head -n 1)
  if [[ -z $uri ]]; then
    uri=$(sed -n 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]*\/debian\/\{0,1\}\)[[:space:]].*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n 1)
  fi
  printf '%s' "${uri:-http://deb.debian.org/debian}"
}

build_debian() {
  if [[ -z ${REBUILD_BASE_IMAGES:-} ]] && present "$local_debian"; then return; fi
  if [[ $(id -u) != 0 ]] || ! command -v debootstrap >/dev/null 2>&1; then
    log "building $local_debian needs root and debootstrap (Debian/Ubuntu: apt-get install debootstrap)"
    exit 1
  fi
  local root mirror
  root=$(mktemp -d /var/tmp/aicache-rootfs.XXXXXX)
  # shellcheck disable=SC2064 # expand now: the trap must remove this directory
  trap "rm -rf '$root'" EXIT
  mirror=$(debian_mirror)
  log "debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -n 20 "$root.log" >&2
    rm -f "$root.log"
    exit 1
  }
  rm -f "$root.log"
  # Apt lists are fetched again by the builds that need them; man pages and docs are never read.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
  tar -C "$root" --numeric-owner -c . | docker import \
    -c 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["bash"]' - "$local_debian" >/dev/null
  rm -rf "$root"
  trap - EXIT
  log "$local_debian: built"
}

# The host's CA bundle, so builds reach the registries the way this machine does.
ca_bundle() {
  local f
  for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
    if [[ -r $f ]]; then printf '%s' "$f"; return; fi
  done
  log 'no CA bundle found under /etc/ssl or /etc/pki'
  exit 1
}

build_with_context() { # tag, dockerfile, context dir
  docker build -q --build-arg "BASE_IMAGE=$local_debian" -t "$1" -f "$2" "$3" >/dev/null
}

if [[ $need_node == yes ]]; then
  if [[ -n ${REBUILD_BASE_IMAGES:-} ]] || ! present "$local_node"; then
    build_debian
    node_bin=$(command -v node) || { log 'node is not installed here'; exit 1; }
    node_bin=$(readlink -f "$node_bin")
    [[ $("$node_bin" -p 'process.versions.node.split(".")[0]') == 20 ]] || log "warning: $node_bin is Node $("$node_bin" --version), not 20"
    npm_dir=$(cd "$(dirname "$node_bin")/../lib/node_modules/npm" 2>/dev/null && pwd) || { log 'npm not found beside node'; exit 1; }
    ctx=$(mktemp -d)
    cp "$node_bin" "$ctx/node"
    cp -a "$npm_dir" "$ctx/npm"
    cp "$(ca_bundle)" "$ctx/ca-certificates.crt"
    log "building $local_node from $node_bin ($("$node_bin" --version)) and npm $("$node_bin" "$npm_dir/bin/npm-cli.js" --version)"
    build_with_context "$local_node" "$here/node-base.Dockerfile" "$ctx" || { rm -rf "$ctx"; exit 1; }
    rm -rf "$ctx"
    log "$local_node: built"
  fi
  echo "NODE_IMAGE=$local_node"
fi

if [[ $need_redis == yes ]]; then
  if [[ -n ${REBUILD_BASE_IMAGES:-} ]] || ! present "$local_redis"; then
    build_debian
    ctx=$(mktemp -d)
    cp "$(ca_bundle)" "$ctx/ca-certificates.crt"
    log "building $local_redis from Debian's redis-server"
    build_with_context "$local_redis" "$here/redis-base.Dockerfile" "$ctx" || { rm -rf "$ctx"; exit 1; }
    rm -rf "$ctx"
    log "$local_redis: built ($(docker run --rm "$local_redis" redis-server --version | cut -d ' ' -f 3))"
  fi
  echo "REDIS_IMAGE=$local_redis"
fi

if [[ $need_postgres == yes ]]; then
  if [[ -n ${REBUILD_BASE_IMAGES:-} ]] || ! present "$local_postgres"; then
    build_debian
    ctx=$(mktemp -d)
    cp "$(ca_bundle)" "$ctx/ca-certificates.crt"
    cp "$here/../scripts/install-pgvector.sh" "$here/postgres-entrypoint.sh" "$ctx/"
    log "building $local_postgres from Debian's postgresql-15 and pgvector source package"
    build_with_context "$local_postgres" "$here/postgres-base.Dockerfile" "$ctx" || { rm -rf "$ctx"; exit 1; }
    rm -rf "$ctx"
    log "$local_postgres: built ($(docker run --rm --entrypoint postgres "$local_postgres" --version))"
  fi
  echo "POSTGRES_IMAGE=$local_postgres"
fi

if [[ $need_debian == yes ]]; then
  build_debian
  echo "DEBIAN_IMAGE=$local_debian"
fi
