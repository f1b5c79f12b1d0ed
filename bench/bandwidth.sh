#!/usr/bin/env bash
# bandwidth.sh: chronik's durable produce bandwidth against the disk's own,
# measured alternately on the same disk (disk, chronik, disk, chronik ...), so
# the disk's drift hits both. The disk (bench/diskbw, 1 MiB writes of random
# data into a new 3 GiB file), four ways:
#   buffered bulk        through the page cache, one fsync at the end
#   buffered fsync/4MiB  through the page cache, an fsync every 4 MiB
#   O_DIRECT bulk        4 writes in flight, one fdatasync at the end: the
#                        device's own sequential write bandwidth (the figure
#                        the issue's 90% is taken against)
#   O_DIRECT sync/4MiB   4 writes in flight, an fdatasync every 4 MiB: what a
#                        durable log could reach on the device
# Chronik: chronik-bench --prebuilt-batches (pre-encoded 1 MiB batches of 1 KiB
# records, acks=all, -c senders, default 16, one request in flight each:
# enough bytes in flight to cover a round's fsync), so the load generator does
# no per-record work and the broker is what is measured; 8 s after 2 s warm-up.
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
disk() { "$work/diskbw" --dir "$work" --size-mib 3072 --runs 1 "$@" | sed -E 's/.* = ([0-9]+) MB\/s.*/\1/'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100*a/b }'; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
bulk=() sync4=() dbulk=() dsync4=() chronik=() ratio=()
for i in $(seq 1 "$runs"); do
  b=$(disk --sync-every-mib 0); bulk+=("$b")
  s4=$(disk --sync-every-mib 4); sync4+=("$s4")
  db=$(disk --direct --depth 4 --sync-every-mib 0); dbulk+=("$db")
  ds4=$(disk --direct --depth 4 --sync-every-mib 4); dsync4+=("$ds4")
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
  ratio+=("$(awk -v a="$c" -v b="$db" 'BEGIN { printf "%.1f", 100*a/b }')")
  echo "run $i: disk buffered bulk $b, buffered fsync/4MiB $s4, O_DIRECT bulk $db, O_DIRECT sync/4MiB $ds4 MB/s; chronik $c MB/s = $(pct "$c" "$db") of O_DIRECT bulk"
  echo "       chronik $(echo "$out" | grep -E '^latency' | sed 's/latency *//')"
  echo "       $(echo "$out" | grep -E '^client cpu')"
done
mb=$(median "${bulk[@]}"); ms4=$(median "${sync4[@]}"); mdb=$(median "${dbulk[@]}"); mds4=$(median "${dsync4[@]}"); mc=$(median "${chronik[@]}")
echo "median: disk buffered bulk $mb, buffered fsync/4MiB $ms4, O_DIRECT bulk $mdb, O_DIRECT sync/4MiB $mds4 MB/s; chronik $mc MB/s"
echo "chronik / buffered bulk $(pct "$mc" "$mb"), / buffered fsync-4MiB $(pct "$mc" "$ms4"), / O_DIRECT bulk $(pct "$mc" "$mdb"), / O_DIRECT sync-4MiB $(pct "$mc" "$mds4")"
echo "per-run chronik / O_DIRECT bulk: ${ratio[*]} % (median $(median "${ratio[@]}")%)"
