#!/usr/bin/env bash
# idle-memory.sh: what many partitions cost once they go idle (issue 13).
# For each binary in turn: a fresh data dir, P partitions over 20 topics,
# raw produce (one pre-encoded record per request, 128 senders, random
# partitions) for D, then idle for W with recovery checkpoints every C.
# Reports, at the end of the load and after the idle time: Go heap in use
# and RSS of the broker, its open partitions and open descriptors; then the
# time a clean stop (SIGTERM) takes, and deletes the data dir.
#
#   bench/idle-memory.sh [-p P] [-d D] [-w W] [-c C_MS] BIN...
#
# Defaults: P=20000, D=15s, W=25s, C=5000 (ms; the broker's
# --log-flush-offset-checkpoint-interval-ms, 60000 by default).
set -euo pipefail
P=20000 dur=15s idle=25 ckpt=5000 port=19692
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    -p) P=${2:?}; shift 2 ;;
    -d) dur=${2:?}; shift 2 ;;
    -w) idle=${2:?}; shift 2 ;;
    -c) ckpt=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    -*) usage ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || usage
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/chronik-idle-XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
(cd "$root" && go build -o "$work/chronik-bench" ./cmd/chronik-bench && go build -o "$work/scale" ./bench/scale)
addr="127.0.0.1:$port"
mport=$((port + 1))
ntopics=20
per=$(( (P + ntopics - 1) / ntopics ))
topics=""
for i in $(seq 0 $((ntopics - 1))); do topics="$topics${topics:+,}idle-$i"; done
metric() { curl -s "http://127.0.0.1:$mport/metrics" | awk -v m="$1" '$1 == m {printf "%.0f", $2}'; }
state() {
  printf '%s heap_inuse_mb=%d rss_mb=%d partitions_open=%s fds=%d\n' "$1" \
    "$(( $(metric go_memstats_heap_inuse_bytes) / 1048576 ))" \
    "$(awk '/^VmRSS/ {printf "%d", $2 / 1024}' /proc/$pid/status)" \
    "$(metric chronik_partitions_open)" "$(ls /proc/$pid/fd | wc -l)"
}
for bin in "$@"; do
  data="$work/data"
  "$bin" start --data-dir "$data" --bind 127.0.0.1 --kafka-port "$port" --metrics-port "$mport" --log-level warn \
    --log-flush-offset-checkpoint-interval-ms "$ckpt" >>"$work/broker.log" 2>&1 &
  pid=$!
  "$work/scale" wait -b "$addr" -timeout 2m >/dev/null
  "$work/scale" create -b "$addr" -topics "$topics" -partitions "$per" -timeout 20m >/dev/null
  "$work/chronik-bench" -b "$addr" -m produce --prebuilt-batches --batch-size 1 -c 128 -s 256 --acks all -d "$dur" -w 2s \
    --create-topic=false --report-interval 0 -t idle --topic-count "$ntopics" --json-output "$work/p.json" >/dev/null || true
  echo "== $bin: $P partitions, $(grep -o '"msgs_per_sec": [0-9.]*' "$work/p.json" | awk '{printf "%.0f", $2}') msg/s for $dur"
  state "after load:   "
  sleep "$idle"
  state "after ${idle}s idle:"
  t0=$(date +%s.%N)
  kill -TERM "$pid"; wait "$pid" || true; pid=""
  echo "stop after idle: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}') s"
  rm -rf "$data"
done
