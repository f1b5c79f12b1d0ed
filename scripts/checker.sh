#!/usr/bin/env bash
# checker.sh: the long form of the cluster checker (test/cluster/checker_test.go):
# RUNS runs of a 3-broker cluster on loopback, each producing unique ids with
# idempotent acks=all franz-go producers for SECONDS while brokers are killed
# (-9) and restarted, paused (SIGSTOP/SIGCONT) and cut off from the other
# brokers, then checking every acknowledged record is in the log once at its
# offset, no id twice, every read during the faults a prefix of the final log,
# and high watermarks never moving back. Prints the counts for
# bench/RESULTS.md; exits non-zero on any violation.
#
#   scripts/checker.sh [RUNS] [SECONDS] [RF]   (defaults: 5 runs of 60 s, replication factor 1)
#
# With RF 3 every partition is on all three brokers and each follower's log
# must also be a byte-identical prefix of its leader's.
set -euo pipefail
runs=${1:-5} secs=${2:-60} rf=${3:-1}
cd "$(dirname "$0")/.."
timeout=$(( runs * (secs + 240) ))s
start=$(date +%s)
out=$(CHRONIK_CHECKER_RUNS=$runs CHRONIK_CHECKER_DURATION=$secs CHRONIK_CHECKER_RF=$rf \
    go test ./test/cluster -run '^TestChecker$' -count=1 -v -timeout "$timeout" 2>&1) || {
    echo "$out" | grep -vE '^\s+\{' | tail -60
    echo "checker FAILED"
    exit 1
}
echo "$out" | grep -E 'run [0-9]+:|CHECKER TOTAL' | sed 's/^ *checker_test.go:[0-9]*: //'
echo "wall time $(( $(date +%s) - start )) s; command: scripts/checker.sh $runs $secs $rf"
