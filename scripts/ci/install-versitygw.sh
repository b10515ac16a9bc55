#!/usr/bin/env bash
# Installs versitygw (an S3-compatible gateway) from the Go module proxy into
# .tools/bin when missing, and starts it for the integration tests: its posix
# backend on $PROVLOG_CI_DIR/s3 (default /tmp/provlog-ci/s3), loopback only,
# static credentials, path-style requests. Idempotent and fast when it is
# already up. Writes $PROVLOG_CI_DIR/versitygw.env, which exports
#   PROVLOG_TEST_S3_ENDPOINT    http://127.0.0.1:PORT
#   PROVLOG_TEST_S3_ACCESS_KEY  PROVLOG_TEST_S3_SECRET_KEY  PROVLOG_TEST_S3_REGION
#   PROVLOG_TEST_VERSITYGW_BIN  the binary, for tests that run a private one
# Usage: scripts/ci/install-versitygw.sh [stop]
set -euo pipefail
cd "$(dirname "$0")/../.."

version=v1.8.0
dir=${PROVLOG_CI_DIR:-/tmp/provlog-ci}
s3=$dir/s3
envfile=$dir/versitygw.env
bin=$PWD/.tools/bin/versitygw
access=provlogtest
secret=provlogtestsecret

pid() { [[ -f $dir/versitygw.pid ]] && cat "$dir/versitygw.pid"; }
running() {
  local p
  p=$(pid) || return 1
  [[ -n $p ]] && kill -0 "$p" 2>/dev/null && [[ -f $dir/versitygw.port ]] &&
    (exec 3<>"/dev/tcp/127.0.0.1/$(cat "$dir/versitygw.port")") 2>/dev/null
}

if [[ ${1:-} == stop ]]; then
  if running; then
    kill "$(pid)"
  fi
  exit 0
fi

if [[ ! -x $bin || $(cat "$bin.version" 2>/dev/null) != "$version" ]]; then
  echo "install-versitygw: go install github.com/versity/versitygw/cmd/versitygw@$version" >&2
  # Outside the module: versitygw's own go.mod decides its dependencies.
  (cd / && GOBIN=$(dirname "$bin") GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$version")
  echo "$version" >"$bin.version"
fi

# Only after the install: the tests that run a private gateway need this
# checkout's binary even when a gateway (of another checkout) is up.
if [[ -f $envfile ]] && running; then
  sed -i "s|^export PROVLOG_TEST_VERSITYGW_BIN=.*|export PROVLOG_TEST_VERSITYGW_BIN='$bin'|" "$envfile"
  exit 0
fi

mkdir -p "$s3"
free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=""
if [[ -f $dir/versitygw.port ]]; then
  port=$(cat "$dir/versitygw.port")
fi
if [[ -z $port ]] || ! free "$port"; then
  port=""
  for p in $(seq 17070 17169); do
    if free "$p"; then
      port=$p
      break
    fi
  done
fi
[[ -n $port ]] || { echo "install-versitygw: no free port in 17070-17169" >&2; exit 1; }
echo "$port" >"$dir/versitygw.port"

ROOT_ACCESS_KEY=$access ROOT_SECRET_KEY=$secret setsid "$bin" --port "127.0.0.1:$port" --region us-east-1 \
  posix "$s3" </dev/null >"$dir/versitygw.log" 2>&1 &
echo $! >"$dir/versitygw.pid"
for _ in $(seq 1 100); do
  if running; then
    break
  fi
  sleep 0.1
done
if ! running; then
  echo "install-versitygw: versitygw did not start; $dir/versitygw.log:" >&2
  tail -20 "$dir/versitygw.log" >&2 || true
  exit 1
fi
cat >"$envfile" <<ENV
export PROVLOG_TEST_S3_ENDPOINT='http://127.0.0.1:$port'
export PROVLOG_TEST_S3_ACCESS_KEY='$access'
export PROVLOG_TEST_S3_SECRET_KEY='$secret'
export PROVLOG_TEST_S3_REGION='us-east-1'
export PROVLOG_TEST_VERSITYGW_BIN='$bin'
ENV
echo "install-versitygw: versitygw $version up on 127.0.0.1:$port (posix backend on $s3)" >&2
