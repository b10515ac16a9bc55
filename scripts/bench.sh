#!/usr/bin/env bash
# Side-by-side append benchmark: starts a fresh provlogd on loopback, runs
# cmd/provbench against it and bare tessera on the same filesystem in the
# same run, prints the table and the provlog/tessera ratio, stops provlogd.
# Usage: scripts/bench.sh [provbench flags...]  (default: batch mode, 15s)
# ROUNDS=N (default 3) repeats provbench N times against the same provlogd,
# each round a provlog phase then a baseline phase, and prints every round's
# ratio and their median: on a shared VM one round's ratio swings by +-0.15.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/provlog-bench.XXXXXX")
trap 'kill -INT $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/provlogd" ./cmd/provlogd
go build -o "$work/provbench" ./cmd/provbench
"$work/provlogd" --data-dir "$work/data" --grpc-addr 127.0.0.1:18090 --http-addr 127.0.0.1:18080 \
  --log-level warn 2>"$work/provlogd.log" &
pid=$!
for _ in $(seq 100); do
  curl -fsS http://127.0.0.1:18080/healthz >/dev/null 2>&1 && break
  sleep 0.1
done
if ! kill -0 "$pid" 2>/dev/null; then
  echo "provlogd did not start:" >&2
  cat "$work/provlogd.log" >&2
  exit 1
fi
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $# -eq 0 ]]; then
  set -- --mode batch --duration 15s --concurrency 64 --batch-size 100
fi
rounds=${ROUNDS:-3}
ratios=()
for r in $(seq "$rounds"); do
  echo "--- round $r of $rounds (load $(cut -d' ' -f1-3 /proc/loadavg))"
  "$work/provbench" --data-dir "$work/data" --grpc-addr 127.0.0.1:18090 --log-level warn "$@" | tee "$work/round.txt"
  while read -r ratio; do ratios+=("$ratio"); done < <(awk '/^provlog\/tessera/ {print $NF}' "$work/round.txt")
done
if [[ ${#ratios[@]} -gt 1 ]]; then
  sorted=$(printf '%s\n' "${ratios[@]}" | sort -n)
  echo "ratios: $(echo $sorted)  median: $(echo "$sorted" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')"
fi
