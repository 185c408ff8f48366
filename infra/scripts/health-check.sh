#!/usr/bin/env bash
# Checks a running stack: GET /health and /ready of each service, PING to the cache Redis (and the
# state Redis when it is another server). One line per check; exits 1 when any check failed.
#
#   infra/scripts/health-check.sh          # npm start on this machine (default ports)
#   # docker compose: the password from .env, Redis on its published ports
#   set -a; . ./.env; set +a
#   REDIS_URL=redis://app:$REDIS_PASSWORD@127.0.0.1:6380 REDIS_STATE_URL=redis://app:$REDIS_PASSWORD@127.0.0.1:6381 \
#     infra/scripts/health-check.sh
#
# Environment: MULTIMODAL_WORKER_URL, RETRIEVAL_PROXY_URL, AI_AGENTS_URL (defaults http://127.0.0.1:8001..8003),
# REDIS_URL or REDIS_HOST/REDIS_PORT/REDIS_USERNAME/REDIS_PASSWORD (default 127.0.0.1:6379), REDIS_STATE_URL,
# REDIS_TLS_CA_FILE, HEALTH_TIMEOUT_SECONDS (default 5). Passwords are never printed nor put on a command line.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

timeout_s=${HEALTH_TIMEOUT_SECONDS:-5}
failures=0

report() { # ok|FAIL, what, detail
  printf '%-4s %-40s %s\n' "$1" "$2" "$3"
  if [[ $1 != ok ]]; then failures=$((failures + 1)); fi
}

for name in "${SERVICE_NAMES[@]}"; do
  base=$(service_url "$name")
  for path in /health /ready; do
    code=$(curl -sS -o /dev/null -w '%{http_code}' --connect-timeout "$timeout_s" --max-time "$timeout_s" "$base$path" 2>/dev/null) || code=000
    if [[ $code == 200 ]]; then
      report ok "$name $path" "$base$path -> 200"
    else
      report FAIL "$name $path" "$base$path -> ${code/#000/no answer}"
    fi
  done
done

check_redis() { # label, url (may be empty: REDIS_HOST/PORT/...)
  local label=$1 url=$2 answer
  redis_target "$url"
  if answer=$(redis_ping "$timeout_s" 2>&1) && [[ $answer == PONG ]]; then
    report ok "$label PING" "$REDIS_TARGET_SHOWN -> PONG"
  else
    report FAIL "$label PING" "$REDIS_TARGET_SHOWN -> ${answer:-no answer}"
  fi
}

check_redis 'redis (cache)' "${REDIS_URL:-}"
if [[ -n ${REDIS_STATE_URL:-} && ${REDIS_STATE_URL} != "${REDIS_URL:-}" ]]; then
  check_redis 'redis (state)' "$REDIS_STATE_URL"
fi

if ((failures > 0)); then
  echo "health-check: $failures check(s) failed" >&2
  exit 1
fi
echo "health-check: all checks passed"
