# shellcheck shell=bash
# The plumbing the real-peer scripts share: logging and timing, a temporary
# directory removed at exit, the daemons a script started (and only those)
# stopped at exit, apt-get with the system's services kept down, loopback
# port checks, a throwaway CA, the Go tests' log, the golden fixtures'
# comparison. Nothing here starts a daemon or knows a protocol.
#
# Sourced, never run, from the repository's root, after `set -euo pipefail`:
#
#   cd "$(dirname "$0")/.."
#   . .ci/lib.sh real-mta          # the name that prefixes every log line
#
# It sets ROOT (the repository), CI_NAME and T_START, and exports GOFLAGS
# with -buildvcs=false.

CI_NAME=${1:?usage: . .ci/lib.sh NAME}
ROOT=$(pwd)
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# secs MS: milliseconds as seconds, "12.345".
secs() { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }
log() { printf '[%s %s] %s\n' "$CI_NAME" "$(date -u +%H:%M:%S)" "$*"; }
# die MESSAGE: says why on stderr and exits 1 (the EXIT trap cleans up).
die() { echo "$CI_NAME: $*" >&2; exit 1; }
T_START=$(now_ms)

# require_root WHY: exits unless running as root.
require_root() {
  [ "$(id -u)" = 0 ] || die "must run as root ($1)"
}

# ---------------------------------------------------------------- cleanup
TMP=""               # make_tmp's directory, removed at exit
STARTED_PIDS=()      # the daemons this script started, and only those
ADOPT_PIDFILES=()    # pid files in TMP whose daemon is ours too (see adopt_pidfile)
STOP_SIGNAL=TERM     # what stop_daemons sends first
EXIT_HOOKS=()        # commands run at exit, after the daemons stopped
EXTRA_LOGS=()        # files shown on failure besides TMP/log/*

# make_tmp: TMP=/tmp/tlsup-NAME.XXXXXX with log/ and pki/ in it, readable by
# the daemons that drop privileges, and the EXIT trap that cleans up.
make_tmp() {
  TMP=$(mktemp -d "/tmp/tlsup-$CI_NAME.XXXXXX")
  chmod 755 "$TMP"
  mkdir -p "$TMP/log" "$TMP/pki"
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}

# start_daemon LOG COMMAND...: runs COMMAND in the background, output
# appended to LOG, as this shell's child; its pid is LAST_PID and is
# stopped at exit.
start_daemon() {
  local out=$1
  shift
  "$@" >> "$out" 2>&1 &
  LAST_PID=$!
  STARTED_PIDS+=("$LAST_PID")
}

# track_pid PID: a daemon started otherwise (one that detaches) is stopped
# at exit too.
track_pid() {
  case " ${STARTED_PIDS[*]} " in *" $1 "*) ;; *) STARTED_PIDS+=("$1") ;; esac
}

# forget_pid PID: a daemon this script stopped and reaped itself; its pid
# may be reused and must not be signalled again.
forget_pid() {
  local kept=() pid
  for pid in "${STARTED_PIDS[@]}"; do [ "$pid" = "$1" ] || kept+=("$pid"); done
  STARTED_PIDS=("${kept[@]}")
}

# pid_from_file FILE: the number on FILE's first line, if it is one.
pid_from_file() {
  local pid=""
  if [ -s "$1" ]; then pid=$(head -n 1 "$1" | tr -d ' \n'); fi
  case "$pid" in ''|*[!0-9]*) ;; *) echo "$pid" ;; esac
}

# adopt_pidfile FILE: FILE, in TMP, names a daemon of ours even when the
# command that started it failed (a Postfix master, a postmaster): at exit
# its pid is stopped too.
adopt_pidfile() {
  ADOPT_PIDFILES+=("$1")
}

stop_daemons() {
  local pid f
  for f in "${ADOPT_PIDFILES[@]}"; do
    pid=$(pid_from_file "$f")
    if [ -n "$pid" ]; then track_pid "$pid"; fi
  done
  for pid in "${STARTED_PIDS[@]}"; do
    kill "-$STOP_SIGNAL" "$pid" 2>/dev/null || true
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
  # Reap the ones started as this shell's children (a detached daemon is
  # not ours to wait for: wait returns at once).
  for pid in "${STARTED_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  STARTED_PIDS=()
}

cleanup() {
  local rc=$? f hook
  trap - EXIT
  restore_policy
  stop_daemons
  for hook in "${EXIT_HOOKS[@]}"; do eval "$hook" || true; done
  if [ "$rc" != 0 ] && [ -n "$TMP" ]; then
    for f in "$TMP"/log/* "${EXTRA_LOGS[@]}"; do
      [ -f "$f" ] || continue
      echo "--- last lines of $f"
      tail -n 40 "$f" || true
    done
  fi
  if [ -n "$TMP" ]; then rm -rf "$TMP"; fi
  exit "$rc"
}

# ---------------------------------------------------------------- apt
POLICY=/usr/sbin/policy-rc.d
POLICY_SAVED=""    # where the original policy-rc.d was copied, if any
POLICY_OURS=0      # 1 while our policy-rc.d is in place

# block_service_starts: without it the packages' maintainer scripts start
# the system's daemons at once, on their default ports and every
# interface. What was there is copied first, so that an interruption at
# any point leaves a policy-rc.d in place, and restored by restore_policy.
block_service_starts() {
  if [ -e "$POLICY" ] || [ -L "$POLICY" ]; then
    cp -a "$POLICY" "$TMP/policy-rc.d.saved"
    POLICY_SAVED="$TMP/policy-rc.d.saved"
  fi
  POLICY_OURS=1
  rm -f "$POLICY"
  printf '#!/bin/sh\n# tlsup .ci/%s.sh: no service starts during apt-get install\nexit 101\n' "$CI_NAME" > "$POLICY"
  chmod 755 "$POLICY"
}

restore_policy() {
  if [ "$POLICY_OURS" = 1 ]; then
    rm -f "$POLICY"
    if [ -n "$POLICY_SAVED" ]; then mv -f "$POLICY_SAVED" "$POLICY"; fi
    POLICY_OURS=0
  fi
}

# installed PKG...: every PKG is installed.
installed() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || return 1
  done
}

APT_FIXUP=""   # a command run when apt-get install fails, before the next try

# apt_install PKG...: installs what is missing, with the services kept
# down, waiting for another apt's lock, log in TMP/log/apt.log. A mirror
# can fail for a moment or the lists be stale (404): three tries, with
# apt-get update between them. Returns 1, the log's tail shown, when the
# packages are still not installed.
apt_install() {
  local attempt
  if installed "$@"; then
    log "install: $* already installed"
    return 0
  fi
  log "install: $*"
  block_service_starts
  # A fresh machine has no package lists yet.
  if ! apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get update -qq -o DPkg::Lock::Timeout=600 >> "$TMP/log/apt.log" 2>&1 || true
  fi
  for attempt in 1 2 3; do
    if { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-upgrade \
           -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=600 "$@" ||
         { [ -n "$APT_FIXUP" ] && eval "$APT_FIXUP"; }; } >> "$TMP/log/apt.log" 2>&1 &&
       installed "$@"; then
      restore_policy
      return 0
    fi
    [ "$attempt" = 3 ] && break
    log "apt-get install failed (attempt $attempt): apt-get update, then again in 5 s"
    apt-get update -qq -o DPkg::Lock::Timeout=600 >> "$TMP/log/apt.log" 2>&1 || true
    sleep 5
  done
  restore_policy
  tail -n 40 "$TMP/log/apt.log"
  return 1
}

# ---------------------------------------------------------------- ports
# port_open HOST PORT: a TCP connect succeeds within 2 s.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# ports_free HOST:PORT...: exits when one of them already listens.
ports_free() {
  local a
  for a in "$@"; do
    if port_open "${a%:*}" "${a##*:}"; then die "$a is already in use"; fi
  done
}

# wait_port HOST PORT [PID]: bounded wait (20 s) for a listener; with PID,
# gives up at once when that daemon has exited.
wait_port() {
  local deadline=$(( $(now_ms) + 20000 ))
  until port_open "$1" "$2"; do
    if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then
      echo "$CI_NAME: the daemon for $1:$2 (pid $3) exited" >&2
      return 1
    fi
    if [ "$(now_ms)" -gt "$deadline" ]; then
      echo "$CI_NAME: nothing listens on $1:$2 after 20 s" >&2
      return 1
    fi
    sleep 0.1
  done
}

# ---------------------------------------------------------------- pki
# make_pki CN SAN: a throwaway CA (TMP/pki/ca.pem, ca.key) and a server
# certificate (server.pem, server.key, and chain.pem with the CA) for the
# subject CN and the subjectAltName SAN ("DNS:localhost,IP:127.0.0.1"),
# valid two days. The keys are mode 600.
make_pki() {
  (
    cd "$TMP/pki" || exit 1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -keyout ca.key -out ca.pem -subj "/CN=tlsup $CI_NAME throwaway CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout server.key -out server.csr -subj "/CN=$1" 2>/dev/null
    printf '%s\n' "subjectAltName=$2" \
      "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth" > server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -extfile server.ext -out server.pem 2>/dev/null
    openssl verify -CAfile ca.pem server.pem >/dev/null
    cat server.pem ca.pem > chain.pem
    chmod 600 ca.key server.key
  )
}

# ---------------------------------------------------------------- tests
# logged COMMAND...: runs COMMAND with its output on stdout and in
# TMP/log/go-test.out; COMMAND's status, not tee's, is returned.
logged() {
  local rc
  set +o pipefail
  "$@" 2>&1 | tee "$TMP/log/go-test.out"
  rc=${PIPESTATUS[0]}
  set -o pipefail
  return "$rc"
}

# capture_flag ARG: parses a script's only argument, "" or --capture, into
# CAPTURE_INTO (ROOT with --capture: the tests rewrite the fixtures there).
capture_flag() {
  CAPTURE_INTO=""
  case "${1:-}" in
    "") ;;
    --capture) CAPTURE_INTO="$ROOT" ;;
    *) echo "usage: $0 [--capture]" >&2; exit 2 ;;
  esac
}

# compare_golden CAPTURED DIR...: the testdata/golden_* files under each
# DIR, as captured under CAPTURED and as committed under ROOT. A difference
# is reported, not fatal (a Debian update may change a server's dialogue).
compare_golden() {
  local captured=$1 changed="" f rel d
  shift
  for d in "$@"; do
    # Only the golden_* files: testdata/ holds other fixtures too.
    for f in "$captured/$d"/testdata/golden_* "$ROOT/$d"/testdata/golden_*; do
      [ -e "$f" ] || continue
      rel=${f#"$captured"/}
      rel=${rel#"$ROOT"/}
      case " $changed " in *" $rel "*) continue ;; esac
      if ! cmp -s "$ROOT/$rel" "$captured/$rel"; then
        changed="$changed $rel"
        diff -u "$ROOT/$rel" "$captured/$rel" >> "$TMP/log/golden.diff" 2>&1 || true
      fi
    done
  done
  if [ -z "$changed" ]; then
    log "golden fixtures match what the servers say today"
  else
    log "NOTE: the servers' dialogue differs from the committed golden fixtures (not fatal):$changed"
    head -n 60 "$TMP/log/golden.diff"
  fi
}

# mail_setup: for a script running Postfix and Dovecot from the configs in
# $CONF (postfix-main.cf, postfix-master.cf, dovecot.conf, with @DIR@ for
# $TMP): one test user, TEST_USER with a random TEST_PASSWORD, known to
# Dovecot (passwd-file $TMP/dovecot/users) and, through Dovecot's auth
# socket, to Postfix; its mail (in $TMP/mail/tlsup) belongs to nobody.
# The configs are rendered into $TMP and Dovecot's is checked.
mail_setup() {
  TEST_USER=tlsup
  TEST_PASSWORD=$(openssl rand -hex 12)
  chown 65534:65534 "$TMP/mail/tlsup"
  echo "$TEST_USER:{PLAIN}$TEST_PASSWORD:65534:65534::$TMP/mail/tlsup::" > "$TMP/dovecot/users"
  chgrp dovecot "$TMP/dovecot/users"
  chmod 640 "$TMP/dovecot/users"
  mkdir -p "$TMP/postfix" "$TMP/postfix-queue"
  local f
  for f in postfix-main.cf:postfix/main.cf postfix-master.cf:postfix/master.cf dovecot.conf:dovecot/dovecot.conf; do
    sed "s|@DIR@|$TMP|g" "$CONF/${f%%:*}" > "$TMP/${f#*:}"
  done
  dovecot -c "$TMP/dovecot/dovecot.conf" -n > /dev/null
}
