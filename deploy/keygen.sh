#!/usr/bin/env bash
# keygen.sh OUT ORIGIN ID=URL [ID=URL...]
#
# Makes the keys and configuration a deployment needs before its first start,
# so that the log's policy can name its witnesses and the witnesses can name
# the log (deploy/k8s, deploy/compose; deploy/RUNBOOK.md):
#
#   OUT/log/log.key, log.pub, admin.token   the log's keys (provlogd creates
#                                           them: started once, then stopped)
#   OUT/witness-ID/witness.key, witness.pub one key per witness ID, named
#                                           "${ORIGIN%%/*}/witness/ID"
#   OUT/witness-policy.txt                  for provlogd --witness-policy:
#                                           every witness at its URL, quorum
#                                           a majority (QUORUM=N to change)
#   OUT/provwitness.conf                    for provwitness --config
#
# provlogd and provwitness are taken from $PROVLOGD and $PROVWITNESS, else
# from PATH, else built from this checkout with go build. Existing keys in
# OUT are kept: running it again only rewrites the two text files.
set -euo pipefail

if [[ $# -lt 3 ]]; then
  echo "usage: keygen.sh OUT ORIGIN ID=URL [ID=URL...]" >&2
  exit 2
fi
out=$1 origin=$2
shift 2

tmp=$(mktemp -d)
pid=
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

bin() { # bin NAME VAR: the binary to run
  local name=$1 given=$2
  if [[ -n $given ]]; then echo "$given"; return; fi
  if command -v "$name" >/dev/null; then command -v "$name"; return; fi
  (cd "$(dirname "$0")/.." && go build -o "$tmp/$name" "./cmd/$name") >&2
  echo "$tmp/$name"
}

# start_until FILE... -- CMD...: runs CMD until every FILE exists, then stops
# it with SIGINT (a clean shutdown) and waits.
start_until() {
  local files=()
  while [[ $1 != -- ]]; do files+=("$1"); shift; done
  shift
  "$@" >"$tmp/out.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    local all=1
    for f in "${files[@]}"; do [[ -s $f ]] || all=0; done
    if [[ $all == 1 ]]; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "keygen.sh: $1 exited early:" >&2
      cat "$tmp/out.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  kill -INT "$pid"
  wait "$pid" || true
  pid=
  for f in "${files[@]}"; do
    [[ -s $f ]] || { echo "keygen.sh: $f was not created" >&2; cat "$tmp/out.log" >&2; exit 1; }
  done
}

mkdir -p "$out/log"
chmod 0700 "$out" "$out/log"
if [[ ! -s $out/log/log.key ]]; then
  provlogd=$(bin provlogd "${PROVLOGD:-}")
  start_until "$tmp/log/log.key" "$tmp/log/log.pub" "$tmp/log/admin.token" -- \
    "$provlogd" --data-dir "$tmp/log" --origin "$origin" \
    --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --log-level warn
  # Only the keys: the empty log it made is not needed.
  cp -p "$tmp/log/log.key" "$tmp/log/admin.token" "$tmp/log/log.pub" "$out/log/"
fi
vkey=$(cat "$out/log/log.pub")
if [[ ${vkey%%+*} != "$origin" ]]; then
  echo "keygen.sh: $out/log/log.pub is for origin ${vkey%%+*}, not $origin" >&2
  exit 1
fi

printf 'log %s %s\n' "$origin" "$vkey" >"$tmp/provwitness.conf"
policy=()
ids=()
for arg in "$@"; do
  id=${arg%%=*} url=${arg#*=}
  if [[ $arg != *=* || -z $id || -z $url ]]; then
    echo "keygen.sh: want ID=URL, got $arg" >&2
    exit 2
  fi
  dir=$out/witness-$id
  mkdir -p "$dir"
  chmod 0700 "$dir"
  if [[ ! -s $dir/witness.key ]]; then
    provwitness=$(bin provwitness "${PROVWITNESS:-}")
    rm -rf "$tmp/w"
    start_until "$tmp/w/witness.key" "$tmp/w/witness.pub" -- \
      "$provwitness" --data-dir "$tmp/w" --name "${origin%%/*}/witness/$id" \
      --addr 127.0.0.1:0 --config "$tmp/provwitness.conf" --log-level warn
    cp -p "$tmp/w/witness.key" "$tmp/w/witness.pub" "$dir/"
  fi
  policy+=("witness $id $(cat "$dir/witness.pub") $url")
  ids+=("$id")
done

n=${#ids[@]}
quorum=${QUORUM:-$((n / 2 + 1))}
{
  echo "# Witness policy for $origin, made by deploy/keygen.sh."
  printf '%s\n' "${policy[@]}"
  if [[ $n == 1 ]]; then
    echo "quorum ${ids[0]}"
  else
    echo "group witnesses $quorum ${ids[*]}"
    echo "quorum witnesses"
  fi
} >"$out/witness-policy.txt"
cp "$tmp/provwitness.conf" "$out/provwitness.conf"
echo "keygen.sh: wrote $out (log key $vkey; $n witness(es), quorum $quorum)"
