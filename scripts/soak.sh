#!/usr/bin/env bash
# Memory soak: starts a fresh provlogd on loopback (as scripts/bench.sh
# does, WITNESSES and PROVLOGD_FLAGS included), keeps cmd/provbench
# appending to it for DURATION (default 10m), and samples provlogd's RSS
# (VmRSS of /proc/PID/status), the log's published size, the memory the
# embedded pebble stores hold outside the Go heap (provlog_pebble_memory_bytes)
# and the Go heap in use every INTERVAL (default 10s) into a CSV. At the end
# it prints the first, last and largest RSS and the slopes of RSS, and of RSS
# minus pebble's memory, over the second half of the run (least squares),
# which is what "RSS flat" is judged on: the first half lets caches and the
# Go heap reach their working size, and pebble's block caches keep filling
# (up to their fixed capacity) as the stores grow.
# Usage: [INTERVAL=10s] [CSV=file] [WITNESSES=N] [PROVLOGD_FLAGS=...] \
#          scripts/soak.sh [DURATION] [provbench flags...]
#        (default load: --mode batch --concurrency 16 --batch-size 100)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=10m
if [[ $# -gt 0 && $1 =~ ^[0-9]+[smh]$ ]]; then duration=$1; shift; fi
secs() { # secs 10m -> 600
  local n=${1%[smh]}
  case ${1: -1} in s) echo "$n" ;; m) echo $((n * 60)) ;; h) echo $((n * 3600)) ;; esac
}
interval=$(secs "${INTERVAL:-10s}")
total=$(secs "$duration")
csv=${CSV:-${TMPDIR:-/tmp}/provlog-soak-$(date -u +%Y%m%dT%H%M%SZ).csv}
work=$(mktemp -d "${TMPDIR:-/tmp}/provlog-soak.XXXXXX")
source scripts/lib/bench.sh
bench=""
trap '[[ -n $bench ]] && kill -INT "$bench" 2>/dev/null; stop_all; rm -rf "$work"' EXIT
build_bins
# shellcheck disable=SC2086 # PROVLOGD_FLAGS is a list of flags
start_provlogd ${PROVLOGD_FLAGS:-}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "soak: ${duration} of load on provlogd (pid $provlogd_pid, ${WITNESSES:-0} witness(es)), RSS every ${interval}s into $csv"
if [[ $# -eq 0 ]]; then
  set -- --mode batch --concurrency 16 --batch-size 100
fi
"$work/provbench" --data-dir "$work/data" --grpc-addr "$grpc_addr" --log-level warn --baseline=false --index-wait 0 \
  --duration "$duration" --json "$@" >"$work/provbench.json" 2>"$work/provbench.log" &
bench=$!

rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$provlogd_pid/status"; }
tree_size() { curl -fsS "http://$http_addr/log/checkpoint" 2>/dev/null | sed -n 2p || true; }
# pebble_kib: what the embedded stores hold outside the Go heap (block
# caches filling to their fixed capacity, memtables); heap_kib: the Go heap
# in use. RSS minus pebble_kib is what a leak would make grow.
mem_kib() {
  curl -fsS -H "Authorization: Bearer $(cat "$work/data/admin.token")" "http://$http_addr/metrics" 2>/dev/null |
    awk '/^provlog_pebble_memory_bytes/ {p += $NF} /^go_memstats_heap_inuse_bytes / {h = $NF} END {printf "%d,%d", p / 1024, h / 1024}' || echo ","
}
echo "elapsed_s,rss_kib,tree_size,pebble_kib,heap_kib" >"$csv"
start=$(date +%s)
k=0
while :; do
  now=$(date +%s)
  if ! kill -0 "$provlogd_pid" 2>/dev/null; then
    echo "provlogd exited during the soak:" >&2
    cat "$work/provlogd.log" >&2
    exit 1
  fi
  echo "$((now - start)),$(rss_kib),$(tree_size),$(mem_kib)" >>"$csv"
  if ! kill -0 "$bench" 2>/dev/null || [[ $((now - start)) -ge $((total + interval)) ]]; then break; fi
  k=$((k + 1))
  sleep $((start + k * interval - $(date +%s) > 0 ? start + k * interval - $(date +%s) : 0))
done
if ! wait "$bench"; then
  echo "provbench failed:" >&2
  cat "$work/provbench.log" >&2
  exit 1
fi
bench=""
grep -o '"events_per_second": [0-9.]*' "$work/provbench.json" | head -1 | sed 's/"events_per_second": /provbench: events\/s /' || true
awk -F, -v half=$((total / 2)) '
  function slope(sx, sy, sxx, sxy, m) { # KiB per second, least squares
    return (m >= 2 && m * sxx - sx * sx > 0) ? (m * sxy - sx * sy) / (m * sxx - sx * sx) : "none"
  }
  function say(what, s, m) {
    if (s == "none") { printf "%s slope over the second half: too few samples\n", what; return }
    printf "%s slope over the second half (%d samples): %+.2f MiB/hour (%+.1f KiB/min)\n", what, m, s * 3600 / 1024, s * 60
  }
  NR == 1 { next }
  { n++; t[n] = $1; r[n] = $2; if ($2 > max) max = $2; if (n == 1) first = $2; last = $2; size = $3; lastp = $4; lasth = $5 }
  $1 >= half {
    m++; sx += $1; sy += $2; sxx += $1 * $1; sxy += $1 * $2
    o = $2 - $4; oy += o; oxy += $1 * o
  }
  END {
    printf "samples: %d over %ds; log size at the end: %s leaves\n", n, t[n], size
    printf "RSS first %.1f MiB, last %.1f MiB, max %.1f MiB; at the end pebble (block caches, memtables) %.1f MiB, Go heap in use %.1f MiB\n", first / 1024, last / 1024, max / 1024, lastp / 1024, lasth / 1024
    say("RSS", slope(sx, sy, sxx, sxy, m), m)
    say("RSS minus pebble", slope(sx, oy, sxx, oxy, m), m)
  }' "$csv"
echo "csv: $csv"
