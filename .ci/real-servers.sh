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
ROOT=$(pwd)
CONF="$ROOT/.ci/real-servers"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

capture_into=""
case "${1:-}" in
  "") ;;
  --capture) capture_into="$ROOT" ;;
  *) echo "usage: $0 [--capture]" >&2; exit 2 ;;
esac

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs() { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }
log() { printf '[real-servers %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
t_start=$(now_ms)

if [ "$(id -u)" != 0 ]; then
  echo "real-servers: must run as root (apt-get, ports 465/993/995)" >&2
  exit 1
fi

TMP=$(mktemp -d /tmp/tlsup-real-servers.XXXXXX)
# The daemons drop privileges (postfix, dovecot, nobody): they must reach it.
chmod 755 "$TMP"
mkdir -p "$TMP/log" "$TMP/pki" "$TMP/dovecot/run" "$TMP/dovecot/state" "$TMP/mail/tlsup"

POLICY=/usr/sbin/policy-rc.d
POLICY_SAVED=""    # where the original policy-rc.d was moved, if any
POLICY_OURS=0      # 1 while our policy-rc.d is in place
STARTED_PIDS=()    # the daemons this script started, and only those
DOVECOT_PID=""
POSTFIX_PID=""

restore_policy() {
  if [ "$POLICY_OURS" = 1 ]; then
    rm -f "$POLICY"
    if [ -n "$POLICY_SAVED" ]; then mv -f "$POLICY_SAVED" "$POLICY"; fi
    POLICY_OURS=0
  fi
}

stop_daemons() {
  local pid
  # A master that came up although "postfix start" failed is ours too: its
  # pid file is in our directory.
  if [ -z "$POSTFIX_PID" ] && [ -s "$TMP/postfix-queue/pid/master.pid" ]; then
    POSTFIX_PID=$(tr -d ' \n' < "$TMP/postfix-queue/pid/master.pid")
    case "$POSTFIX_PID" in ''|*[!0-9]*) ;; *) STARTED_PIDS+=("$POSTFIX_PID") ;; esac
  fi
  for pid in "${STARTED_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED_PIDS[@]}"; do
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid still running after 10 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  # Reap the daemon started as this shell's child (Postfix's master detached
  # itself and is not ours to wait for).
  if [ -n "$DOVECOT_PID" ]; then wait "$DOVECOT_PID" 2>/dev/null || true; fi
  STARTED_PIDS=()
}

cleanup() {
  local rc=$?
  trap - EXIT
  restore_policy
  stop_daemons
  if [ "$rc" != 0 ]; then
    for f in "$TMP"/log/*; do
      [ -f "$f" ] || continue
      echo "--- last lines of $f"
      tail -n 40 "$f" || true
    done
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# port_open HOST PORT: a TCP connect succeeds within 2 s.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# wait_port HOST PORT: bounded wait for a listener.
wait_port() {
  local deadline=$(( $(now_ms) + 20000 ))
  until port_open "$1" "$2"; do
    if [ "$(now_ms)" -gt "$deadline" ]; then
      echo "real-servers: nothing listens on $1:$2 after 20 s" >&2
      return 1
    fi
    sleep 0.1
  done
}

SMTP_PORTS="10025 10587 10465 465 10026"
IMAP_PORTS="10143 10993 993"
POP3_PORTS="10110 10995 995"

# ---------------------------------------------------------------- install
log "install: apt-get update; postfix dovecot-imapd dovecot-pop3d"
t0=$(now_ms)
# Without this the packages' maintainer scripts start Postfix and Dovecot at
# once, on their default ports and every interface. Restore what was there.
# A copy first, so that an interruption at any point leaves one in place.
if [ -e "$POLICY" ] || [ -L "$POLICY" ]; then
  cp -a "$POLICY" "$TMP/policy-rc.d.saved"
  POLICY_SAVED="$TMP/policy-rc.d.saved"
fi
POLICY_OURS=1
rm -f "$POLICY"
printf '#!/bin/sh\n# tlsup .ci/real-servers.sh: no service starts during apt-get install\nexit 101\n' > "$POLICY"
chmod 755 "$POLICY"
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt_install() {
  apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-upgrade \
      -o Dpkg::Use-Pty=0 postfix dovecot-imapd dovecot-pop3d openssl
}
# A mirror can fail for a moment: three tries, a few seconds apart.
for attempt in 1 2 3; do
  if apt_install >> "$TMP/log/apt.log" 2>&1; then break; fi
  if [ "$attempt" = 3 ]; then tail -n 40 "$TMP/log/apt.log"; exit 1; fi
  log "apt-get failed (attempt $attempt), trying again in 5 s"
  sleep 5
done
restore_policy
t_install=$(( $(now_ms) - t0 ))
POSTFIX_VERSION=$(postconf -d -h mail_version)
DOVECOT_VERSION=$(dovecot --version)
log "install took $(secs $t_install) s: Postfix $POSTFIX_VERSION, Dovecot $DOVECOT_VERSION"

# ---------------------------------------------------------------- start
t0=$(now_ms)
for p in $SMTP_PORTS; do
  if port_open 127.0.0.1 "$p"; then echo "real-servers: 127.0.0.1:$p is already in use" >&2; exit 1; fi
done
for p in $IMAP_PORTS $POP3_PORTS; do
  if port_open 127.0.0.2 "$p"; then echo "real-servers: 127.0.0.2:$p is already in use" >&2; exit 1; fi
done

# A throwaway CA and a server certificate for localhost and the loopback
# addresses the servers listen on.
(
  cd "$TMP/pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout ca.key -out ca.pem -subj "/CN=tlsup real-servers throwaway CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
  printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3" \
    "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" > server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile server.ext -out server.pem 2>/dev/null
  openssl verify -CAfile ca.pem server.pem >/dev/null
  chmod 600 ca.key server.key
)

# One test user, known to Dovecot (passwd-file) and, through Dovecot's auth
# socket, to Postfix. Mail (there is none) would belong to nobody.
TEST_USER=tlsup
TEST_PASSWORD=$(openssl rand -hex 12)
chown 65534:65534 "$TMP/mail/tlsup"
echo "$TEST_USER:{PLAIN}$TEST_PASSWORD:65534:65534::$TMP/mail/tlsup::" > "$TMP/dovecot/users"
chgrp dovecot "$TMP/dovecot/users"
chmod 640 "$TMP/dovecot/users"

mkdir -p "$TMP/postfix" "$TMP/postfix-queue"
sed "s|@DIR@|$TMP|g" "$CONF/postfix-main.cf" > "$TMP/postfix/main.cf"
sed "s|@DIR@|$TMP|g" "$CONF/postfix-master.cf" > "$TMP/postfix/master.cf"
sed "s|@DIR@|$TMP|g" "$CONF/dovecot.conf" > "$TMP/dovecot/dovecot.conf"
dovecot -c "$TMP/dovecot/dovecot.conf" -n > /dev/null

# Postfix first: "postfix start" checks the instance, creates the queue
# directories (Dovecot puts its auth socket in private/) and returns once
# the master reports its start-up status; the master's pid is then in its
# pid file. smtpd asks the auth socket only when a client sends AUTH.
t1=$(now_ms)
timeout 60 postfix -c "$TMP/postfix" start
log "postfix start took $(secs $(( $(now_ms) - t1 ))) s"
POSTFIX_PID=$(tr -d ' \n' < "$TMP/postfix-queue/pid/master.pid")
case "$POSTFIX_PID" in ''|*[!0-9]*) echo "real-servers: no postfix master pid" >&2; exit 1 ;; esac
STARTED_PIDS+=("$POSTFIX_PID")
log "postfix master started, pid $POSTFIX_PID"

# Dovecot in the foreground, as this shell's child: $! is its pid.
dovecot -F -c "$TMP/dovecot/dovecot.conf" >> "$TMP/log/dovecot.out" 2>&1 &
DOVECOT_PID=$!
STARTED_PIDS+=("$DOVECOT_PID")
log "dovecot started, pid $DOVECOT_PID"
deadline=$(( $(now_ms) + 20000 ))
until [ -S "$TMP/postfix-queue/private/auth" ]; do
  kill -0 "$DOVECOT_PID" 2>/dev/null || { echo "real-servers: dovecot exited" >&2; exit 1; }
  [ "$(now_ms)" -lt "$deadline" ] || { echo "real-servers: no dovecot auth socket after 20 s" >&2; exit 1; }
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
captured="${capture_into:-$TMP/capture}"
mkdir -p "$captured"

# The test's output goes to the log as well; its status, not tee's, counts.
set +o pipefail
env TLSUP_REAL_SERVERS=1 \
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
  go test -count=1 -race -v ./internal/realpeers/ 2>&1 | tee "$TMP/log/go-test.out"
test_rc=${PIPESTATUS[0]}
set -o pipefail
t_tests=$(( $(now_ms) - t0 ))
if [ "$test_rc" != 0 ]; then
  echo "real-servers: go test ./internal/realpeers/ failed" >&2
  exit "$test_rc"
fi

if [ -z "$capture_into" ]; then
  # Only the golden_* files: testdata/ holds other fixtures too.
  changed=""
  for f in "$captured"/{smtp,imap,pop3}/testdata/golden_* "$ROOT"/{smtp,imap,pop3}/testdata/golden_*; do
    [ -e "$f" ] || continue
    rel=${f#"$captured"/}
    rel=${rel#"$ROOT"/}
    case " $changed " in *" $rel "*) continue ;; esac
    if ! cmp -s "$ROOT/$rel" "$captured/$rel"; then
      changed="$changed $rel"
      diff -u "$ROOT/$rel" "$captured/$rel" >> "$TMP/log/golden.diff" 2>&1 || true
    fi
  done
  if [ -z "$changed" ]; then
    log "golden fixtures match what the servers say today"
  else
    log "NOTE: the servers' dialogue differs from the committed golden fixtures (not fatal):$changed"
    head -n 60 "$TMP/log/golden.diff"
  fi
else
  log "golden fixtures rewritten under smtp/, imap/, pop3/ testdata/"
fi

t_total=$(( $(now_ms) - t_start ))
log "summary: Postfix $POSTFIX_VERSION, Dovecot $DOVECOT_VERSION"
log "  smtp 127.0.0.1: 10025 starttls, 10587 submission (starttls, auth after tls), 10465+465 implicit, 10026 no starttls"
log "  imap 127.0.0.2: 10143 starttls, 10993+993 implicit; 127.0.0.3:10143 no starttls"
log "  pop3 127.0.0.2: 10110 stls, 10995+995 implicit; 127.0.0.3:10110 no stls"
log "  $probe_note"
log "  install $(secs $t_install) s, start $(secs $t_start_servers) s, tests $(secs $t_tests) s, total $(secs $t_total) s"
