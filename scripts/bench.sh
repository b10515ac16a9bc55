#!/usr/bin/env bash
# Side-by-side append benchmark: starts a fresh provlogd on loopback (free
# ports, a vault so that --events sensitive works), runs cmd/provbench
# against it and bare tessera on the same filesystem in the same run, prints
# the table and the provlog/tessera ratio, stops everything.
# With WITNESSES=1 or 2 it also starts that many real provwitness processes
# and makes provlogd publish only checkpoints all of them cosigned; appends
# waiting for publication (--wait published, the default then) measure the
# time to a witnessed checkpoint.
# PROVLOGD_FLAGS adds provlogd flags (e.g. "--checkpoint-interval 500ms").
# Usage: [WITNESSES=N] [PROVLOGD_FLAGS=...] scripts/bench.sh [provbench flags...]
#        (default: batch mode, 15s)
# ROUNDS=N (default 3) repeats provbench N times against the same provlogd,
# each round a provlog phase then a baseline phase, and prints every round's
# ratio and their median: on a shared VM one round's ratio swings by +-0.15.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/provlog-bench.XXXXXX")
source scripts/lib/bench.sh
trap 'stop_all; rm -rf "$work"' EXIT
build_bins
# shellcheck disable=SC2086 # PROVLOGD_FLAGS is a list of flags
start_provlogd ${PROVLOGD_FLAGS:-}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "provlogd: ${WITNESSES:-0} witness(es) ${PROVLOGD_FLAGS:-}"
if [[ $# -eq 0 ]]; then
  set -- --mode batch --duration 15s --concurrency 64 --batch-size 100
  if [[ ${WITNESSES:-0} -gt 0 ]]; then set -- "$@" --wait published; fi
fi
rounds=${ROUNDS:-3}
ratios=() sustained=()
for r in $(seq "$rounds"); do
  echo "--- round $r of $rounds (load $(cut -d' ' -f1-3 /proc/loadavg))"
  "$work/provbench" --data-dir "$work/data" --grpc-addr "$grpc_addr" --log-level warn "$@" | tee "$work/round.txt"
  while read -r ratio; do ratios+=("$ratio"); done < <(awk '/^provlog\/tessera [a-z]+:/ {print $NF}' "$work/round.txt")
  while read -r ratio; do sustained+=("$ratio"); done < <(awk '/^provlog\/tessera [a-z]+ sustained:/ {print $NF}' "$work/round.txt")
done
median() {
  sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}
if [[ ${#ratios[@]} -gt 1 ]]; then
  echo "ratios: $(printf '%s\n' "${ratios[@]}" | sort -n | tr "\n" " ") median: $(printf '%s\n' "${ratios[@]}" | median)"
fi
if [[ ${#sustained[@]} -gt 1 ]]; then
  echo "sustained ratios (lineage index caught up): $(printf '%s\n' "${sustained[@]}" | sort -n | tr "\n" " ") median: $(printf '%s\n' "${sustained[@]}" | median)"
fi
