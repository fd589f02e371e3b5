#!/usr/bin/env bash
# Make sure Redis answers at REDIS_URL; start a local one if it does not. redis-server comes from
# scripts/system_packages.sh, which `make run`, `make test` and `make bench` call first.
#   scripts/redis.sh ensure      start a daemonised Redis when none answers (make test)
#   scripts/redis.sh foreground  run one in the foreground (make run, after `check`; Ctrl-C)
#   scripts/redis.sh check       exit 0 when Redis answers, 1 when it does not
set -euo pipefail
cd "$(dirname "$0")/.."
url="${REDIS_URL:-redis://127.0.0.1:6379/0}"
port=$(.venv/bin/python -c "from urllib.parse import urlsplit; print(urlsplit('$url').port or 6379)")

answering() {
  .venv/bin/python - "$url" <<'PY' >/dev/null 2>&1
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()
PY
}

if [ "${1:-ensure}" = check ]; then
  answering
  exit
fi
if answering && [ "${1:-ensure}" = ensure ]; then
  exit 0
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "No Redis answers at $url and redis-server is not installed." >&2
  echo "Install it (scripts/system_packages.sh run) or set REDIS_URL." >&2
  exit 1
fi
# Nothing is persisted: PostgreSQL (or SQLite) holds the truth, Redis only the queue.
args=(--bind 127.0.0.1 --port "$port" --save "" --appendonly no)
if [ "${1:-ensure}" = foreground ]; then
  echo "Starting a local Redis on port $port."
  exec redis-server "${args[@]}"
fi
redis-server "${args[@]}" --daemonize yes --logfile "$PWD/var/redis.log" >/dev/null
for _ in $(seq 50); do answering && exit 0; sleep 0.1; done
echo "Redis did not start; see var/redis.log" >&2
exit 1
