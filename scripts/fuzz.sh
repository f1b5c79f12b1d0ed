#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME each (default 10s): the decoders of
# untrusted bytes (request frames, request bodies, record batches) and of
# persisted bytes (segment recovery, decompression).
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" when -fuzztime expires while a worker is mid-call (golang/go#75804,
# fixed in Go 1.27): no input failed and nothing is written to testdata/fuzz.
# Such a run is retried, twice at most (one CI run of 20 targets hit it on two of
# them); a run that reports a failing input, or fails any other way, or fails the
# same way three times, fails the script.
#
# FUZZMINIMIZETIME (default 2s) bounds the minimizing of each new interesting
# input: at Go's default of 60s a target whose inputs are big (request
# bodies) spent most of its FUZZTIME minimizing, not fuzzing (0 execs/s for
# 30 s at a time), and was most often caught mid-call by the deadline above.
set -euo pipefail
FUZZTIME=${FUZZTIME:-10s}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-2s}
cd "$(dirname "$0")/.."
targets=$(grep -rhoE --include='*_test.go' '^func (Fuzz[A-Za-z0-9_]+)' internal | sed 's/^func //' | sort -u)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# coordinator_flake: the run's output is only the known deadline race.
coordinator_flake() {
  grep -q 'context deadline exceeded' "$log" && ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$log"
}
for t in $targets; do
  pkg=$(grep -rlE --include='*_test.go' "^func $t\(" internal | head -n1 | xargs dirname)
  for attempt in 1 2 3; do
    echo "== fuzz $t in ./$pkg for $FUZZTIME"
    if go test -run '^$' -fuzz "^$t\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" "./$pkg" 2>&1 | tee "$log"; then
      break
    fi
    if [ "$attempt" -lt 3 ] && coordinator_flake; then
      echo "== $t: the fuzz coordinator's deadline race (golang/go#75804), no failing input; retrying"
      continue
    fi
    exit 1
  done
done
