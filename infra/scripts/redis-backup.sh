#!/usr/bin/env bash
# Takes a consistent backup of a Redis (the state Redis: agents, conversations, memory, the document
# index): BGSAVE, waits until that snapshot is complete, copies the RDB out as
# <out>/<name>-<UTC timestamp>.rdb with a <file>.sha256 beside it. Works with AOF on (Redis writes the
# RDB snapshot all the same); restore it with redis-restore.sh.
#
#   REDIS_STATE_URL=redis://operator:$REDIS_OPERATOR_PASSWORD@127.0.0.1:6381 infra/scripts/redis-backup.sh --out /backups
#   # docker compose: the RDB lives in the container; copy it from there (the script says how) or point
#   # --data-dir at the volume's directory on this host.
#
# Options: --url URL (default REDIS_STATE_URL, better: a command line is visible to `ps`; best the read-only
# `operator` user: it may BGSAVE, LASTSAVE, INFO and CONFIG GET), --out DIR (default ./backups),
# --name NAME (default redis-state), --data-dir DIR (where the server's RDB is, seen from here; default its
# CONFIG GET dir), --timeout SECONDS (default 600). The script passes the password to redis-cli in its
# environment only, never on a command line, and never prints it.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

url=${REDIS_STATE_URL:-}
out=./backups
name=redis-state
data_dir=''
timeout_s=600

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() {
  echo "redis-backup: $*" >&2
  exit 1
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --url) url=${2:?--url needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --name) name=${2:?--name needs a value}; shift 2 ;;
    --data-dir) data_dir=${2:?--data-dir needs a value}; shift 2 ;;
    --timeout) timeout_s=${2:?--timeout needs a value}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ -n $url ]] || die "no Redis to back up: pass --url redis://operator:<password>@host:port (or set REDIS_STATE_URL)"
[[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || die "--name may hold only letters, digits, '_', '.' and '-'"
[[ $timeout_s =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds"
command -v redis-cli >/dev/null 2>&1 || die "redis-cli is needed (apt-get install redis-tools)"

redis_target "$url"
rcli_timeout=10

# info_field SECTION FIELD: one field of INFO SECTION ('' when absent).
info_field() {
  rcli info "$1" | tr -d '\r' | sed -n "s/^$2://p"
}

answer=$(rcli ping 2>&1) || true
[[ $answer == PONG ]] || die "$REDIS_TARGET_SHOWN does not answer PING: ${answer:-no answer}"

deadline=$((SECONDS + timeout_s))
# A snapshot already being written was started before this backup was asked for: wait it out first.
while [[ $(info_field persistence rdb_bgsave_in_progress) == 1 ]]; do
  ((SECONDS < deadline)) || die "a background save already in progress did not end within ${timeout_s}s"
  sleep 0.2
done

saves_before=$(info_field persistence rdb_saves)
lastsave_before=$(rcli lastsave)
# SCHEDULE: with an AOF rewrite running, the save starts as soon as it ends instead of failing.
reply=$(rcli bgsave schedule 2>&1)
case $reply in
  *'Background saving started'* | *'Background saving scheduled'*) ;;
  *) die "BGSAVE refused: $reply" ;;
esac

# Done when the server counts one more RDB save (rdb_saves, Redis 7) or LASTSAVE moves, and none is running.
while :; do
  in_progress=$(info_field persistence rdb_bgsave_in_progress)
  if [[ $in_progress == 0 ]]; then
    if [[ -n $saves_before ]]; then
      saves_now=$(info_field persistence rdb_saves)
      [[ $saves_now -gt $saves_before ]] && break
    elif [[ $(rcli lastsave) -gt $lastsave_before ]]; then
      break
    fi
  fi
  ((SECONDS < deadline)) || die "the background save did not complete within ${timeout_s}s"
  sleep 0.2
done
status=$(info_field persistence rdb_last_bgsave_status)
[[ $status == ok ]] || die "the background save failed (rdb_last_bgsave_status:$status); see the Redis log"

config_get() { rcli config get "$1" | tr -d '\r' | sed -n 2p; }
dbfilename=$(config_get dbfilename) || true
if [[ -z $data_dir ]]; then
  data_dir=$(config_get dir) || true
  [[ -n $data_dir ]] || die "CONFIG GET dir was refused: pass --data-dir (the server's data directory as seen from here)"
fi
dbfilename=${dbfilename:-dump.rdb}
src=$data_dir/$dbfilename
if [[ ! -r $src ]]; then
  die "the snapshot was written to $src on the server, which this machine cannot read.
  Copy it out yourself, e.g. with compose:  docker compose cp redis-state:$src ./$name.rdb
  or pass --data-dir with the directory where that file is visible here (a mounted volume)."
fi

mkdir -p "$out"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
file=$name-$stamp.rdb
# Redis replaces the RDB by rename: the copy reads one whole snapshot even if another save lands meanwhile.
cp "$src" "$out/$file.partial"
if command -v redis-check-rdb >/dev/null 2>&1; then
  redis-check-rdb "$out/$file.partial" >/dev/null 2>&1 || {
    rm -f "$out/$file.partial"
    die "the copied snapshot fails redis-check-rdb"
  }
fi
mv "$out/$file.partial" "$out/$file"
(cd "$out" && sha256sum "$file" >"$file.sha256")

keys=$(rcli info keyspace | tr -d '\r' | grep '^db' || true)
echo "backup: $out/$file ($(wc -c <"$out/$file") bytes) from $REDIS_TARGET_SHOWN"
echo "sha256: $(cut -d ' ' -f 1 "$out/$file.sha256")  ($out/$file.sha256)"
echo "keys on the server now: ${keys:-none}" | tr '\n' ' '
echo
