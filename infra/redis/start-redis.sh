#!/bin/sh
# Entrypoint of the compose Redis services. ACL files cannot read the environment, so this renders
# users.acl.example into the ACL file the conf names, with REDIS_PASSWORD stored only as its SHA-256
# (never in plain text on disk or in a process list), and REDIS_OPERATOR_PASSWORD, when set, the same way for the
# read-only operator user; then runs redis-server with the given conf.
#   start-redis.sh /usr/local/etc/redis/redis.state.conf [more redis-server args]
# The app user may touch only the services' key prefixes (<service>:*, state:*, auth:*) and their L1
# invalidation channels and the auth revocation channel, and has no CONFIG at all (CONFIG GET would show requirepass in clear; the
# services' durability check reads INFO instead). A service renamed with SERVICE_NAME needs its
# prefix added to users.acl.example.
# `default` is off (nobody can log in as it) but carries the app user's rules: Redis replays a
# MULTI/EXEC from the AOF as the default user and checks that user's ACL again at EXEC (fixed only
# in later Redis releases), so a default user with no rules drops every transaction on restart.
set -eu

conf=${1:?usage: start-redis.sh <redis.conf> [redis-server args...]}
shift
: "${REDIS_PASSWORD:?REDIS_PASSWORD must be set}"
user=${REDIS_USERNAME:-app}
case $user in
  '' | *[!A-Za-z0-9_-]*)
    echo "start-redis.sh: REDIS_USERNAME may hold only letters, digits, '_' and '-'" >&2
    exit 1
    ;;
esac
template=${REDIS_ACL_TEMPLATE:-$(dirname "$0")/users.acl.example}
acl=${REDIS_ACL_FILE:-/tmp/redis-users.acl}

hash=$(printf '%s' "$REDIS_PASSWORD" | sha256sum | cut -d ' ' -f 1)
umask 077
# The operator user (INFO, SLOWLOG, MONITOR, CONFIG GET, BGSAVE...: nothing that writes) is on only when
# REDIS_OPERATOR_PASSWORD is set; otherwise it stays off with no password.
if [ -n "${REDIS_OPERATOR_PASSWORD:-}" ]; then
  ophash=$(printf '%s' "$REDIS_OPERATOR_PASSWORD" | sha256sum | cut -d ' ' -f 1)
  operator="s/^user operator off >CHANGE_ME_OPERATOR_PASSWORD /user operator on #$ophash /"
else
  operator="s/>CHANGE_ME_OPERATOR_PASSWORD /resetpass /"
fi
sed -e "s/^user app /user $user /" -e "s/>CHANGE_ME_APP_PASSWORD/#$hash/" -e "$operator" "$template" >"$acl"
exec redis-server "$conf" --aclfile "$acl" "$@"
