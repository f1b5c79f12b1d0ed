#!/usr/bin/env bash
# metadata.sh: what the metadata log costs a broker alone, A against B
# (issue 14: the metadata log became a Raft quorum of one). For each round
# and each binary in turn (A, B, A, B, ...): start on a fresh data dir (time
# until Metadata answers), create N one-partition topics with one
# CreateTopics request each (time; each is one metadata change made durable
# plus the partition's files), stop (time), start again (time until Metadata
# lists every topic), stop; CPU seconds (user+sys) of the broker over the
# whole round. Prints one line per run and the medians per binary, then
# deletes its data dirs.
#
#   bench/metadata.sh [-n TOPICS] [-r ROUNDS] [--port PORT] A_BIN B_BIN
#
# Defaults: 300 topics, 5 rounds, port 19592. Every step has a timeout.
set -euo pipefail
n=300
rounds=5
port=19592
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=${2:?}; shift 2 ;;
    -r) rounds=${2:?}; shift 2 ;;
    --port) port=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    -*) usage ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || usage
A=$1 B=$2
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/chronik-metadata-XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if ss -ltn 2>/dev/null | grep -q ":$port "; then echo "metadata.sh: port $port in use (--port)" >&2; exit 1; fi
(cd "$root" && go build -o "$work/scale" ./bench/scale)
scale="$work/scale"
addr="127.0.0.1:$port"
topics=""
for i in $(seq 1 "$n"); do topics="$topics${topics:+,}md-$i"; done

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}'; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$pid/stat"; }

# start BIN DATA TOPICS: sets took to the seconds until Metadata lists
# TOPICS (or answers at all).
start() {
  local t0; t0=$(now)
  "$1" start --data-dir "$2" --bind 127.0.0.1 --kafka-port "$port" --metrics-port -1 --log-level warn >>"$work/broker.log" 2>&1 &
  pid=$!
  "$scale" wait -b "$addr" ${3:+-topics "$3"} -timeout 5m >/dev/null || { tail -20 "$work/broker.log" >&2; exit 1; }
  took=$(since "$t0")
}
# stop: SIGTERM; sets took to the seconds until exit, cpu to the broker's CPU seconds.
stop() {
  local t0; t0=$(now); cpu=$(cpu_s)
  kill -TERM "$pid"
  timeout 120 tail --pid="$pid" -f /dev/null || { echo "broker did not stop in 120 s" >&2; exit 1; }
  wait "$pid" || true
  pid=""
  took=$(since "$t0")
}

printf '%-3s %-5s %9s %10s %12s %8s %10s %8s\n' bin round start_s create_s ms_per_topic stop_s restart_s cpu_s
for r in $(seq 1 "$rounds"); do
  for which in A B; do
    bin=$A; [ "$which" = B ] && bin=$B
    data="$work/data-$which-$r"
    start "$bin" "$data" ""; s0=$took
    t0=$(now)
    "$scale" create -b "$addr" -topics "$topics" -partitions 1 -timeout 10m >/dev/null
    c=$(since "$t0")
    stop; st=$took; cpu1=$cpu
    start "$bin" "$data" "$topics"; s1=$took
    stop; cpu2=$cpu
    printf '%-3s %-5s %9s %10s %12.2f %8s %10s %8.2f\n' "$which" "$r" "$s0" "$c" "$(awk -v c="$c" -v n="$n" 'BEGIN {print c * 1000 / n}')" "$st" "$s1" "$(awk -v a="$cpu1" -v b="$cpu2" 'BEGIN {print a + b}')" | tee -a "$work/rows"
    rm -rf "$data"
  done
done
echo "medians:"
med() { sort -n | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
for which in A B; do
  line=$(printf '%-3s %-5s' "$which" med)
  for col in 3 4 5 6 7 8; do line="$line $(awk -v w="$which" -v c="$col" '$1 == w {print $c}' "$work/rows" | med)"; done
  echo "$line"
done
