#!/usr/bin/env bash
# Run Rally on a laptop: web on 127.0.0.1:8000, a Celery worker and beat, and Redis when none
# answers. Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.local}"
mkdir -p var

pids=()
stop_all() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do
    pkill -TERM -P "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  echo "Rally stopped."
}
trap stop_all INT TERM EXIT

if scripts/redis.sh check; then
  echo "Using the Redis that answers at ${REDIS_URL:-redis://127.0.0.1:6379/0}."
else
  scripts/redis.sh foreground &
  pids+=($!)
fi
$BIN/python manage.py migrate --noinput
$BIN/python manage.py seed_demo

$BIN/python manage.py runserver --noreload 127.0.0.1:8000 &
pids+=($!)
# worker.py is the celery command without its interactive shells' imports (lighter processes).
$BIN/python worker.py -A config.celery_app worker -Q transactional,bulk,tracking,webhooks -c 2 --loglevel INFO &
pids+=($!)
$BIN/celery -A config.celery_app beat --schedule var/celerybeat-schedule --loglevel INFO &
pids+=($!)

cat <<BANNER

  Rally is running.
    Petitions:  http://127.0.0.1:8000/petitions/
    Admin:      http://127.0.0.1:8000/admin/   login: campaigner / rally-demo
    Outbox:     http://127.0.0.1:8000/admin/mailings/outboxmessage/  (email sent in development)
  Press Ctrl-C to stop.

BANNER
# Stop everything as soon as any one part stops.
wait -n
