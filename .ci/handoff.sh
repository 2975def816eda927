#!/usr/bin/env bash
# Vets and tests the nested module examples/handoff: net/smtp, go-smtp and
# go-imap v2 continuing sessions that tlsup secured, against in-process
# servers. With TLSUP_REAL_SERVERS=1 and the variables .ci/real-servers.sh
# sets (TLSUP_CA, TLSUP_USER, TLSUP_PASSWORD, TLSUP_SUBMISSION_ADDR,
# TLSUP_IMAP_ADDR) in the environment, the same hand-offs also run against
# the real Postfix (AUTH and a message) and Dovecot (LOGIN and SELECT);
# without it those tests skip. The module has its own go.mod, so that its
# libraries never become dependencies of tlsup: `go test ./...` at the top
# does not reach it, this script does.
set -euo pipefail
cd "$(dirname "$0")/../examples/handoff"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
start=$(date +%s)

verbose=()
if [ "${TLSUP_REAL_SERVERS:-}" = 1 ]; then
  verbose=(-v)
fi
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "handoff: gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
go test -race -count=1 "${verbose[@]}" ./...

echo "handoff: $(( $(date +%s) - start )) s"
