#!/usr/bin/env bash
# A/B of provlogd builds under the same load: for each git revision given
# (WT = the working tree), builds provlogd, starts it on a fresh data dir,
# drives it with this checkout's provbench (batch, 64 x 100, no baseline)
# for DURATION (default 15s), and prints its throughput, the CPU seconds
# provlogd used meanwhile, and how far the lineage index got. With COUNT=N
# it instead appends N events and waits for the lineage index to cover
# them: CPU per event then includes indexing everything appended.
# Runs are in the order given: interleave revisions (A B A B) on a shared VM.
# Usage: [DURATION=15s | COUNT=100000] [PROVLOGD_FLAGS=...] scripts/bench-ab.sh REV...
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/provlog-ab.XXXXXX")
source scripts/lib/bench.sh
trap 'stop_all; rm -rf "$work"' EXIT
go build -o "$work/provbench" ./cmd/provbench
for rev in "$@"; do
  bin="$work/provlogd-$rev"
  [[ -x $bin ]] && continue
  if [[ $rev == WT ]]; then go build -o "$bin" ./cmd/provlogd; continue; fi
  git worktree add -q --detach "$work/src" "$rev"
  (cd "$work/src" && go build -o "$bin" ./cmd/provlogd)
  git worktree remove --force "$work/src"
done
hz=$(getconf CLK_TCK)
limit=(--duration "${DURATION:-15s}")
if [[ -n ${COUNT:-} ]]; then limit=(--count "$COUNT" --duration 30m); fi
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); ${limit[*]} ${PROVLOGD_FLAGS:-}"
for rev in "$@"; do
  rm -rf "$work/data"
  grpc=127.0.0.1:$(free_port) http=127.0.0.1:$(free_port)
  # shellcheck disable=SC2086 # PROVLOGD_FLAGS is a list of flags
  "$work/provlogd-$rev" --data-dir "$work/data" --grpc-addr "$grpc" --http-addr "$http" --log-level warn ${PROVLOGD_FLAGS:-} 2>"$work/provlogd.log" &
  pid=$!
  pids+=("$pid")
  wait_healthy "http://$http/healthz" "$pid" provlogd "$work/provlogd.log"
  t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  line=$("$work/provbench" --data-dir "$work/data" --grpc-addr "$grpc" --log-level warn --mode batch \
    --concurrency 64 --batch-size 100 --baseline=false "${limit[@]}" | awk '$1 == "provlog" && $2 == "batch"')
  metrics() { curl -fsS -H "Authorization: Bearer $(cat "$work/data/admin.token")" "http://$http/metrics"; }
  # The log holds the events appended and provbench's one probe event.
  size=$(($(awk '{print $4}' <<<"$line") + 1))
  if [[ -n ${COUNT:-} ]]; then
    for _ in $(seq 1200); do
      wm=$(metrics | awk '/^provlog_lineage_watermark /{print $2}')
      awk -v w="$wm" -v s="$size" 'BEGIN{exit !(w+0 >= s+0)}' && break
      sleep 0.5
    done
  fi
  t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  wm=$(metrics | awk '/^provlog_lineage_watermark /{print $2}')
  kill -INT "$pid"; wait "$pid" || true
  read -r events secs evs p50 p99 < <(awk '{print $4, $5, $6, $7, $9}' <<<"$line")
  awk -v r="$rev" -v e="$events" -v s="$secs" -v v="$evs" -v p50="$p50" -v p99="$p99" -v t=$((t1 - t0)) -v hz="$hz" -v wm="$wm" -v sz="$size" 'BEGIN {
    printf "%-10s %8d events %6.1f s %7d ev/s  p50/p99 %s/%s ms  provlogd cpu %6.1f s = %5.1f us/event  lineage at %d of %d\n", r, e, s, v, p50, p99, t/hz, t/hz/e*1e6, wm, sz }'
done
