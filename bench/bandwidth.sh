#!/usr/bin/env bash
# bandwidth.sh: chronik's durable produce bandwidth against the disk's own,
# measured alternately on the same disk (D C D C ...), so the disk's drift
# hits both. Disk: bench/diskbw, 1 MiB writes of random data, twice: bulk
# (one fsync at the end: the disk's sequential write bandwidth) and with an
# fsync every 4 MiB written (a durable log without group commit's overlap of
# writes and fsyncs). Chronik: chronik-bench
# --prebuilt-batches (pre-encoded 1 MiB batches of 1 KiB records, acks=all,
# -c senders, default 16, one request in flight each: enough bytes in flight
# to cover a round's fsync), so the load generator does no per-record work
# and the broker is what is measured.
#
#   bench/bandwidth.sh [-n RUNS] [-c SENDERS] [--dir DIR]
set -euo pipefail
runs=3
senders=16
dir=${TMPDIR:-/tmp}
while [ $# -gt 0 ]; do
  case "$1" in
    -n) runs=${2:?}; shift 2 ;;
    -c) senders=${2:?}; shift 2 ;;
    --dir) dir=${2:?}; shift 2 ;;
    *) echo "bandwidth.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "$dir/chronik-bw-XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
(cd "$root" && go build -o "$work/chronik-server" ./cmd/chronik-server && go build -o "$work/chronik-bench" ./cmd/chronik-bench \
  && go build -o "$work/diskbw" ./bench/diskbw)
disk=() disk4=() diskd=() chronik=()
for i in $(seq 1 "$runs"); do
  d=$("$work/diskbw" --dir "$work" --size-mib 3072 --sync-every-mib 0 --runs 1 | sed -E 's/.* = ([0-9]+) MB\/s.*/\1/')
  disk+=("$d")
  d4=$("$work/diskbw" --dir "$work" --size-mib 3072 --sync-every-mib 4 --runs 1 | sed -E 's/.* = ([0-9]+) MB\/s.*/\1/')
  disk4+=("$d4")
  dd=$("$work/diskbw" --dir "$work" --size-mib 3072 --direct --depth 4 --runs 1 | sed -E 's/.* = ([0-9]+) MB\/s.*/\1/')
  diskd+=("$dd")
  rm -rf "$work/data"
  "$work/chronik-server" start --data-dir "$work/data" --bind 127.0.0.1 --kafka-port 0 --metrics-port 0 --log-level info 2>"$work/server.log" &
  pid=$!
  for _ in $(seq 1 100); do grep -q '"chronik-server ready"' "$work/server.log" && break; sleep 0.1; done
  addr=$(grep -o '"kafka":"[^"]*"' "$work/server.log" | head -n1 | cut -d'"' -f4)
  http=$(grep -o '"http":"[^"]*"' "$work/server.log" | head -n1 | cut -d'"' -f4)
  out=$("$work/chronik-bench" -b "$addr" -t bw -m produce --prebuilt-batches -c "$senders" -s 1024 --batch-size 1048576 -d 8s -w 2s \
    --metrics-url "http://$http/metrics")
  kill -TERM "$pid"; wait "$pid" || true; pid=""
  mib=$(echo "$out" | sed -nE 's/^throughput .*, ([0-9.]+) MB\/s.*/\1/p')
  c=$(awk -v m="$mib" 'BEGIN { printf "%.0f", m * 1.048576 }') # MiB/s of values -> MB/s
  chronik+=("$c")
  echo "run $i: disk bulk $d MB/s, disk fsync/4MiB $d4 MB/s, disk O_DIRECT $dd MB/s, chronik $c MB/s ($(echo "$out" | grep -E '^latency' | sed 's/latency *//'); $(echo "$out" | grep -E '^client cpu' | sed 's/client cpu *//'))"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
md=$(median "${disk[@]}"); md4=$(median "${disk4[@]}"); mdd=$(median "${diskd[@]}"); mc=$(median "${chronik[@]}")
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100*a/b }'; }
echo "median: disk bulk $md MB/s, disk fsync/4MiB $md4 MB/s, disk O_DIRECT $mdd MB/s, chronik $mc MB/s; chronik/bulk $(pct "$mc" "$md"), chronik/fsync-4MiB $(pct "$mc" "$md4"), chronik/O_DIRECT $(pct "$mc" "$mdd")"
