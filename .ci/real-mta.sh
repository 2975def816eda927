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
ROOT=$(pwd)
CONF="$ROOT/.ci/real-mta"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs() { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }
log() { printf '[real-mta %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
t_start=$(now_ms)

if [ "$(id -u)" != 0 ]; then
  echo "real-mta: must run as root (apt-get, postfix)" >&2
  exit 1
fi

ADDR=127.0.0.4
PORT=10025

TMP=$(mktemp -d /tmp/tlsup-real-mta.XXXXXX)
# Postfix's daemons drop privileges: they must reach it.
chmod 755 "$TMP"
mkdir -p "$TMP/log" "$TMP/pki" "$TMP/postfix" "$TMP/postfix-queue"

POLICY=/usr/sbin/policy-rc.d
POLICY_SAVED=""    # where the original policy-rc.d was moved, if any
POLICY_OURS=0      # 1 while our policy-rc.d is in place
POSTFIX_PID=""     # the master this script started, and only that

restore_policy() {
  if [ "$POLICY_OURS" = 1 ]; then
    rm -f "$POLICY"
    if [ -n "$POLICY_SAVED" ]; then mv -f "$POLICY_SAVED" "$POLICY"; fi
    POLICY_OURS=0
  fi
}

stop_postfix() {
  # A master that came up although "postfix start" failed is ours too: its
  # pid file is in our directory.
  if [ -z "$POSTFIX_PID" ] && [ -s "$TMP/postfix-queue/pid/master.pid" ]; then
    POSTFIX_PID=$(tr -d ' \n' < "$TMP/postfix-queue/pid/master.pid")
  fi
  case "$POSTFIX_PID" in ''|*[!0-9]*) return 0 ;; esac
  kill -TERM "$POSTFIX_PID" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$POSTFIX_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$POSTFIX_PID" 2>/dev/null; then
    log "postfix master $POSTFIX_PID still running after 10 s: SIGKILL"
    kill -KILL "$POSTFIX_PID" 2>/dev/null || true
  fi
  POSTFIX_PID=""
}

cleanup() {
  local rc=$?
  trap - EXIT
  restore_policy
  stop_postfix
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

# ---------------------------------------------------------------- install
t0=$(now_ms)
if dpkg-query -W -f '${Status}' postfix 2>/dev/null | grep -q 'install ok installed'; then
  log "install: postfix is already installed"
else
  log "install: apt-get update; postfix"
  # Without this the package's maintainer scripts start the system Postfix
  # at once, on port 25 of every interface. Restore what was there. A copy
  # first, so that an interruption at any point leaves one in place.
  if [ -e "$POLICY" ] || [ -L "$POLICY" ]; then
    cp -a "$POLICY" "$TMP/policy-rc.d.saved"
    POLICY_SAVED="$TMP/policy-rc.d.saved"
  fi
  POLICY_OURS=1
  rm -f "$POLICY"
  printf '#!/bin/sh\n# tlsup .ci/real-mta.sh: no service starts during apt-get install\nexit 101\n' > "$POLICY"
  chmod 755 "$POLICY"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt_install() {
    apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-upgrade \
        -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=600 postfix openssl
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
t_install=$(( $(now_ms) - t0 ))
POSTFIX_VERSION=$(postconf -d -h mail_version)
log "install took $(secs $t_install) s: Postfix $POSTFIX_VERSION"

# ---------------------------------------------------------------- start
t0=$(now_ms)
if port_open "$ADDR" "$PORT"; then
  echo "real-mta: $ADDR:$PORT is already in use" >&2
  exit 1
fi

# A throwaway CA and the MX's certificate, for the MX name and address.
(
  cd "$TMP/pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout ca.key -out ca.pem -subj "/CN=tlsup real-mta throwaway CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout server.key -out server.csr -subj "/CN=mx.mta.test" 2>/dev/null
  printf '%s\n' "subjectAltName=DNS:mx.mta.test,IP:$ADDR" \
    "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" > server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile server.ext -out server.pem 2>/dev/null
  openssl verify -CAfile ca.pem server.pem >/dev/null
  cat server.pem ca.pem > chain.pem
  chmod 600 ca.key server.key
)

sed "s|@DIR@|$TMP|g" "$CONF/postfix-main.cf" > "$TMP/postfix/main.cf"
sed "s|@DIR@|$TMP|g" "$CONF/postfix-master.cf" > "$TMP/postfix/master.cf"

# "postfix start" checks the instance, creates the queue directories and
# returns once the master reports its start-up status; the master's pid is
# then in its pid file.
timeout 60 postfix -c "$TMP/postfix" start >> "$TMP/log/postfix.out" 2>&1
POSTFIX_PID=$(tr -d ' \n' < "$TMP/postfix-queue/pid/master.pid")
case "$POSTFIX_PID" in ''|*[!0-9]*) echo "real-mta: no postfix master pid" >&2; exit 1 ;; esac
log "postfix master started, pid $POSTFIX_PID, on $ADDR:$PORT"
deadline=$(( $(now_ms) + 20000 ))
until port_open "$ADDR" "$PORT"; do
  [ "$(now_ms)" -lt "$deadline" ] || { echo "real-mta: nothing listens on $ADDR:$PORT after 20 s" >&2; exit 1; }
  sleep 0.1
done
t_start_server=$(( $(now_ms) - t0 ))
log "start took $(secs $t_start_server) s"

# ---------------------------------------------------------------- tests
t0=$(now_ms)
go build -o "$TMP/tlsprobe" ./examples/tlsprobe
set +o pipefail
env TLSUP_REAL_MTA=1 \
  TLSUP_MTA_ADDR="$ADDR:$PORT" \
  TLSUP_MTA_CA="$TMP/pki/ca.pem" \
  TLSUP_MTA_CERT="$TMP/pki/server.pem" \
  TLSUP_POSTFIX_VERSION="$POSTFIX_VERSION" \
  TLSUP_TLSPROBE="$TMP/tlsprobe" \
  go test -count=1 -race -v -run 'TestRealMTA' ./internal/realpeers/ 2>&1 | tee "$TMP/log/go-test.out"
test_rc=${PIPESTATUS[0]}
set -o pipefail
t_tests=$(( $(now_ms) - t0 ))
if [ "$test_rc" != 0 ]; then
  echo "real-mta: go test ./internal/realpeers/ -run TestRealMTA failed" >&2
  exit "$test_rc"
fi

t_total=$(( $(now_ms) - t_start ))
log "summary: Postfix $POSTFIX_VERSION as the MX of mta.test on $ADDR:$PORT; DANE-EE, DANE-TA, a wrong TLSA record, MTA-STS"
log "  install $(secs $t_install) s, start $(secs $t_start_server) s, tests $(secs $t_tests) s, total $(secs $t_total) s"
