#!/usr/bin/env bash
# The hand-off module for CI: vets and tests the nested module
# examples/handoff (net/smtp, go-smtp and go-imap v2 continuing sessions
# that tlsup secured), first against in-process servers, then against a
# real Postfix submission listener (AUTH and a message) and a real Dovecot
# (LOGIN and SELECT), which it installs from Debian's packages and starts
# on loopback addresses of its own (configs in .ci/handoff/, everything
# else in a temporary directory), and stops exactly the daemons it started.
# The module has its own go.mod, so that its libraries never become
# dependencies of tlsup: `go test ./...` at the top does not reach it.
#
# Needs root on Debian 12 (apt-get, daemons dropping privileges).
#
#   bash .ci/handoff.sh             everything
#   bash .ci/handoff.sh --hermetic  the in-process tests only (no root)
#
# Addresses, used by no other script in .ci/:
#   127.0.0.9:10587   Postfix submission (STARTTLS required, AUTH after it)
#   127.0.0.10:10143  Dovecot IMAP (STARTTLS, LOGIN only inside TLS)
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh handoff     # log, make_tmp, apt_install, make_pki, ...
CONF="$ROOT/.ci/handoff"

hermetic=0
case "${1:-}" in
  "") ;;
  --hermetic) hermetic=1 ;;
  *) echo "usage: $0 [--hermetic]" >&2; exit 2 ;;
esac

SMTP_ADDR=127.0.0.9:10587
IMAP_ADDR=127.0.0.10:10143

# ---------------------------------------------------------------- hermetic
log "gofmt, vet, go test -race against in-process servers"
(
  cd examples/handoff
  unformatted=$(gofmt -l .)
  [ -z "$unformatted" ] || die "gofmt would change: $unformatted"
  go vet ./...
  go test -race -count=1 ./...
)
if [ "$hermetic" = 1 ]; then
  log "done in $(secs $(( $(now_ms) - T_START ))) s (hermetic only)"
  exit 0
fi

require_root "apt-get, daemons that drop privileges; --hermetic without"
make_tmp
mkdir -p "$TMP/dovecot/run" "$TMP/dovecot/state" "$TMP/mail/tlsup"
# A master that came up although "postfix start" failed is ours too.
adopt_pidfile "$TMP/postfix-queue/pid/master.pid"

# ---------------------------------------------------------------- install
t0=$(now_ms)
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt_install postfix dovecot-imapd openssl || exit 1
log "install took $(secs $(( $(now_ms) - t0 ))) s: Postfix $(postconf -d -h mail_version), Dovecot $(dovecot --version)"

# ---------------------------------------------------------------- start
t0=$(now_ms)
ports_free "$SMTP_ADDR" "$IMAP_ADDR"
# The name the hand-off tests verify, and the two addresses.
make_pki localhost "DNS:localhost,IP:${SMTP_ADDR%:*},IP:${IMAP_ADDR%:*}"

# One test user (TEST_USER, TEST_PASSWORD) and the Postfix and Dovecot
# configs from $CONF, as lib.sh's mail_setup makes them.
mail_setup

# Postfix first: "postfix start" creates the queue directories (Dovecot
# puts its auth socket in private/) and returns once the master reports
# its start-up; the master's pid is then in its pid file.
timeout 60 postfix -c "$TMP/postfix" start
POSTFIX_PID=$(pid_from_file "$TMP/postfix-queue/pid/master.pid")
[ -n "$POSTFIX_PID" ] || die "no postfix master pid"
track_pid "$POSTFIX_PID"
log "postfix master started, pid $POSTFIX_PID"

# Dovecot in the foreground, as this shell's child.
start_daemon "$TMP/log/dovecot.out" dovecot -F -c "$TMP/dovecot/dovecot.conf"
DOVECOT_PID=$LAST_PID
log "dovecot started, pid $DOVECOT_PID"
deadline=$(( $(now_ms) + 20000 ))
until [ -S "$TMP/postfix-queue/private/auth" ]; do
  kill -0 "$DOVECOT_PID" 2>/dev/null || die "dovecot exited"
  [ "$(now_ms)" -lt "$deadline" ] || die "no dovecot auth socket after 20 s"
  sleep 0.1
done
wait_port "${SMTP_ADDR%:*}" "${SMTP_ADDR##*:}" "$POSTFIX_PID"
wait_port "${IMAP_ADDR%:*}" "${IMAP_ADDR##*:}" "$DOVECOT_PID"
log "start took $(secs $(( $(now_ms) - t0 ))) s; both ports listen"

# ---------------------------------------------------------------- tests
t0=$(now_ms)
(
  cd examples/handoff
  logged env TLSUP_REAL_SERVERS=1 \
    TLSUP_CA="$TMP/pki/ca.pem" \
    TLSUP_USER="$TEST_USER" TLSUP_PASSWORD="$TEST_PASSWORD" \
    TLSUP_SUBMISSION_ADDR="$SMTP_ADDR" \
    TLSUP_IMAP_ADDR="$IMAP_ADDR" \
    go test -race -count=1 -v -run 'TestRealServers' ./...
) || die "go test -run TestRealServers in examples/handoff failed"
queued=$(find "$TMP/postfix-queue/incoming" "$TMP/postfix-queue/active" "$TMP/postfix-queue/deferred" -type f 2>/dev/null | wc -l)
log "tests took $(secs $(( $(now_ms) - t0 ))) s; messages in Postfix's queue: $queued"
[ "$queued" -ge 2 ] || die "want the two messages (net/smtp, go-smtp) in Postfix's queue, found $queued"

log "done in $(secs $(( $(now_ms) - T_START ))) s"
