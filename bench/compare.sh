#!/usr/bin/env bash
# compare.sh: one chronik-bench workload, run alternately against
# chronik-server and the peer (franz-go's kfake with DataDir + SyncWrites),
# each run on a fresh data dir that is deleted afterwards. Prints every run
# and the ratio of the medians (chronik / peer) of msg/s and p99.
#
#   bench/compare.sh [-n RUNS] [--profile P] [--no-sync-peer] [-- chronik-bench flags]
#
# Default workload: -m produce -c 64 -s 256 -d 20s -w 3s (acks=all).
# Runs go A B A B ... (chronik first), RUNS each (default 3), so slow drift of
# the machine hits both sides alike. Run it on a quiet machine.
set -euo pipefail

runs=3
profile=high-throughput
peer_sync=true
# Port 0: the kernel picks free ports; the ready lines give the addresses.
chronik_port=${CHRONIK_PORT:-0}
peer_port=${PEER_PORT:-0}
workload=(-m produce -c 64 -s 256 -d 20s -w 3s)

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--runs) runs=${2:?}; shift 2 ;;
    --profile) profile=${2:?}; shift 2 ;;
    --no-sync-peer) peer_sync=false; shift ;;
    --) shift; workload=("$@"); break ;;
    -h|--help) usage ;;
    *) echo "compare.sh: unknown argument $1" >&2; usage ;;
  esac
done
case "$runs" in ''|*[!0-9]*) echo "compare.sh: -n needs a number" >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/chronik-compare-XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building into $work"
(cd "$root" && go build -o "$work/chronik-server" ./cmd/chronik-server \
  && go build -o "$work/chronik-bench" ./cmd/chronik-bench \
  && go build -o "$work/peer" ./bench/peer)

# wait_for FILE PATTERN: until the log shows PATTERN (60s at most).
wait_for() {
  for _ in $(seq 600); do
    if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then echo "server exited:" >&2; tail -20 "$1" >&2; return 1; fi
    sleep 0.1
  done
  echo "not ready after 60s:" >&2; tail -20 "$1" >&2; return 1
}

stop() {
  kill -TERM "$pid"
  wait "$pid" || true
  pid=""
}

# col CSV NAME: the value of column NAME in the last row of CSV.
col() {
  awk -F, -v name="$2" 'NR==1 { for (i = 1; i <= NF; i++) if ($i == name) c = i } END { print $c }' "$1"
}

run_one() { # run_one TARGET I
  local target=$1 i=$2 data="$work/data-$1-$2" log="$work/$1-$2.log" csv="$work/$1-$2.csv" addr
  if [ "$target" = chronik ]; then
    "$work/chronik-server" start --data-dir "$data" --bind 127.0.0.1 --kafka-port "$chronik_port" \
      --metrics-port -1 --produce-profile "$profile" 2>"$log" >/dev/null &
    pid=$!
    wait_for "$log" '"chronik-server ready"'
    addr=$(grep -m1 '"chronik-server ready"' "$log" | sed -n 's/.*"kafka":"\([^"]*\)".*/\1/p')
  else
    "$work/peer" --port "$peer_port" --data-dir "$data" --sync-writes="$peer_sync" >"$log" 2>&1 &
    pid=$!
    wait_for "$log" 'peer ready'
    addr=$(grep -m1 'peer ready' "$log" | sed -n 's/.*addr=\([^ ]*\).*/\1/p')
  fi
  local rc=0
  "$work/chronik-bench" -b "$addr" -t "compare-$i" "${workload[@]}" --report-interval 0 --quiet \
    --csv-output "$csv" || rc=$?
  stop
  rm -rf "$data"
  if [ ! -s "$csv" ]; then echo "$target run $i: no result (exit $rc)" >&2; return 1; fi
  printf '%-8s run %d: %10.0f msg/s %8.2f MB/s  p50 %7.2f ms  p99 %7.2f ms  failures %s  client cpu %s s\n' \
    "$target" "$i" "$(col "$csv" msgs_per_sec)" "$(col "$csv" mb_per_sec)" "$(col "$csv" p50_ms)" \
    "$(col "$csv" p99_ms)" "$(col "$csv" failures)" "$(col "$csv" client_cpu_sec)"
  col "$csv" msgs_per_sec >>"$work/$target.tput"
  col "$csv" p99_ms >>"$work/$target.p99"
}

median() { sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "workload: chronik-bench ${workload[*]}"
echo "chronik-server profile $profile; peer kfake sync-writes=$peer_sync; $runs runs each, alternating"
for i in $(seq "$runs"); do
  run_one chronik "$i"
  run_one peer "$i"
done

ct=$(median "$work/chronik.tput"); pt=$(median "$work/peer.tput")
cp=$(median "$work/chronik.p99"); pp=$(median "$work/peer.p99")
echo
printf 'median msg/s  chronik %.0f  peer %.0f  ratio chronik/peer %s\n' "$ct" "$pt" \
  "$(awk -v a="$ct" -v b="$pt" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }')"
printf 'median p99 ms chronik %.2f  peer %.2f  ratio chronik/peer %s\n' "$cp" "$pp" \
  "$(awk -v a="$cp" -v b="$pp" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }')"
