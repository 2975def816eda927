#!/usr/bin/env bash
# The hermetic part of CI, runnable without root and without network
# beyond the Go module proxy (for staticcheck): vet, staticcheck, the
# tests with the race detector in shuffled order, and a short run of every
# fuzz target so that a target that no longer builds, or panics on its
# seeds or soon after, fails CI. About 5 minutes on 2 cores.
#
#   bash .ci/hermetic.sh            everything
#   FUZZTIME=10s bash .ci/hermetic.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
fuzztime="${FUZZTIME:-3s}"
start=$(date +%s)

step() { printf '\n=== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

step "go vet"
go vet ./...

step "staticcheck"
if ! command -v staticcheck >/dev/null 2>&1; then
  go install honnef.co/go/tools/cmd/staticcheck@latest
  PATH="$(go env GOPATH)/bin:$PATH"
fi
staticcheck -version
staticcheck ./...

step "go test -race -shuffle=on ./..."
go test -race -shuffle=on -count=1 -timeout 600s ./...

step "fuzz every target for $fuzztime"
targets=0
for pkg in $(go list ./...); do
  # -list prints the matching names, then "ok <pkg> <time>".
  for name in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "--- $pkg $name"
    go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"
    targets=$((targets + 1))
  done
done
echo "fuzzed $targets targets"

step "done in $(( $(date +%s) - start )) s"
