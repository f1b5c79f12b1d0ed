#!/usr/bin/env bash
# scale.sh: one broker, P partitions over 20 topics (issue 13). Starts
# chronik-server on 127.0.0.1 with a fresh data dir under /tmp, creates the
# topics, produces the release-notes shape over all of them and over a
# 3-partition baseline topic, reads everything back, restarts cleanly, then
# kills the broker with -9 under load and restarts it while the producers
# retry; after each restart checks that every acknowledged record is still
# there. Prints times, msg/s, latency, RSS, open fds and disk use in one
# table, then deletes the data dir.
#
#   bench/scale.sh [-d DURATION] [-w WARMUP] [--port PORT] [--server BIN] P
#
# P is the total partition count (20 topics of ceil(P/20); e.g. 2000, 10000,
# 100000). DURATION (default 20s) is each measured produce run, after WARMUP
# (3s); the kill -9 run is killed KILL_AFTER seconds (env, default 8) in.
# Produce runs: chronik-bench -c 128 -s 256 --acks all, one record in flight
# per sender, random keys, capped at MAX_RECORDS (env, default 4,000,000)
# records each; then the same with --prebuilt-batches --batch-size 1 (one
# pre-encoded record per request to a random partition: the broker without
# the client's cost per partition). BIN defaults to bin/chronik-server (built with make build);
# BROKER_ARGS (env) are added to its command line.
# Bounds: every broker start, stop and client step has a timeout; the script
# refuses to run with less than 5 GB free under /tmp. Exit 1 when a check
# fails (lost acknowledged records, counts differ) or a step fails.
set -euo pipefail

dur=20s
warm=3s
port=19492
srv=""
kill_after=${KILL_AFTER:-8}
max_records=${MAX_RECORDS:-4000000}
usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    -d) dur=${2:?}; shift 2 ;;
    -w) warm=${2:?}; shift 2 ;;
    --port) port=${2:?}; shift 2 ;;
    --server) srv=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    -*) usage ;;
    *) break ;;
  esac
done
P=${1:-}
case "$P" in ''|*[!0-9]*) usage ;; esac
ntopics=20
per=$(( (P + ntopics - 1) / ntopics ))

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/chronik-scale-XXXXXX)
data="$work/data"
log="$work/broker.log"
addr="127.0.0.1:$port"
pid=""
bpid=""
cleanup() {
  [ -n "$bpid" ] && kill -TERM "$bpid" 2>/dev/null || true
  if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_kb=$(df -Pk /tmp | awk 'NR==2 {print $4}')
[ "$free_kb" -ge $((5 * 1024 * 1024)) ] || { echo "scale.sh: less than 5 GB free under /tmp" >&2; exit 1; }
if [ "$P" -ge "$(ulimit -Hn)" ]; then
  echo "scale.sh: warning: $P partitions, fd limit $(ulimit -Hn): a broker keeping every partition open fails" >&2
fi
if ss -ltn 2>/dev/null | grep -q ":$port "; then echo "scale.sh: port $port in use (--port)" >&2; exit 1; fi

echo "building into $work/bin"
mkdir -p "$work/bin"
if [ -z "$srv" ]; then
  (cd "$root" && make -s build)
  srv="$root/bin/chronik-server"
fi
(cd "$root" && go build -o "$work/bin/chronik-bench" ./cmd/chronik-bench && go build -o "$work/bin/scale" ./bench/scale)
bench="$work/bin/chronik-bench"
scale="$work/bin/scale"

topics=""
for i in $(seq 0 $((ntopics - 1))); do topics="$topics${topics:+,}scale-$i"; done
all="$topics,base"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }
rss_mb() { awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status"; }
fds() { ls "/proc/$pid/fd" | wc -l; }
jf() { grep -o "\"$2\": [-0-9.e+]*" "$1" | head -1 | awk '{print $2}'; }

declare -A R # the summary
failed=0

# start_broker KEY TOPICS: starts the broker, waits until Metadata lists
# every partition of TOPICS with a leader, records the time as R[KEY].
start_broker() {
  local t0
  t0=$(now)
  "$srv" start --data-dir "$data" --bind 127.0.0.1 --kafka-port "$port" --metrics-port -1 \
    --log-level warn ${BROKER_ARGS:-} >>"$log" 2>&1 &
  pid=$!
  if ! "$scale" wait -b "$addr" -topics "$2" -timeout 15m >/dev/null; then
    echo "broker did not answer; log tail:" >&2; tail -20 "$log" >&2; exit 1
  fi
  R[$1]=$(since "$t0")
  echo "$1: ${R[$1]} s (pid $pid, RSS $(rss_mb) MB, $(fds) fds)"
}

# stop_broker KEY: SIGTERM, waits up to 5 minutes, records the time.
stop_broker() {
  local t0 i
  t0=$(now)
  kill -TERM "$pid"
  for i in $(seq 3000); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "broker still running 5 minutes after SIGTERM; killing it" >&2
    kill -KILL "$pid"
  fi
  wait "$pid" || echo "broker exit status $?" >&2
  pid=""
  R[$1]=$(since "$t0")
  echo "$1: ${R[$1]} s"
}

# produce KEY ARGS...: one chronik-bench produce run, the release-notes shape.
produce() {
  local key=$1; shift
  "$bench" -b "$addr" -m produce -c 128 -s 256 --acks all -d "$dur" -w "$warm" -n "$max_records" \
    --report-interval 1s --json-output "$work/$key.json" --acked-output "$work/acked-$key" "$@" \
    >"$work/$key.out" || true
  # Stalls: 1-second progress intervals of the measured phase whose slowest
  # acknowledgement took over a second (a stall of several seconds counts
  # once: the intervals inside it complete no acknowledgement).
  R[${key}_stalls]=$(awk '/ measure / && match($0, /max +[0-9.]+/) && substr($0, RSTART + 4, RLENGTH - 4) + 0 > 1000 {n++}
    END {print n + 0}' "$work/$key.out")
  local f="$work/$key.json"
  R[$key]="$(jf "$f" msgs_per_sec | awk '{printf "%.0f", $1}') msg/s, p50/p99/max $(awk -v a="$(jf "$f" p50_ms)" \
    -v b="$(jf "$f" p99_ms)" -v c="$(jf "$f" max_ms)" 'BEGIN {printf "%.2f/%.2f/%.1f", a, b, c}') ms, acked $(jf "$f" produced), failures $(jf "$f" failures), stalls over 1 s: ${R[${key}_stalls]}"
  R[${key}_mps]=$(jf "$f" msgs_per_sec)
  echo "$key: ${R[$key]}"
}

# raw_produce KEY ARGS...: chronik-bench --prebuilt-batches, one record per
# request (no per-record client work), the same concurrency and duration.
raw_produce() {
  local key=$1; shift
  "$bench" -b "$addr" -m produce --prebuilt-batches --batch-size 1 -c 128 -s 256 --acks all -d "$dur" -w "$warm" \
    --create-topic=false --report-interval 0 --json-output "$work/$key.json" "$@" >"$work/$key.out" || true
  local f="$work/$key.json"
  R[$key]="$(jf "$f" msgs_per_sec | awk '{printf "%.0f", $1}') msg/s, p50/p99/max $(awk -v a="$(jf "$f" p50_ms)" \
    -v b="$(jf "$f" p99_ms)" -v c="$(jf "$f" max_ms)" 'BEGIN {printf "%.2f/%.2f/%.1f", a, b, c}') ms, failures $(jf "$f" failures)"
  R[${key}_mps]=$(jf "$f" msgs_per_sec)
  echo "$key: ${R[$key]}"
}

load() { cut -d' ' -f1-3 /proc/loadavg; }
R[load_start]=$(load)
echo "== P=$P: $ntopics topics x $per partitions, data dir $data, broker $srv, load ${R[load_start]}"
start_broker start_empty_s ""
R[rss_idle_empty]=$(rss_mb)
R[fds_idle_empty]=$(fds)

echo "== creating topics"
t0=$(now)
R[create]=$("$scale" create -b "$addr" -topics "$topics" -partitions "$per" -timeout 60m)
R[create_total_s]=$(since "$t0")
"$scale" create -b "$addr" -topics base -partitions 3 >/dev/null
echo "create: ${R[create]}"
sleep 2
R[rss_idle_created]=$(rss_mb)
R[fds_idle_created]=$(fds)

echo "== produce: baseline (3 partitions), then $P partitions over $ntopics topics"
produce base -t base --create-topic=false
produce scale -t scale --topic-count "$ntopics" --create-topic=false
R[ratio]=$(awk -v a="${R[scale_mps]}" -v b="${R[base_mps]}" 'BEGIN {printf "%.0f%%", 100 * a / b}')
# The same shape without the client's cost per partition: one pre-encoded
# 256 B record per request to a random partition (the record-level client
# visits every partition it holds for each request it builds, so with
# thousands of partitions it measures itself). Broker throughput only; the
# records count in the checks below as unacknowledged extras.
raw_produce raw_base -t base
raw_produce raw_scale -t scale --topic-count "$ntopics"
R[raw_ratio]=$(awk -v a="${R[raw_scale_mps]}" -v b="${R[raw_base_mps]}" 'BEGIN {printf "%.0f%%", 100 * a / b}')
R[rss_loaded]=$(rss_mb)
R[fds_loaded]=$(fds)

echo "== consume everything back"
R[consume]=$("$scale" consume -b "$addr" -topics "$all" -acked "$work/acked-base,$work/acked-scale" -timeout 15m) ||
  { R[consume]+=" CHECK FAILED"; failed=1; }
echo "consume: ${R[consume]}"
R[du_loaded]=$(du -sh "$data" | cut -f1)

echo "== clean restart"
stop_broker stop_s
start_broker restart_s "$all"
R[rss_restart]=$(rss_mb)
R[fds_restart]=$(fds)
R[check_restart]=$("$scale" offsets -b "$addr" -topics "$all" -acked "$work/acked-base,$work/acked-scale") ||
  { R[check_restart]+=" CHECK FAILED"; failed=1; }
echo "after restart: ${R[check_restart]}"

echo "== kill -9 under load (${kill_after}s into a produce run), restart while the producers retry"
"$bench" -b "$addr" -t scale --topic-count "$ntopics" --create-topic=false -m produce -c 128 -s 256 --acks all \
  -d 10m -n "$max_records" --report-interval 0 --acked-output "$work/acked-kill" --quiet &
bpid=$!
sleep "$kill_after"
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
pid=""
start_broker crash_restart_s "$all"
# The producers reconnect and finish their retried records; then stop them
# (SIGTERM: a background job ignores SIGINT) and wait, bounded.
sleep 3
kill -TERM "$bpid"
for i in $(seq 600); do kill -0 "$bpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$bpid" 2>/dev/null && { echo "chronik-bench still running 60 s after SIGTERM; killing it" >&2; kill -KILL "$bpid"; }
wait "$bpid" || true
bpid=""
R[kill_acked]=$(awk '{n += $3} END {print n + 0}' "$work/acked-kill" 2>/dev/null || echo "no file")
R[check_crash]=$("$scale" offsets -b "$addr" -topics "$all" -acked "$work/acked-base,$work/acked-scale,$work/acked-kill") ||
  { R[check_crash]+=" CHECK FAILED"; failed=1; }
echo "after kill -9: ${R[check_crash]}"
R[rss_crash]=$(rss_mb)
R[fds_crash]=$(fds)
R[du_end]=$(du -sh "$data" | cut -f1)
stop_broker final_stop_s

# The broker's warnings (the log is at warn level), by message; the slow
# fsync rounds with their longest duration.
R[warnings]=$({ grep -o '"msg":"[^"]*"' "$log" || true; } | cut -d'"' -f4 | sort | uniq -c | sort -rn | head -4 |
  awk '{c = $1; $1 = ""; printf "%s%d x%s", (NR > 1 ? "; " : ""), c, $0}' || true)
R[slow_round_max]=$({ grep '"slow fsync round"' "$log" || true; } | grep -o '"duration":[0-9]*' | cut -d: -f2 | sort -n | tail -1 |
  awk '{printf "%.1f s", $1 / 1e9}' || true)

row() { printf '| %-34s | %s |\n' "$1" "$2"; }
echo
echo "## bench/scale.sh $P ($ntopics topics x $per partitions, -d $dur -w $warm), $(date -u +%FT%TZ)"
echo
echo "load average at start ${R[load_start]}, at end $(load); broker $srv ${BROKER_ARGS:-}"
echo
row "step" "result"
row "---" "---"
row "start, empty data dir" "${R[start_empty_s]} s, RSS ${R[rss_idle_empty]} MB, ${R[fds_idle_empty]} fds"
row "create $P partitions" "${R[create_total_s]} s (${R[create]})"
row "idle after create" "RSS ${R[rss_idle_created]} MB, ${R[fds_idle_created]} fds"
row "produce, 3 partitions" "${R[base]}"
row "produce, $P partitions" "${R[scale]}"
row "$P partitions / 3 partitions" "${R[ratio]} of msg/s"
row "raw produce, 3 partitions" "${R[raw_base]}"
row "raw produce, $P partitions" "${R[raw_scale]}"
row "raw: $P partitions / 3 partitions" "${R[raw_ratio]} of msg/s"
row "after loading" "RSS ${R[rss_loaded]} MB, ${R[fds_loaded]} fds, data dir ${R[du_loaded]}"
row "consume all back" "${R[consume]}"
row "clean stop (SIGTERM)" "${R[stop_s]} s"
row "clean start to answering" "${R[restart_s]} s, RSS ${R[rss_restart]} MB, ${R[fds_restart]} fds"
row "after clean restart" "${R[check_restart]}"
row "kill -9 under load" "${R[kill_acked]} acknowledged in the run (${kill_after} s before the kill, 3 s after the restart)"
row "start after kill -9 to answering" "${R[crash_restart_s]} s, RSS ${R[rss_crash]} MB, ${R[fds_crash]} fds"
row "after kill -9 restart" "${R[check_crash]}"
row "final clean stop" "${R[final_stop_s]} s, data dir ${R[du_end]}"
row "broker warnings" "${R[warnings]:-none}"
row "longest slow fsync round" "${R[slow_round_max]:-none}"
[ "$failed" = 0 ] || { echo "scale.sh: a check failed (see the table)" >&2; exit 1; }
