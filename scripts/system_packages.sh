#!/usr/bin/env bash
# Install the Debian packages a command needs, only those missing. The one list of them:
#   scripts/system_packages.sh install  make install: python3-venv while there is no .venv
#   scripts/system_packages.sh run      make run: install's, and redis-server
#   scripts/system_packages.sh bench    make bench: run's, and wrk
#   scripts/system_packages.sh test     make test: bench's, Chromium with Cyrillic fonts, pg_dump
#   scripts/system_packages.sh ci       .ci/run: test's, PostgreSQL, make and docker-compose
# As root it runs apt-get; otherwise it prints the apt-get line to run and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

packages_for() {
  case "$1" in
    install) echo python3-venv ;;
    run) echo "$(packages_for install) redis-server" ;;
    # bench_sign's load generator.
    bench) echo "$(packages_for run) wrk" ;;
    # The browser tests drive /usr/bin/chromium (tests/browser/conftest.py). Nothing Chromium
    # depends on promises a font with Cyrillic glyphs; DejaVu has them, for the Russian pages.
    # The erasure test dumps a PostgreSQL test database with pg_dump to search it for the person.
    test) echo "$(packages_for bench) chromium fonts-dejavu-core postgresql-client" ;;
    # docker-compose: Debian's Compose v1, which checks docker-compose.yml with no Docker engine.
    ci) echo "$(packages_for test) postgresql make docker-compose" ;;
    *) return 1 ;;
  esac
}

redis_answers() {
  # A TCP connect to REDIS_URL's host and port; scripts/redis.sh then checks it is Redis.
  local address="${REDIS_URL:-redis://127.0.0.1:6379/0}"
  address="${address#*://}" && address="${address##*@}" && address="${address%%/*}"
  local host="${address%:*}" port="${address##*:}"
  [ "$port" != "$address" ] || port=6379
  host="${host#[}" && host="${host%]}"
  timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "${host:-127.0.0.1}" "$port" 2>/dev/null
}

installed() {
  case "$1" in
    # Only to make .venv (the Makefile makes it when missing).
    python3-venv) [ -x .venv/bin/python ] || "${PYTHON:-python3}" -c "import ensurepip, venv" ;;
    # Not needed when a Redis already answers, say one in Docker (scripts/redis.sh).
    redis-server) command -v redis-server || redis_answers ;;
    chromium) [ -x /usr/bin/chromium ] ;;
    fonts-dejavu-core) [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] ;;
    postgresql) compgen -G "/usr/lib/postgresql/*/bin/postgres" ;;
    postgresql-client) command -v pg_dump ;;
    *) command -v "$1" ;;
  esac
}

purpose="${1:-}"
if ! wanted=$(packages_for "$purpose"); then
  sed -n '2,8s/^# \{0,1\}//p' "$0" >&2
  exit 2
fi
missing=()
for package in $wanted; do
  installed "$package" >/dev/null 2>&1 || missing+=("$package")
done
((${#missing[@]})) || exit 0

case "$purpose" in
  ci) command_name=.ci/run ;;
  *) command_name="make $purpose" ;;
esac
# Recommends would add printing, power and notification daemons that a headless browser never
# uses.
options=(-y --no-install-recommends)
if ! command -v apt-get >/dev/null; then
  echo "$command_name needs these Debian packages, or your system's own: ${missing[*]}" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "$command_name needs Debian packages that are not installed. Run:" >&2
  echo "  sudo apt-get update && sudo apt-get install ${options[*]} ${missing[*]}" >&2
  exit 1
fi
echo "Installing Debian packages for $command_name: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt-get rather than fail (another checkout's `make test`, say).
lock=(-o DPkg::Lock::Timeout=600)
apt-get update -qq "${lock[@]}"
apt-get install -qq "${lock[@]}" "${options[@]}" "${missing[@]}" >/dev/null
