#!/usr/bin/env bash
# cluster.sh: the release-notes produce shape (128 producers, 256 B, acks=all)
# against a 3-broker cluster on this machine and against a single broker,
# alternately (cluster first), each on fresh data dirs deleted afterwards.
# -r sets the topic's replication factor on the cluster (default 1: the
# cluster only spreads the partitions over its brokers; 3: every broker
# holds every partition, acks=all waits for all three). Prints
# chronik-bench's summary per run and the brokers' CPU seconds (user+sys,
# from /proc, summed over the cluster's three processes).
#
#   bench/cluster.sh [-n ROUNDS] [-p PARTITIONS] [-r RF] [-d DURATION] [BIN]
#
# Defaults: 2 rounds, 3 partitions, 20s (3 s warm-up); BIN is built from the
# working tree when not given. Ports 19692-19694 (Kafka), 19791-19793
# (cluster), 19892-19894 (metrics).
set -euo pipefail
rounds=2 parts=3 rf=1 dur=20s bin=
while [ $# -gt 0 ]; do
    case $1 in
    -n) rounds=$2; shift 2 ;;
    -p) parts=$2; shift 2 ;;
    -r) rf=$2; shift 2 ;;
    -d) dur=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    *) bin=$1; shift ;;
    esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/chronik-cluster-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
if [ -z "$bin" ]; then
    bin=$work/chronik-server
    (cd "$root" && go build -o "$bin" ./cmd/chronik-server)
fi
(cd "$root" && go build -o "$work/chronik-bench" ./cmd/chronik-bench)

cpu() { # user+sys seconds of pid
    awk '{printf "%.2f", ($14+$15)/100}' "/proc/$1/stat" 2>/dev/null || echo 0
}
wait_port() {
    for _ in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "port $1 never opened" >&2; return 1
}
bench() { # bootstrap [replication factor]
    timeout 120 "$work/chronik-bench" -b "$1" -m produce -c 128 -s 256 -d "$dur" -w 3s -p "$parts" -r "${2:-1}" 2>&1 |
        grep -E '^(throughput|latency)'
}
stop_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    pids=()
}

peers=1@127.0.0.1:19791,2@127.0.0.1:19792,3@127.0.0.1:19793
for r in $(seq 1 "$rounds"); do
    echo "=== cluster of 3, round $r"
    for i in 1 2 3; do
        "$bin" start --node-id $i --cluster-peers $peers --kafka-port 1969$((i+1)) --metrics-port 1989$((i+1)) \
            --bind 127.0.0.1 --data-dir "$work/c$i" >"$work/c$i.log" 2>&1 &
        pids+=($!)
    done
    for i in 1 2 3; do wait_port 1969$((i+1)); done
    bench 127.0.0.1:19692 "$rf"
    total=0
    for p in "${pids[@]}"; do total=$(awk -v a="$total" -v b="$(cpu "$p")" 'BEGIN{printf "%.2f", a+b}'); done
    echo "brokers CPU: $total s"
    stop_all
    rm -rf "$work"/c?

    echo "=== single broker, round $r"
    "$bin" start --kafka-port 19692 --metrics-port 19892 --bind 127.0.0.1 --data-dir "$work/s" >"$work/s.log" 2>&1 &
    pids+=($!)
    wait_port 19692
    bench 127.0.0.1:19692
    echo "broker CPU: $(cpu "${pids[0]}") s"
    stop_all
    rm -rf "$work/s"
done
