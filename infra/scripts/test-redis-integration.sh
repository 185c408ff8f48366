#!/usr/bin/env bash
# Checks a running stack's use of Redis, from the outside:
#   1. DB isolation: a probe key written into one service's DB is not seen from the other two DBs.
#   2. The state Redis is durable: AOF on (aof_enabled:1) and maxmemory-policy noeviction.
#   3. GET /api/v1/cache/stats of each service names that service and its DB.
#   4. POST /api/v1/cache/test answers 401 without the admin token and status "ok" with it.
# One line per check; exits 1 when any check failed.
#
#   infra/scripts/test-redis-integration.sh   # npm start on this machine (token from .data/admin-token)
#   # docker compose: password and CACHE_ADMIN_TOKEN from .env, Redis on its published ports
#   set -a; . ./.env; set +a
#   REDIS_URL=redis://app:$REDIS_PASSWORD@127.0.0.1:6380 REDIS_STATE_URL=redis://app:$REDIS_PASSWORD@127.0.0.1:6381 \
#     infra/scripts/test-redis-integration.sh
#
# Environment: as health-check.sh, plus REDIS_DB_MULTIMODAL_WORKER/RETRIEVAL_PROXY/AI_AGENTS (0, 1, 2),
# CACHE_ADMIN_TOKEN or CACHE_ADMIN_TOKEN_FILE (default .data/admin-token). Needs curl and redis-cli.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

timeout_s=${HEALTH_TIMEOUT_SECONDS:-5}
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

report() { # ok|FAIL, what, detail
  printf '%-4s %-52s %s\n' "$1" "$2" "$3"
  if [[ $1 != ok ]]; then failures=$((failures + 1)); fi
}

if ! command -v redis-cli >/dev/null 2>&1; then
  echo 'test-redis-integration: redis-cli is required (Debian/Ubuntu: apt-get install redis-tools; macOS: brew install redis)' >&2
  exit 1
fi
# shellcheck disable=SC2034 # read by rcli() in lib.sh
rcli_timeout=$timeout_s

# --- 1. DB isolation ---------------------------------------------------------------------------
redis_target "${REDIS_URL:-}"
probe_value="isolation-$$-$RANDOM"
for name in "${SERVICE_NAMES[@]}"; do
  db=$(service_db "$name")
  key="$name:__isolation_probe"
  if ! answer=$(rcli -n "$db" set "$key" "$probe_value" EX 60 2>&1) || [[ $answer != OK ]]; then
    report FAIL "isolation: write $key (db $db)" "${answer:-no answer} ($REDIS_TARGET_SHOWN)"
    continue
  fi
  seen_in=()
  for other in "${SERVICE_NAMES[@]}"; do
    [[ $other == "$name" ]] && continue
    other_db=$(service_db "$other")
    if [[ $other_db == "$db" ]]; then
      seen_in+=("db $other_db (shared with $other)")
      continue
    fi
    count=$(rcli -n "$other_db" exists "$key" 2>&1) || count="error: $count"
    if [[ $count != 0 ]]; then seen_in+=("db $other_db ($count)"); fi
  done
  readback=$(rcli -n "$db" get "$key" 2>&1) || true
  rcli -n "$db" unlink "$key" >/dev/null 2>&1 || true
  if [[ $readback != "$probe_value" ]]; then
    report FAIL "isolation: $name db $db" "read back '${readback}' instead of the probe"
  elif ((${#seen_in[@]} > 0)); then
    report FAIL "isolation: $name db $db" "probe key also seen in ${seen_in[*]}"
  else
    report ok "isolation: $name db $db" "probe key visible only in db $db"
  fi
done

# --- 2. State Redis durability -------------------------------------------------------------------
redis_target "${REDIS_STATE_URL:-${REDIS_URL:-}}"
if info=$(rcli info persistence 2>&1) && [[ $info == *aof_enabled:* ]]; then
  aof=$(printf '%s\n' "$info" | tr -d '\r' | sed -n 's/^aof_enabled://p')
  if [[ $aof == 1 ]]; then
    report ok "state redis: AOF" "aof_enabled:1 ($REDIS_TARGET_SHOWN)"
  else
    report FAIL "state redis: AOF" "aof_enabled:$aof ($REDIS_TARGET_SHOWN): a restart loses state"
  fi
else
  report FAIL "state redis: AOF" "INFO persistence failed: ${info%%$'\n'*} ($REDIS_TARGET_SHOWN)"
fi
if info=$(rcli info memory 2>&1) && [[ $info == *maxmemory_policy:* ]]; then
  policy=$(printf '%s\n' "$info" | tr -d '\r' | sed -n 's/^maxmemory_policy://p')
  if [[ $policy == noeviction ]]; then
    report ok "state redis: eviction" "maxmemory_policy:noeviction"
  else
    report FAIL "state redis: eviction" "maxmemory_policy:$policy: state keys may be evicted"
  fi
else
  report FAIL "state redis: eviction" "INFO memory failed: ${info%%$'\n'*}"
fi

# --- 3 and 4. Cache admin routes ----------------------------------------------------------------
token=''
if ! token=$(admin_token); then
  token=''
fi
for name in "${SERVICE_NAMES[@]}"; do
  base=$(service_url "$name")
  db=$(service_db "$name")

  body="$work/$name-stats.json"
  # GET /stats needs an admin credential; the header goes through stdin so the token is not on curl's command line.
  code=$(printf 'Authorization: Bearer %s\n' "$token" | curl -sS -o "$body" -w '%{http_code}' -H @- \
    --connect-timeout "$timeout_s" --max-time "$timeout_s" "$base/api/v1/cache/stats" 2>/dev/null) || code=000
  if [[ $code != 200 ]]; then
    report FAIL "$name GET /api/v1/cache/stats" "HTTP ${code/#000/no answer}"
  else
    got_service=$(json_field "$body" service) || got_service=''
    got_db=$(json_field "$body" db) || got_db=''
    if [[ $got_service == "$name" && $got_db == "$db" ]]; then
      report ok "$name GET /api/v1/cache/stats" "service=$got_service db=$got_db"
    else
      report FAIL "$name GET /api/v1/cache/stats" "service='$got_service' db='$got_db', expected $name and $db"
    fi
  fi

  code=$(curl -sS -o /dev/null -w '%{http_code}' --connect-timeout "$timeout_s" --max-time "$timeout_s" \
    -X POST "$base/api/v1/cache/test" 2>/dev/null) || code=000
  if [[ $code == 401 ]]; then
    report ok "$name POST /api/v1/cache/test, no token" "401"
  else
    report FAIL "$name POST /api/v1/cache/test, no token" "HTTP ${code/#000/no answer}, expected 401"
  fi

  if [[ -z $token ]]; then
    report FAIL "$name POST /api/v1/cache/test" "no admin token: set CACHE_ADMIN_TOKEN or CACHE_ADMIN_TOKEN_FILE"
    continue
  fi
  body="$work/$name-test.json"
  # A probe write that missed its deadline (a busy moment: the cache degrades rather than wait) answers 503: the probe
  # is tried up to 3 times, 1 s apart, and says how many it took.
  for attempt in 1 2 3; do
    # The header goes through stdin (-H @-) so the token is not on curl's command line.
    code=$(printf 'Authorization: Bearer %s\n' "$token" | curl -sS -o "$body" -w '%{http_code}' \
      --connect-timeout "$timeout_s" --max-time "$timeout_s" -H @- -X POST "$base/api/v1/cache/test" 2>/dev/null) || code=000
    status=''
    if [[ -s $body ]]; then status=$(json_field "$body" status) || status=''; fi
    [[ $code == 503 && $attempt -lt 3 ]] || break
    sleep 1
  done
  if [[ $code == 200 && $status == ok ]]; then
    report ok "$name POST /api/v1/cache/test" "status=ok$( ((attempt > 1)) && echo " (attempt $attempt)")"
  else
    error=''
    if [[ -s $body ]]; then error=$(json_field "$body" error) || error=''; fi
    report FAIL "$name POST /api/v1/cache/test" "HTTP ${code/#000/no answer}, status='$status'${error:+, error='$error'}"
  fi
done

if ((failures > 0)); then
  echo "test-redis-integration: $failures check(s) failed" >&2
  exit 1
fi
echo "test-redis-integration: all checks passed"
