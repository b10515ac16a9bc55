#!/usr/bin/env bash
# Profiles provlogd under the benchmark's load, and bare tessera under the
# same load: builds provlogd and provbench with -tags pprof (which serve
# net/http/pprof on a loopback port), runs a provlog phase and then a
# baseline phase (provbench --only-baseline), and during each takes a 3 s
# execution trace and then an 8 s CPU profile of the process that appends.
# Then internal/schedtrace shows, for both, how tessera's sequencing
# goroutine (the one that writes every batch) spent its time, and what ran
# while it waited for a CPU (BENCHMARKS.md, "Why provlogd sequences slower
# than bare tessera").
# Usage: [OUT=dir] [PROVLOGD_FLAGS=...] scripts/profile.sh [provbench flags...]
#        (default: --mode batch --duration 20s --concurrency 64 --batch-size 100)
# The profiles and traces stay in OUT (default a new directory under
# $TMPDIR): go tool pprof OUT/provlogd.cpu.pprof, go tool trace OUT/provlogd.trace.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/provlog-profile-work.XXXXXX")
out=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/provlog-profile.XXXXXX")}
mkdir -p "$out"
source scripts/lib/bench.sh
trap 'stop_all; rm -rf "$work"' EXIT
go build -tags pprof -o "$work/provlogd" ./cmd/provlogd
go build -tags pprof -o "$work/provbench" ./cmd/provbench
go build -o "$work/schedtrace" ./internal/schedtrace
if [[ $# -eq 0 ]]; then set -- --mode batch --duration 20s --concurrency 64 --batch-size 100; fi

# capture ADDR NAME: after the warm-up, a trace and then a CPU profile of
# the process serving pprof at ADDR (one after the other: tracing would
# weigh on the profile).
capture() {
  sleep "${PROFILE_DELAY:-4}"
  curl -fsS -o "$out/$2.trace" "http://$1/debug/pprof/trace?seconds=3"
  curl -fsS -o "$out/$2.cpu.pprof" "http://$1/debug/pprof/profile?seconds=8"
}

provlogd_pprof=127.0.0.1:$(free_port)
# shellcheck disable=SC2086 # PROVLOGD_FLAGS is a list of flags
PROVLOGD_PPROF_ADDR=$provlogd_pprof start_provlogd ${PROVLOGD_FLAGS:-}
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); provbench $*"

capture "$provlogd_pprof" provlogd &
cap=$!
"$work/provbench" --data-dir "$work/data" --grpc-addr "$grpc_addr" --log-level warn --baseline=false "$@"
wait "$cap"

bench_pprof=127.0.0.1:$(free_port)
capture "$bench_pprof" baseline &
cap=$!
PROVBENCH_PPROF_ADDR=$bench_pprof "$work/provbench" --data-dir "$work/data" --log-level warn --only-baseline "$@"
wait "$cap"

echo
echo "== provlogd: tessera's sequencing goroutine"
"$work/schedtrace" "$out/provlogd.trace"
echo
echo "== bare tessera (provbench --only-baseline): its sequencing goroutine"
"$work/schedtrace" "$out/baseline.trace"
echo
echo "profiles and traces in $out"
