# shellcheck shell=bash
# Shared by scripts/bench.sh and scripts/soak.sh (source it): free loopback
# ports, and starting provlogd and provwitness processes that the caller's
# EXIT trap stops (stop_all).
# Expects $work (a scratch directory) to be set by the caller.
: "${work:?set work to a scratch directory before sourcing scripts/lib/bench.sh}"

pids=()

# free_port prints a TCP port nothing listens on at 127.0.0.1.
free_port() {
  local p
  for p in $(shuf -i 20000-29999 -n 50); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  return 1
}

# wait_healthy URL PID NAME LOG: until URL answers, or fail with NAME's log.
wait_healthy() {
  local url=$1 pid=$2 name=$3 log=$4
  for _ in $(seq 300); do
    curl -fsS "$url" >/dev/null 2>&1 && return 0
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "$name did not start:" >&2
  cat "$log" >&2
  return 1
}

# stop_all sends SIGINT to every process started here and waits for it.
stop_all() {
  local p
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}

# build_bins builds provlogd, provwitness and provbench into $work.
build_bins() {
  go build -o "$work/provlogd" ./cmd/provlogd
  go build -o "$work/provwitness" ./cmd/provwitness
  go build -o "$work/provbench" ./cmd/provbench
}

# start_provlogd ARGS...: starts provlogd on $work/data with free ports and
# a vault (so -events sensitive works; plain events never touch it), sets
# provlogd_pid, grpc_addr and http_addr. With WITNESSES=N (1 or 2) it first
# creates the log's keys, starts N provwitness processes that witness the
# log, and makes provlogd publish only checkpoints all N have cosigned.
start_provlogd() {
  local origin=bench.provlog.local/log policy="" n=${WITNESSES:-0} i
  grpc_addr=127.0.0.1:$(free_port) http_addr=127.0.0.1:$(free_port)
  local base=(--data-dir "$work/data" --origin "$origin" --grpc-addr "$grpc_addr" --http-addr "$http_addr"
    --vault-master-key "$work/vault.key" --log-level warn)
  if [[ $n -gt 0 ]]; then
    # A first start creates log.key, log.pub and admin.token.
    "$work/provlogd" "${base[@]}" 2>"$work/provlogd-init.log" &
    local init=$!
    wait_healthy "http://$http_addr/healthz" "$init" provlogd "$work/provlogd-init.log"
    kill -INT "$init"; wait "$init"
    policy=$work/witnesses.policy
    : >"$policy"
    local names=()
    for i in $(seq "$n"); do
      local waddr
      waddr=127.0.0.1:$(free_port)
      "$work/provwitness" --data-dir "$work/witness$i" --addr "$waddr" --name "w$i.bench.provlog.local/witness" \
        --log "$origin $(cat "$work/data/log.pub")" 2>"$work/provwitness$i.log" &
      pids+=($!)
      wait_healthy "http://$waddr/healthz" "$!" "provwitness $i" "$work/provwitness$i.log"
      echo "witness w$i $(cat "$work/witness$i/witness.pub") http://$waddr/" >>"$policy"
      names+=("w$i")
    done
    echo "group witnesses $n ${names[*]}" >>"$policy"
    echo "quorum witnesses" >>"$policy"
    base+=(--witness-policy "$policy")
  fi
  "$work/provlogd" "${base[@]}" "$@" 2>"$work/provlogd.log" &
  provlogd_pid=$!
  pids+=("$provlogd_pid")
  wait_healthy "http://$http_addr/healthz" "$provlogd_pid" provlogd "$work/provlogd.log"
}
