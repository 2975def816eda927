#!/usr/bin/env bash
# Real servers for CI: installs Postfix and Dovecot from Debian's packages,
# starts throwaway instances of them on loopback addresses only (configs in
# .ci/real-servers/, everything else in a temporary directory), runs the
# library's clients against them (internal/realpeers, with
# TLSUP_REAL_SERVERS=1) and examples/tlsprobe, then stops exactly the
# daemons it started.
#
# Needs root on Debian 12 (apt-get, privileged ports 465, 993, 995).
#
#   bash .ci/real-servers.sh            run the tests
#   bash .ci/real-servers.sh --capture  also rewrite the golden fixtures
#                                       (smtp/, imap/, pop3/ testdata/golden_*)
#
# Without --capture the fixtures are captured into the temporary directory
# and compared with the committed ones; a difference is reported, not fatal
# (a Debian update may change a capability list).
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh real-servers     # log, make_tmp, apt_install, make_pki, ...
CONF="$ROOT/.ci/real-servers"
capture_flag "${1:-}"

require_root "apt-get, ports 465/993/995"

make_tmp
mkdir -p "$TMP/dovecot/run" "$TMP/dovecot/state" "$TMP/mail/tlsup"
# A master that came up although "postfix start" failed is ours too.
adopt_pidfile "$TMP/postfix-queue/pid/master.pid"

SMTP_PORTS="10025 10587 10465 465 10026"
IMAP_PORTS="10143 10993 993"
POP3_PORTS="10110 10995 995"

# ---------------------------------------------------------------- install
t0=$(now_ms)
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt_install postfix dovecot-imapd dovecot-pop3d openssl || exit 1
t_install=$(( $(now_ms) - t0 ))
POSTFIX_VERSION=$(postconf -d -h mail_version)
DOVECOT_VERSION=$(dovecot --version)
log "install took $(secs $t_install) s: Postfix $POSTFIX_VERSION, Dovecot $DOVECOT_VERSION"

# ---------------------------------------------------------------- start
t0=$(now_ms)
for p in $SMTP_PORTS; do ports_free "127.0.0.1:$p"; done
for p in $IMAP_PORTS $POP3_PORTS; do ports_free "127.0.0.2:$p"; done

# A throwaway CA and a server certificate for localhost and the loopback
# addresses the servers listen on.
make_pki localhost "DNS:localhost,IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3"

# One test user (TEST_USER, TEST_PASSWORD) and the Postfix and Dovecot
# configs from $CONF, as lib.sh's mail_setup makes them.
mail_setup

# Postfix first: "postfix start" checks the instance, creates the queue
# directories (Dovecot puts its auth socket in private/) and returns once
# the master reports its start-up status; the master's pid is then in its
# pid file. smtpd asks the auth socket only when a client sends AUTH.
t1=$(now_ms)
timeout 60 postfix -c "$TMP/postfix" start
log "postfix start took $(secs $(( $(now_ms) - t1 ))) s"
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

for p in $SMTP_PORTS; do wait_port 127.0.0.1 "$p"; done
for p in $IMAP_PORTS $POP3_PORTS; do wait_port 127.0.0.2 "$p"; done
for p in 10143 10110; do wait_port 127.0.0.3 "$p"; done
t_start_servers=$(( $(now_ms) - t0 ))
log "start took $(secs $t_start_servers) s; all ports listen"

# ---------------------------------------------------------------- tests
t0=$(now_ms)
probe_note="examples/tlsprobe -json checked"
TLSPROBE=""
if compgen -G "examples/tlsprobe/*.go" > /dev/null; then
  go build -o "$TMP/tlsprobe" ./examples/tlsprobe
  TLSPROBE="$TMP/tlsprobe"
else
  probe_note="examples/tlsprobe NOT present yet: its checks did not run"
  log "$probe_note"
fi
captured="${CAPTURE_INTO:-$TMP/capture}"
mkdir -p "$captured"

logged env TLSUP_REAL_SERVERS=1 \
  TLSUP_CA="$TMP/pki/ca.pem" \
  TLSUP_USER="$TEST_USER" TLSUP_PASSWORD="$TEST_PASSWORD" \
  TLSUP_SMTP_ADDR=127.0.0.1:10025 \
  TLSUP_SUBMISSION_ADDR=127.0.0.1:10587 \
  TLSUP_SMTPS_ADDR=127.0.0.1:10465 \
  TLSUP_SMTPS_AUTO_ADDR=127.0.0.1:465 \
  TLSUP_SMTP_NOTLS_ADDR=127.0.0.1:10026 \
  TLSUP_IMAP_ADDR=127.0.0.2:10143 \
  TLSUP_IMAPS_ADDR=127.0.0.2:10993 \
  TLSUP_IMAPS_AUTO_ADDR=127.0.0.2:993 \
  TLSUP_IMAP_NOTLS_ADDR=127.0.0.3:10143 \
  TLSUP_POP3_ADDR=127.0.0.2:10110 \
  TLSUP_POP3S_ADDR=127.0.0.2:10995 \
  TLSUP_POP3S_AUTO_ADDR=127.0.0.2:995 \
  TLSUP_POP3_NOTLS_ADDR=127.0.0.3:10110 \
  TLSUP_POSTFIX_VERSION="$POSTFIX_VERSION" \
  TLSUP_DOVECOT_VERSION="$DOVECOT_VERSION" \
  TLSUP_TLSPROBE="$TLSPROBE" \
  TLSUP_CAPTURE="$captured" \
  go test -count=1 -race -v ./internal/realpeers/ ||
  die "go test ./internal/realpeers/ failed"
t_tests=$(( $(now_ms) - t0 ))

if [ -z "$CAPTURE_INTO" ]; then
  compare_golden "$captured" smtp imap pop3
else
  log "golden fixtures rewritten under smtp/, imap/, pop3/ testdata/"
fi

t_total=$(( $(now_ms) - T_START ))
log "summary: Postfix $POSTFIX_VERSION, Dovecot $DOVECOT_VERSION"
log "  smtp 127.0.0.1: 10025 starttls, 10587 submission (starttls, auth after tls), 10465+465 implicit, 10026 no starttls"
log "  imap 127.0.0.2: 10143 starttls, 10993+993 implicit; 127.0.0.3:10143 no starttls"
log "  pop3 127.0.0.2: 10110 stls, 10995+995 implicit; 127.0.0.3:10110 no stls"
log "  $probe_note"
log "  install $(secs $t_install) s, start $(secs $t_start_servers) s, tests $(secs $t_tests) s, total $(secs $t_total) s"
