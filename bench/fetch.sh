#!/usr/bin/env bash
# fetch.sh: the broker's fetch capacity with zero-copy fetch (sendfile) on
# and off, one binary, alternating A/B (issue 13). The data is produced once
# (pre-encoded 1 MiB batches of 1 KiB records into 8 partitions, bounded by
# --produce-s seconds, at most about 4 GB at this machine's rates) with
# drop-behind off, so it stays in the page cache: the runs measure serving
# consumers that read what is cached, not the disk. Then, for each run and
# each consumer count (1 and 8), the server is restarted on that data with
# --fetch-zero-copy=true and =false (the order alternates between runs) and
# chronik-bench --raw-fetch reads for --seconds: each consumer sends its own
# Fetch requests (kgo's default sizes: 50 MB per request, 1 MiB per
# partition) and counts record-batch bytes without decoding a record, starting
# again at the log start when it reaches the end. Reported per run: MB/s
# (10^6 bytes of record batches per second) and broker CPU seconds per GB
# (utime+stime from /proc/PID/stat around the run, divided by the GB read).
# Client and broker share the machine's cores.
#
#   bench/fetch.sh [-n RUNS] [--seconds S] [--produce-s S] [--dir DIR]
set -euo pipefail
runs=3
secs=10
produce_s=8
dir=${TMPDIR:-/tmp}
while [ $# -gt 0 ]; do
  case "$1" in
    -n) runs=${2:?}; shift 2 ;;
    --seconds) secs=${2:?}; shift 2 ;;
    --produce-s) produce_s=${2:?}; shift 2 ;;
    --dir) dir=${2:?}; shift 2 ;;
    *) echo "fetch.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "$dir/chronik-fetch-XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
(cd "$root" && go build -o "$work/chronik-server" ./cmd/chronik-server && go build -o "$work/chronik-bench" ./cmd/chronik-bench)
tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
start_server() { # start_server ZEROCOPY
  "$work/chronik-server" start --data-dir "$work/data" --bind 127.0.0.1 --kafka-port 0 --metrics-port 0 \
    --log-level info --log-drop-behind-bytes 0 --fetch-zero-copy="$1" 2>"$work/server.log" &
  pid=$!
  for _ in $(seq 1 200); do grep -q '"chronik-server ready"' "$work/server.log" && break; sleep 0.1; done
  addr=$(grep -o '"kafka":"[^"]*"' "$work/server.log" | head -n1 | cut -d'"' -f4)
}
stop_server() { kill -TERM "$pid"; wait "$pid" || true; pid=""; }

start_server true
"$work/chronik-bench" -b "$addr" -t fetch -p 8 -m produce --prebuilt-batches -c 4 -s 1024 --batch-size 1048576 \
  -d "${produce_s}s" --report-interval 0 --quiet
stop_server
echo "produced $(du -sm "$work/data" | cut -f1) MiB into 8 partitions"

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
declare -A mbs cpus
one() { # one ZEROCOPY CONSUMERS
  start_server "$1"
  t0=$(cpu_ticks "$pid")
  "$work/chronik-bench" -b "$addr" -t fetch -m consume --raw-fetch --create-topic=false -c "$2" -d "${secs}s" \
    --report-interval 0 --quiet --json-output "$work/r.json"
  t1=$(cpu_ticks "$pid")
  stop_server
  read -r bytes elapsed failures < <(jq -r '"\(.bytes) \(.elapsed_sec) \(.failures)"' "$work/r.json")
  mb=$(awk -v b="$bytes" -v e="$elapsed" 'BEGIN { printf "%.0f", b / e / 1e6 }')
  cpg=$(awk -v t="$((t1 - t0))" -v k="$tck" -v b="$bytes" 'BEGIN { printf "%.3f", (t / k) / (b / 1e9) }')
  mbs["$1-$2"]+="$mb " cpus["$1-$2"]+="$cpg "
  echo "  zero-copy=$1 consumers=$2: $mb MB/s, broker $cpg CPU-s/GB, $failures failures"
}
for i in $(seq 1 "$runs"); do
  echo "run $i"
  for c in 1 8; do
    if [ $((i % 2)) -eq 1 ]; then one true "$c"; one false "$c"; else one false "$c"; one true "$c"; fi
  done
done
for c in 1 8; do
  for z in true false; do
    # shellcheck disable=SC2086
    echo "median consumers=$c zero-copy=$z: $(median ${mbs[$z-$c]}) MB/s, $(median ${cpus[$z-$c]}) CPU-s/GB (runs: ${mbs[$z-$c]}MB/s; ${cpus[$z-$c]}CPU-s/GB)"
  done
done
