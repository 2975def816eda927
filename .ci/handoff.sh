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
ROOT=$(pwd)
CONF="$ROOT/.ci/handoff"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

hermetic=0
case "${1:-}" in
  "") ;;
  --hermetic) hermetic=1 ;;
  *) echo "usage: $0 [--hermetic]" >&2; exit 2 ;;
esac

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs() { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }
log() { printf '[handoff %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
t_start=$(now_ms)

SMTP_HOST=127.0.0.9
SMTP_PORT=10587
IMAP_HOST=127.0.0.10
IMAP_PORT=10143

# ---------------------------------------------------------------- hermetic
log "gofmt, vet, go test -race against in-process servers"
(
  cd examples/handoff
  unformatted=$(gofmt -l .)
  if [ -n "$unformatted" ]; then
    echo "handoff: gofmt would change:"; echo "$unformatted"; exit 1
  fi
  go vet ./...
  go test -race -count=1 ./...
)
if [ "$hermetic" = 1 ]; then
  log "done in $(secs $(( $(now_ms) - t_start ))) s (hermetic only)"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "handoff: must run as root for the real servers (or give --hermetic)" >&2
  exit 1
fi

TMP=$(mktemp -d /tmp/tlsup-handoff.XXXXXX)
# The daemons drop privileges (postfix, dovecot, nobody): they must reach it.
chmod 755 "$TMP"
mkdir -p "$TMP/log" "$TMP/pki" "$TMP/dovecot/run" "$TMP/dovecot/state" "$TMP/mail/tlsup"

POLICY=/usr/sbin/policy-rc.d
POLICY_SAVED=""    # where the original policy-rc.d was copied, if any
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
  # Reap Dovecot, this shell's child (Postfix's master detached itself).
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
      echo "handoff: nothing listens on $1:$2 after 20 s" >&2
      return 1
    fi
    sleep 0.1
  done
}

# ---------------------------------------------------------------- install
t0=$(now_ms)
if command -v postfix >/dev/null && command -v dovecot >/dev/null && [ -e /usr/lib/dovecot/imap ]; then
  log "install: postfix and dovecot-imapd present"
else
  log "install: apt-get update; postfix dovecot-imapd"
  # Without this the packages' maintainer scripts start Postfix and Dovecot
  # at once, on their default ports and every interface. A copy first, so
  # that an interruption at any point leaves one in place; restored after.
  if [ -e "$POLICY" ] || [ -L "$POLICY" ]; then
    cp -a "$POLICY" "$TMP/policy-rc.d.saved"
    POLICY_SAVED="$TMP/policy-rc.d.saved"
  fi
  POLICY_OURS=1
  rm -f "$POLICY"
  printf '#!/bin/sh\n# tlsup .ci/handoff.sh: no service starts during apt-get install\nexit 101\n' > "$POLICY"
  chmod 755 "$POLICY"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt_install() {
    apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-upgrade \
        -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=600 postfix dovecot-imapd openssl
  }
  # A mirror can fail for a moment: three tries, a few seconds apart.
  for attempt in 1 2 3; do
    if apt_install >> "$TMP/log/apt.log" 2>&1; then break; fi
    if [ "$attempt" = 3 ]; then tail -n 40 "$TMP/log/apt.log"; exit 1; fi
    log "apt-get failed (attempt $attempt), trying again in 5 s"
    sleep 5
  done
  restore_policy
fi
log "install took $(secs $(( $(now_ms) - t0 ))) s: Postfix $(postconf -d -h mail_version), Dovecot $(dovecot --version)"

# ---------------------------------------------------------------- start
t0=$(now_ms)
if port_open "$SMTP_HOST" "$SMTP_PORT"; then echo "handoff: $SMTP_HOST:$SMTP_PORT is already in use" >&2; exit 1; fi
if port_open "$IMAP_HOST" "$IMAP_PORT"; then echo "handoff: $IMAP_HOST:$IMAP_PORT is already in use" >&2; exit 1; fi

# A throwaway CA and a server certificate for localhost (the name the
# hand-off tests verify) and the two addresses.
(
  cd "$TMP/pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout ca.key -out ca.pem -subj "/CN=tlsup handoff throwaway CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
  printf '%s\n' "subjectAltName=DNS:localhost,IP:$SMTP_HOST,IP:$IMAP_HOST" \
    "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" > server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile server.ext -out server.pem 2>/dev/null
  openssl verify -CAfile ca.pem server.pem >/dev/null
  chmod 600 ca.key server.key
)

# One test user, known to Dovecot (passwd-file) and, through Dovecot's auth
# socket, to Postfix. Its mail belongs to nobody.
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

# Postfix first: "postfix start" creates the queue directories (Dovecot
# puts its auth socket in private/) and returns once the master reports
# its start-up; the master's pid is then in its pid file.
timeout 60 postfix -c "$TMP/postfix" start
POSTFIX_PID=$(tr -d ' \n' < "$TMP/postfix-queue/pid/master.pid")
case "$POSTFIX_PID" in ''|*[!0-9]*) echo "handoff: no postfix master pid" >&2; exit 1 ;; esac
STARTED_PIDS+=("$POSTFIX_PID")
log "postfix master started, pid $POSTFIX_PID"

# Dovecot in the foreground, as this shell's child: $! is its pid.
dovecot -F -c "$TMP/dovecot/dovecot.conf" >> "$TMP/log/dovecot.out" 2>&1 &
DOVECOT_PID=$!
STARTED_PIDS+=("$DOVECOT_PID")
log "dovecot started, pid $DOVECOT_PID"
deadline=$(( $(now_ms) + 20000 ))
until [ -S "$TMP/postfix-queue/private/auth" ]; do
  kill -0 "$DOVECOT_PID" 2>/dev/null || { echo "handoff: dovecot exited" >&2; exit 1; }
  [ "$(now_ms)" -lt "$deadline" ] || { echo "handoff: no dovecot auth socket after 20 s" >&2; exit 1; }
  sleep 0.1
done
wait_port "$SMTP_HOST" "$SMTP_PORT"
wait_port "$IMAP_HOST" "$IMAP_PORT"
log "start took $(secs $(( $(now_ms) - t0 ))) s; both ports listen"

# ---------------------------------------------------------------- tests
t0=$(now_ms)
(
  cd examples/handoff
  env TLSUP_REAL_SERVERS=1 \
    TLSUP_CA="$TMP/pki/ca.pem" \
    TLSUP_USER="$TEST_USER" TLSUP_PASSWORD="$TEST_PASSWORD" \
    TLSUP_SUBMISSION_ADDR="$SMTP_HOST:$SMTP_PORT" \
    TLSUP_IMAP_ADDR="$IMAP_HOST:$IMAP_PORT" \
    go test -race -count=1 -v -run 'TestRealServers' ./...
)
queued=$(find "$TMP/postfix-queue/incoming" "$TMP/postfix-queue/active" "$TMP/postfix-queue/deferred" -type f 2>/dev/null | wc -l)
log "tests took $(secs $(( $(now_ms) - t0 ))) s; messages in Postfix's queue: $queued"
if [ "$queued" -lt 2 ]; then
  echo "handoff: want the two messages (net/smtp, go-smtp) in Postfix's queue, found $queued" >&2
  exit 1
fi

log "done in $(secs $(( $(now_ms) - t_start ))) s"
