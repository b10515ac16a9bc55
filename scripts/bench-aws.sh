#!/usr/bin/env bash
# Side-by-side append benchmark on the distributed backend: starts the test
# MariaDB and versitygw (scripts/ci/services.sh), a fresh provlogd
# --storage aws on a new database and bucket, and runs cmd/provbench against
# it and against bare tessera's AWS driver on the same two services in the
# same run. With FRONTENDS=2 it starts a second provlogd on the same
# database and bucket, and provbench's callers take the two frontends
# round-robin (--grpc-addr A,B): the provlog rows are the total of both.
# Usage: [FRONTENDS=2] scripts/bench-aws.sh [provbench flags...]  (default: batch mode, 15s)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ci/services.sh
export AWS_ACCESS_KEY_ID=$PROVLOG_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$PROVLOG_TEST_S3_SECRET_KEY
export AWS_REGION=$PROVLOG_TEST_S3_REGION AWS_EC2_METADATA_DISABLED=true
sock=${PROVLOG_CI_DIR:-/tmp/provlog-ci}/mariadb/mysqld.sock
run=provbench_$(date +%s)_$$
work=$(mktemp -d "${TMPDIR:-/tmp}/provlog-bench-aws.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  mariadb --socket="$sock" --user=root -e "DROP DATABASE IF EXISTS $run" || true
  rm -rf "$work"
}
trap cleanup EXIT
mariadb --socket="$sock" --user=root -e "CREATE DATABASE $run"
for b in "${run//_/-}" "${run//_/-}-baseline"; do
  curl -fsS --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -X PUT "$PROVLOG_TEST_S3_ENDPOINT/$b"
done
dsn_server=$PROVLOG_TEST_MYSQL_DSN
dsn=${dsn_server%/}/$run
go build -o "$work/provlogd" ./cmd/provlogd
go build -o "$work/provbench" ./cmd/provbench

free_port() {
  local p
  for p in $(shuf -i 20000-29999 -n 50); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  return 1
}
start() { # start N: provlogd number N on data dir $work/dataN
  local n=$1 grpc http
  grpc=$(free_port) http=$(free_port)
  mkdir -p "$work/data$n"
  if [[ $n -gt 1 ]]; then cp -p "$work/data1/log.key" "$work/data1/log.pub" "$work/data1/admin.token" "$work/data$n/"; fi
  "$work/provlogd" --data-dir "$work/data$n" --grpc-addr "127.0.0.1:$grpc" --http-addr "127.0.0.1:$http" \
    --storage aws --mysql-dsn "$dsn" --s3-endpoint "$PROVLOG_TEST_S3_ENDPOINT" --s3-bucket "${run//_/-}" \
    --log-level warn 2>"$work/provlogd$n.log" &
  pids+=($!)
  for _ in $(seq 300); do
    curl -fsS "http://127.0.0.1:$http/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  if ! curl -fsS "http://127.0.0.1:$http/healthz" >/dev/null 2>&1; then
    echo "provlogd $n did not start:" >&2
    cat "$work/provlogd$n.log" >&2
    exit 1
  fi
  echo "127.0.0.1:$grpc" >"$work/grpc$n"
}
start 1
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $# -eq 0 ]]; then
  set -- --mode batch --duration 15s --concurrency 64 --batch-size 100
fi
addrs=$(cat "$work/grpc1")
if [[ ${FRONTENDS:-1} == 2 ]]; then
  start 2
  addrs=$addrs,$(cat "$work/grpc2")
fi
"$work/provbench" --data-dir "$work/data1" --grpc-addr "$addrs" --log-level warn \
  --baseline-storage aws --baseline-mysql-dsn "$dsn_server" --baseline-s3-endpoint "$PROVLOG_TEST_S3_ENDPOINT" \
  --baseline-s3-bucket "${run//_/-}-baseline" "$@"
