#!/usr/bin/env bash
# ab.sh: a Go benchmark program (bench/groups or bench/txn) run alternately
# against two chronik-server builds, the previous one (a git revision) and
# the working tree, each run on a fresh data dir deleted afterwards. Prints
# every run's output under a header naming the side, A first.
#
#   bench/ab.sh [-n RUNS] [--old REV] PROGRAM [-- program flags]
#
# PROGRAM is a directory under bench/ (groups, txn) or chronik-bench (the
# load tool, e.g. `bench/ab.sh chronik-bench -- -m produce -c 128 -s 256 -d
# 30s -w 3s`, the release-notes shape). REV defaults to
# 390b42d, the last release before internal topics. Runs go A B A B ...
# (old first), RUNS each (default 3). Both brokers start with
# --metrics-port -1; the new one with --group-initial-rebalance-delay-ms 0,
# which the old one does not have (it never delayed). CPU seconds of the
# broker are printed after each run (from /proc, user+system).
set -euo pipefail

runs=3
old=390b42d
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--runs) runs=${2:?}; shift 2 ;;
    --old) old=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) break ;;
  esac
done
prog=${1:?$(usage)}
shift
[ "${1:-}" = "--" ] && shift

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/chronik-ab-XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  git -C "$root" worktree remove --force "$work/old-src" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building $old and the working tree into $work"
git -C "$root" worktree add -q --detach "$work/old-src" "$old"
(cd "$work/old-src" && go build -o "$work/old" ./cmd/chronik-server)
src="./bench/$prog"
[ "$prog" = chronik-bench ] && src=./cmd/chronik-bench
(cd "$root" && go build -o "$work/new" ./cmd/chronik-server && go build -o "$work/prog" "$src")

run() { # run SIDE BINARY EXTRA...
  local side=$1 bin=$2; shift 2
  local dir="$work/data" log="$work/log"
  rm -rf "$dir"
  "$bin" start --data-dir "$dir" --bind 127.0.0.1 --kafka-port 0 --metrics-port -1 "$@" 2>"$log" &
  pid=$!
  local addr=""
  for _ in $(seq 600); do
    addr=$(grep -o '"kafka":"[^"]*"' "$log" | head -1 | cut -d'"' -f4 || true)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "broker not ready:" >&2; tail -20 "$log" >&2; exit 1; }
  echo "=== $side ($bin)"
  "$work/prog" --bootstrap-servers "$addr" "${args[@]}"
  local ticks
  ticks=$(awk '{print $14+$15}' "/proc/$pid/stat")
  echo "broker CPU: $(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f s", t/hz}')"
  kill -TERM "$pid"; wait "$pid" || true; pid=""
  rm -rf "$dir"
}

args=("$@")
for i in $(seq "$runs"); do
  run "A old $old, run $i" "$work/old"
  run "B new, run $i" "$work/new" --group-initial-rebalance-delay-ms 0
done
