#!/usr/bin/env bash
# Real MTA for CI: Postfix from Debian's packages as the receiving MX of a
# test domain, in a throwaway instance on 127.0.0.4:10025 only (configs in
# .ci/real-mta/, queue and everything else in a temporary directory), with a
# certificate from a throwaway CA. The Go tests (internal/realpeers, with
# TLSUP_REAL_MTA=1) publish MX, A and TLSA records (DANE-EE of Postfix's
# key, DANE-TA of the CA, a wrong record) from an in-process DNS server and
# an MTA-STS policy from an in-process HTTPS server, and drive the library
# (smtp/dane, tlsconf.DANE, smtp/mtasts, smtp/tlsrpt) and the built
# examples/tlsprobe -mx to their verdicts. Then the script stops exactly
# the daemon it started.
#
# Needs root on Debian 12 (apt-get when Postfix is missing; Postfix's
# master runs as root and drops privileges).
#
#   bash .ci/real-mta.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh real-mta     # log, make_tmp, apt_install, make_pki, ...
CONF="$ROOT/.ci/real-mta"

require_root "apt-get, postfix"

ADDR=127.0.0.4
PORT=10025

make_tmp
mkdir -p "$TMP/postfix" "$TMP/postfix-queue"
# A master that came up although "postfix start" failed is ours too.
adopt_pidfile "$TMP/postfix-queue/pid/master.pid"

# ---------------------------------------------------------------- install
t0=$(now_ms)
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt_install postfix openssl || exit 1
t_install=$(( $(now_ms) - t0 ))
POSTFIX_VERSION=$(postconf -d -h mail_version)
log "install took $(secs $t_install) s: Postfix $POSTFIX_VERSION"

# ---------------------------------------------------------------- start
t0=$(now_ms)
ports_free "$ADDR:$PORT"

# A throwaway CA and the MX's certificate, for the MX name and address.
make_pki mx.mta.test "DNS:mx.mta.test,IP:$ADDR"

sed "s|@DIR@|$TMP|g" "$CONF/postfix-main.cf" > "$TMP/postfix/main.cf"
sed "s|@DIR@|$TMP|g" "$CONF/postfix-master.cf" > "$TMP/postfix/master.cf"

# "postfix start" checks the instance, creates the queue directories and
# returns once the master reports its start-up status; the master's pid is
# then in its pid file.
timeout 60 postfix -c "$TMP/postfix" start >> "$TMP/log/postfix.out" 2>&1
POSTFIX_PID=$(pid_from_file "$TMP/postfix-queue/pid/master.pid")
[ -n "$POSTFIX_PID" ] || die "no postfix master pid"
track_pid "$POSTFIX_PID"
log "postfix master started, pid $POSTFIX_PID, on $ADDR:$PORT"
wait_port "$ADDR" "$PORT"
t_start_server=$(( $(now_ms) - t0 ))
log "start took $(secs $t_start_server) s"

# ---------------------------------------------------------------- tests
t0=$(now_ms)
go build -o "$TMP/tlsprobe" ./examples/tlsprobe
logged env TLSUP_REAL_MTA=1 \
  TLSUP_MTA_ADDR="$ADDR:$PORT" \
  TLSUP_MTA_CA="$TMP/pki/ca.pem" \
  TLSUP_MTA_CERT="$TMP/pki/server.pem" \
  TLSUP_POSTFIX_VERSION="$POSTFIX_VERSION" \
  TLSUP_TLSPROBE="$TMP/tlsprobe" \
  go test -count=1 -race -v -run 'TestRealMTA' ./internal/realpeers/ ||
  die "go test ./internal/realpeers/ -run TestRealMTA failed"
t_tests=$(( $(now_ms) - t0 ))

t_total=$(( $(now_ms) - T_START ))
log "summary: Postfix $POSTFIX_VERSION as the MX of mta.test on $ADDR:$PORT; DANE-EE, DANE-TA, a wrong TLSA record, MTA-STS"
log "  install $(secs $t_install) s, start $(secs $t_start_server) s, tests $(secs $t_tests) s, total $(secs $t_total) s"
