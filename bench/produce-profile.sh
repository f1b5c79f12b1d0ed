#!/usr/bin/env bash
# produce-profile.sh: where the broker's time goes producing to many new
# partitions (issue 13). Starts chronik-server with --enable-pprof on a fresh
# data dir under /tmp, creates N partitions over 20 topics (scale-0..19) and
# a 3-partition topic (base), runs the raw produce of bench/scale.sh (one
# pre-encoded 256 B record per request to a random partition, 128 senders,
# acks=all) against base and then against the N partitions, and takes a CPU
# profile of the broker during the second run. Prints msg/s, p99 and max of
# both runs, RSS and open descriptors; leaves the profile in
# $OUT/cpu.pprof (go tool pprof -top bin/chronik-server $OUT/cpu.pprof) and
# deletes the data dir.
#
#   [N=100000] [D=15s] [PS=10] [SRV=bin/chronik-server] [OUT=/tmp/chronik-profile] bench/produce-profile.sh
#
# D is each measured run (after 3 s of warm-up), PS the profile's seconds
# (taken from 5 s into the run). BROKER_ARGS (env) are added to the broker's
# command line.
set -euo pipefail
N=${N:-100000}
per=$(( (N + 19) / 20 ))
port=${PORT:-19600}
mport=$((port + 1))
root=$(cd "$(dirname "$0")/.." && pwd)
w=${OUT:-/tmp/chronik-profile}
srv=${SRV:-$root/bin/chronik-server}
rm -rf "$w"
mkdir -p "$w"
(cd "$root" && go build -o "$w/bench" ./cmd/chronik-bench && go build -o "$w/scale" ./bench/scale)
"$srv" start --data-dir "$w/data" --bind 127.0.0.1 --kafka-port "$port" --metrics-port "$mport" --enable-pprof \
  --log-level warn ${BROKER_ARGS:-} >"$w/broker.log" 2>&1 &
pid=$!
trap 'kill -KILL $pid 2>/dev/null || true; rm -rf "$w/data"' EXIT
"$w/scale" wait -b "127.0.0.1:$port" -topics "" -timeout 1m >/dev/null
topics=$(seq -s, -f 'scale-%g' 0 19)
t0=$(date +%s.%N)
"$w/scale" create -b "127.0.0.1:$port" -topics "$topics" -partitions "$per" -timeout 60m >/dev/null
echo "create $N partitions: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
"$w/scale" create -b "127.0.0.1:$port" -topics base -partitions 3 >/dev/null
run() { # run NAME ARGS...
  local name=$1; shift
  "$w/bench" -b "127.0.0.1:$port" -m produce --prebuilt-batches --batch-size 1 -c 128 -s 256 --acks all \
    -d "${D:-15s}" -w 3s --create-topic=false --report-interval 0 --json-output "$w/$name.json" "$@" >"$w/$name.out"
  echo "$name: $(grep -oE '"(msgs_per_sec|p99_ms|max_ms)": [0-9.]+' "$w/$name.json" | tr '\n' ' ')"
}
run base -t base
(sleep 5; curl -s -o "$w/cpu.pprof" "http://127.0.0.1:$mport/debug/pprof/profile?seconds=${PS:-10}") &
cpid=$!
run scale -t scale --topic-count 20
wait $cpid
echo "RSS $(awk '/^VmRSS/ {print $2 / 1024}' /proc/$pid/status) MB, $(ls /proc/$pid/fd | wc -l) fds; profile $w/cpu.pprof"
kill -TERM $pid
for _ in $(seq 600); do
  [ -e /proc/$pid ] || break
  grep -q 'State:.*Z' /proc/$pid/status 2>/dev/null && break
  sleep 0.1
done
