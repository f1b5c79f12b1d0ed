#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME each (default 10s): the decoders of
# untrusted bytes (request frames, request bodies, record batches) and of
# persisted bytes (segment recovery, decompression).
set -euo pipefail
FUZZTIME=${FUZZTIME:-10s}
cd "$(dirname "$0")/.."
targets=$(grep -rhoE --include='*_test.go' '^func (Fuzz[A-Za-z0-9_]+)' internal | sed 's/^func //' | sort -u)
for t in $targets; do
  pkg=$(grep -rlE --include='*_test.go' "^func $t\(" internal | head -n1 | xargs dirname)
  echo "== fuzz $t in ./$pkg for $FUZZTIME"
  go test -run '^$' -fuzz "^$t\$" -fuzztime "$FUZZTIME" "./$pkg"
done
