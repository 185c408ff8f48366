# shellcheck shell=bash disable=SC2034
# Helpers shared by health-check.sh and test-redis-integration.sh (sourced, not run). SC2034 is off:
# the globals set here are read by the scripts that source this file.

SERVICE_NAMES=(multimodal-worker retrieval-proxy ai-agents)
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

service_url() { # name -> base URL, from MULTIMODAL_WORKER_URL / RETRIEVAL_PROXY_URL / AI_AGENTS_URL
  local url
  case $1 in
    multimodal-worker) url=${MULTIMODAL_WORKER_URL:-http://127.0.0.1:8001} ;;
    retrieval-proxy) url=${RETRIEVAL_PROXY_URL:-http://127.0.0.1:8002} ;;
    ai-agents) url=${AI_AGENTS_URL:-http://127.0.0.1:8003} ;;
    *) return 1 ;;
  esac
  printf '%s' "${url%/}"
}

service_db() { # name -> Redis DB index, from REDIS_DB_<NAME>
  case $1 in
    multimodal-worker) printf '%s' "${REDIS_DB_MULTIMODAL_WORKER:-0}" ;;
    retrieval-proxy) printf '%s' "${REDIS_DB_RETRIEVAL_PROXY:-1}" ;;
    ai-agents) printf '%s' "${REDIS_DB_AI_AGENTS:-2}" ;;
    *) return 1 ;;
  esac
}

url_decode() {
  local s=${1//+/ }
  printf '%b' "${s//%/\\x}"
}

# redis_target URL: sets REDIS_ARGS (redis-cli connection flags, no password), REDIS_AUTH (password),
# REDIS_HOST_, REDIS_PORT_, REDIS_TLS_ and REDIS_TARGET_SHOWN (the URL with the password masked).
# An empty URL means REDIS_HOST/REDIS_PORT/REDIS_USERNAME/REDIS_PASSWORD (default 127.0.0.1:6379).
redis_target() {
  local url=$1 rest userinfo='' hostport user='' scheme=redis
  REDIS_AUTH=''
  if [[ -z $url ]]; then
    REDIS_HOST_=${REDIS_HOST:-127.0.0.1}
    REDIS_PORT_=${REDIS_PORT:-6379}
    user=${REDIS_USERNAME:-}
    REDIS_AUTH=${REDIS_PASSWORD:-}
  else
    scheme=${url%%://*}
    rest=${url#*://}
    rest=${rest%%\?*}
    if [[ $rest == *@* ]]; then
      userinfo=${rest%@*}
      rest=${rest##*@}
    fi
    hostport=${rest%%/*}
    REDIS_HOST_=${hostport%:*}
    REDIS_PORT_=6379
    if [[ $hostport == *:* ]]; then REDIS_PORT_=${hostport##*:}; fi
    if [[ -n $userinfo ]]; then
      if [[ $userinfo == *:* ]]; then
        user=$(url_decode "${userinfo%%:*}")
        REDIS_AUTH=$(url_decode "${userinfo#*:}")
      else
        REDIS_AUTH=$(url_decode "$userinfo")
      fi
    fi
  fi
  REDIS_TLS_=no
  REDIS_ARGS=(-h "$REDIS_HOST_" -p "$REDIS_PORT_")
  if [[ -n $user ]]; then REDIS_ARGS+=(--user "$user"); fi
  if [[ $scheme == rediss ]]; then
    REDIS_TLS_=yes
    REDIS_ARGS+=(--tls)
    if [[ -n ${REDIS_TLS_CA_FILE:-} ]]; then REDIS_ARGS+=(--cacert "$REDIS_TLS_CA_FILE"); fi
  fi
  local shown_auth=''
  if [[ -n $user || -n $REDIS_AUTH ]]; then
    shown_auth="${user}${REDIS_AUTH:+:***}@"
  fi
  REDIS_TARGET_SHOWN="${scheme}://${shown_auth}${REDIS_HOST_}:${REDIS_PORT_}"
}

# rcli ARGS...: redis-cli against the last redis_target, limited to $rcli_timeout seconds when set.
# The password travels in REDISCLI_AUTH (the environment of redis-cli only), never on a command line.
rcli() {
  (
    if [[ -n $REDIS_AUTH ]]; then export REDISCLI_AUTH=$REDIS_AUTH; else unset REDISCLI_AUTH; fi
    if [[ -n ${rcli_timeout:-} ]] && command -v timeout >/dev/null 2>&1; then
      exec timeout "$rcli_timeout" redis-cli "${REDIS_ARGS[@]}" "$@"
    fi
    exec redis-cli "${REDIS_ARGS[@]}" "$@"
  )
}

# redis_ping SECONDS: prints the server's answer to PING (PONG when all is well). Uses redis-cli, or
# bash's /dev/tcp when redis-cli is not installed (plain TCP only).
redis_ping() {
  local s=$1
  if command -v redis-cli >/dev/null 2>&1; then
    local out rc=0 rcli_timeout=$s
    out=$(rcli ping 2>&1) || rc=$?
    out=${out%%$'\n'*}
    printf '%s\n' "${out:-timed out after ${s}s}"
    return "$rc"
  fi
  if [[ $REDIS_TLS_ == yes ]]; then
    echo 'redis-cli not found (needed for rediss://)'
    return 1
  fi
  local user='' i
  for ((i = 0; i < ${#REDIS_ARGS[@]}; i++)); do
    if [[ ${REDIS_ARGS[i]} == --user ]]; then user=${REDIS_ARGS[i + 1]}; fi
  done
  # shellcheck disable=SC2016 # '$4' and the like are RESP bulk lengths, not shell expansions
  (
    local line LC_ALL=C # ${#var} must count bytes for RESP lengths
    { exec 3<>"/dev/tcp/$REDIS_HOST_/$REDIS_PORT_"; } 2>/dev/null || { echo 'connection refused'; exit 1; }
    if [[ -n $REDIS_AUTH ]]; then
      if [[ -n $user ]]; then
        printf '*3\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n' "${#user}" "$user" "${#REDIS_AUTH}" "$REDIS_AUTH" >&3
      else
        printf '*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n' "${#REDIS_AUTH}" "$REDIS_AUTH" >&3
      fi
      IFS= read -r -t "$s" line <&3 || { echo "timed out after ${s}s"; exit 1; }
      line=${line%$'\r'}
      if [[ $line != +OK ]]; then echo "${line#-}"; exit 1; fi
    fi
    printf '*1\r\n$4\r\nPING\r\n' >&3
    IFS= read -r -t "$s" line <&3 || { echo "timed out after ${s}s"; exit 1; }
    line=${line%$'\r'}
    echo "${line#[+-]}"
    [[ $line == +PONG ]]
  )
}

# admin_token: CACHE_ADMIN_TOKEN, else the file CACHE_ADMIN_TOKEN_FILE, else .data/admin-token (npm start).
admin_token() {
  if [[ -n ${CACHE_ADMIN_TOKEN:-} ]]; then
    printf '%s' "$CACHE_ADMIN_TOKEN"
    return 0
  fi
  local file=${CACHE_ADMIN_TOKEN_FILE:-$REPO_ROOT/.data/admin-token}
  if [[ -r $file ]]; then
    tr -d '\r\n' <"$file"
    return 0
  fi
  return 1
}

# json_field FILE EXPR: prints a top-level field of a JSON document (jq, else node, else python3).
json_field() {
  local file=$1 field=$2
  if command -v jq >/dev/null 2>&1; then
    jq -r --arg f "$field" '.[$f] // empty | tostring' "$file" 2>/dev/null
  elif command -v node >/dev/null 2>&1; then
    node -e 'const v = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))[process.argv[2]]; if (v !== undefined && v !== null) process.stdout.write(String(v));' "$file" "$field" 2>/dev/null
  else
    python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v, end="")' "$file" "$field" 2>/dev/null
  fi
}
