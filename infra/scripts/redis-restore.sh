#!/usr/bin/env bash
# Restores an RDB taken by redis-backup.sh into the data directory of a stopped (or new) Redis server.
# Checks the file's sha256 first, never deletes what the directory held (moved aside with a
# .before-restore-<timestamp> suffix), and, since a server with `appendonly yes` loads its AOF and
# ignores an RDB, rebuilds the AOF from the restored data (default; --no-aof skips it) with a
# temporary redis-server on a private unix socket. Then start the server as usual, with its own config.
#
#   infra/scripts/redis-restore.sh --file backups/redis-state-20260101T000000Z.rdb --dir /var/lib/redis-state
#   # refuse to touch a server that runs and holds data: pass its URL
#   infra/scripts/redis-restore.sh --file ... --dir ... --url redis://operator:<password>@127.0.0.1:6381
#
# Options: --file FILE (with FILE.sha256 beside it), --dir DIR (the server's data directory), --dbfilename
# NAME (default dump.rdb), --url URL (the server that uses DIR: refused while it answers and holds keys),
# --no-aof, --force (restore over a directory that holds data, or while the server at --url holds keys).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

file=''
dir=''
dbfilename=dump.rdb
url=''
aof=yes
force=no

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() {
  echo "redis-restore: $*" >&2
  exit 1
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --file) file=${2:?--file needs a value}; shift 2 ;;
    --dir) dir=${2:?--dir needs a value}; shift 2 ;;
    --dbfilename) dbfilename=${2:?--dbfilename needs a value}; shift 2 ;;
    --url) url=${2:?--url needs a value}; shift 2 ;;
    --no-aof) aof=no; shift ;;
    --force) force=yes; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ -n $file && -n $dir ]] || { usage >&2; die "--file and --dir are required"; }
[[ $dbfilename =~ ^[A-Za-z0-9_.-]+$ ]] || die "--dbfilename may hold only letters, digits, '_', '.' and '-'"
[[ -r $file ]] || die "cannot read $file"
[[ -r $file.sha256 ]] || die "no checksum beside the backup ($file.sha256): refusing an unverified file"

expected=$(cut -d ' ' -f 1 "$file.sha256")
actual=$(sha256sum "$file" | cut -d ' ' -f 1)
[[ -n $expected && $expected == "$actual" ]] || die "checksum mismatch for $file (expected ${expected:-nothing}, got $actual): the file is damaged or not the one backed up"
echo "checksum ok: $actual"

if [[ -n $url ]]; then
  command -v redis-cli >/dev/null 2>&1 || die "redis-cli is needed to check --url (apt-get install redis-tools)"
  redis_target "$url"
  rcli_timeout=5
  if [[ $(rcli ping 2>/dev/null || true) == PONG ]]; then
    keys=$(rcli info keyspace | tr -d '\r' | grep '^db' || true)
    if [[ -n $keys && $force != yes ]]; then
      die "$REDIS_TARGET_SHOWN is running and holds data ($(echo "$keys" | tr '\n' ' ')). Stop it first (SHUTDOWN, or docker compose stop redis-state), or pass --force to replace its data anyway."
    fi
    echo "warning: $REDIS_TARGET_SHOWN is running: stop it before starting it on the restored files, without saving (SHUTDOWN NOSAVE), or it overwrites them." >&2
  fi
fi

mkdir -p "$dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
held=()
[[ -e $dir/$dbfilename ]] && held+=("$dbfilename")
[[ -e $dir/appendonlydir ]] && held+=(appendonlydir)
for f in "$dir"/appendonly*.aof; do [[ -e $f ]] && held+=("$(basename "$f")"); done
if [[ ${#held[@]} -gt 0 ]]; then
  [[ $force == yes ]] || die "$dir already holds ${held[*]}: pass --force to move them aside (nothing is deleted)"
  for f in "${held[@]}"; do
    mv "$dir/$f" "$dir/$f.before-restore-$stamp"
    echo "moved aside: $dir/$f.before-restore-$stamp"
  done
fi

cp "$file" "$dir/$dbfilename.partial"
mv "$dir/$dbfilename.partial" "$dir/$dbfilename"
[[ $(sha256sum "$dir/$dbfilename" | cut -d ' ' -f 1) == "$actual" ]] || die "the copy in $dir does not match the backup"
echo "restored: $dir/$dbfilename"

if [[ $aof == no ]]; then
  echo "next: start the server on $dir with appendonly no (with appendonly yes it would load an empty AOF instead)."
  exit 0
fi

command -v redis-server >/dev/null 2>&1 || die "redis-server is needed to rebuild the AOF; or pass --no-aof and follow its instructions"
# A temporary server, reachable only through a socket in the data dir (mode 700): loads the RDB with AOF off,
# then CONFIG SET appendonly yes writes the AOF from the loaded data.
sock=$dir/restore-$$.sock
log=$dir/restore-$stamp.log
redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --dir "$dir" --dbfilename "$dbfilename" \
  --appendonly no --save '' --daemonize no --logfile "$log" &
pid=$!
cleanup() { if kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi; }
trap cleanup EXIT
t() { timeout 10 redis-cli -s "$sock" "$@"; }
for _ in $(seq 1 300); do
  [[ -S $sock ]] && [[ $(t ping 2>/dev/null || true) == PONG ]] && break
  kill -0 "$pid" 2>/dev/null || die "the temporary server did not start; see $log"
  sleep 0.2
done
[[ $(t ping 2>/dev/null || true) == PONG ]] || die "the temporary server did not answer; see $log"
keys=$(t info keyspace | tr -d '\r' | grep '^db' || true)
t config set appendonly yes >/dev/null
for _ in $(seq 1 3000); do
  info=$(t info persistence | tr -d '\r')
  if grep -q '^aof_rewrite_in_progress:0' <<<"$info" && grep -q '^aof_rewrite_scheduled:0' <<<"$info" && grep -q '^aof_enabled:1' <<<"$info"; then
    grep -q '^aof_last_bgrewrite_status:ok' <<<"$info" || die "writing the AOF failed; see $log"
    break
  fi
  sleep 0.2
done
t shutdown nosave >/dev/null 2>&1 || true
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
trap - EXIT
rm -f "$sock"
[[ -d $dir/appendonlydir ]] || die "no AOF was written; see $log"
rm -f "$log"
echo "aof rebuilt: $dir/appendonlydir"
echo "keys restored: ${keys:-none}" | tr '\n' ' '
echo
echo "next: start the server on $dir with its usual config (appendonly yes loads the rebuilt AOF)."
