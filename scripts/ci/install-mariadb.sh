#!/usr/bin/env bash
# Installs Debian's mariadb-server when it is missing and starts a private
# mariadbd for the integration tests: loopback only, its own datadir, socket
# and port under $PROVLOG_CI_DIR (default /tmp/provlog-ci), run as the mysql
# user (mariadbd refuses to run as root). Idempotent and fast when the
# server is already up. Writes $PROVLOG_CI_DIR/mariadb.env, which exports
#   PROVLOG_TEST_MYSQL_DSN  a go-sql-driver DSN without a database name
#                           (user provlog, all privileges, over TCP)
# Needs root (or sudo) to install. Usage: scripts/ci/install-mariadb.sh [stop]
set -euo pipefail

dir=${PROVLOG_CI_DIR:-/tmp/provlog-ci}
db=$dir/mariadb
sock=$db/mysqld.sock
envfile=$dir/mariadb.env
sudo=""
if [[ $(id -u) != 0 ]]; then
  sudo="sudo"
fi

running() {
  [[ -S $sock ]] && $sudo mariadb-admin --socket="$sock" --user=root --connect-timeout=2 ping >/dev/null 2>&1
}

if [[ ${1:-} == stop ]]; then
  if running; then
    $sudo mariadb-admin --socket="$sock" --user=root shutdown
  fi
  exit 0
fi

if [[ -f $envfile ]] && running; then
  exit 0
fi

if ! command -v mariadbd >/dev/null; then
  echo "install-mariadb: installing mariadb-server" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends mariadb-server >/dev/null
fi
# Debian's package starts its own server where systemd runs; ours is separate.

mkdir -p "$dir"
$sudo mkdir -p "$db"
$sudo chown mysql:mysql "$db"
if [[ ! -d $db/data/mysql ]]; then
  $sudo mariadb-install-db --user=mysql --datadir="$db/data" --auth-root-authentication-method=socket \
    --skip-test-db >"$dir/mariadb-install.log" 2>&1 || {
    cat "$dir/mariadb-install.log" >&2
    exit 1
  }
fi

# A free loopback port, kept across restarts of the server.
port=""
if [[ -f $db/port ]]; then
  port=$(cat "$db/port")
fi
free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [[ -z $port ]] || ! free "$port"; then
  for p in $(seq 13306 13399); do
    if free "$p"; then
      port=$p
      break
    fi
  done
fi
[[ -n $port ]] || { echo "install-mariadb: no free port in 13306-13399" >&2; exit 1; }
echo "$port" | $sudo tee "$db/port" >/dev/null

$sudo rm -f "$sock"
# setsid: the server outlives this script and the test run (CI ends it).
$sudo setsid mariadbd --no-defaults --user=mysql --datadir="$db/data" --socket="$sock" \
  --bind-address=127.0.0.1 --port="$port" --pid-file="$db/mariadbd.pid" --log-error="$db/error.log" \
  --innodb-buffer-pool-size=128M --innodb-flush-log-at-trx-commit=1 --max-connections=500 \
  </dev/null >/dev/null 2>&1 &
for _ in $(seq 1 300); do
  if running; then
    break
  fi
  sleep 0.1
done
if ! running; then
  echo "install-mariadb: mariadbd did not start; $db/error.log:" >&2
  $sudo tail -20 "$db/error.log" >&2 || true
  exit 1
fi
$sudo mariadb --socket="$sock" --user=root <<'SQL'
CREATE USER IF NOT EXISTS 'provlog'@'127.0.0.1' IDENTIFIED BY 'provlog';
GRANT ALL PRIVILEGES ON *.* TO 'provlog'@'127.0.0.1';
SQL
echo "export PROVLOG_TEST_MYSQL_DSN='provlog:provlog@tcp(127.0.0.1:$port)/'" >"$envfile"
echo "install-mariadb: mariadbd up on 127.0.0.1:$port (datadir $db/data)" >&2
