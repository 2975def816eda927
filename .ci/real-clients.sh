#!/usr/bin/env bash
# Real clients against `examples/demo -serve` on 127.0.0.1: openssl s_client
# (-starttls smtp|imap|pop3, verification required), curl --ssl-reqd (send
# over SMTP, list over IMAP and POP3), Python's smtplib/imaplib/poplib
# (.ci/real_clients.py) and swaks --tls --auth PLAIN. One PASS/FAIL line per
# client, then "N passed, N failed"; exit status 1 on any failure.
#
# Needs Go, openssl, curl and python3; installs swaks (and Net::SSLeay for
# its TLS) with apt-get when missing. Every wait is bounded; the only
# process killed is the demo server this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh real-clients     # log, make_tmp, apt_install, ...

make_tmp

passed=0
failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() {
  echo "FAIL $1"
  failed=$((failed + 1))
  if [ -s "$TMP/out" ]; then sed 's/^/    /' "$TMP/out" | tail -n 25; fi
}

# run NAME CHECK-REGEX COMMAND...: runs COMMAND with its output in
# $TMP/out, bounded by timeout; PASS when it exits 0 and, if CHECK-REGEX is
# not empty, its output matches it.
run() {
  local name=$1 check=$2
  shift 2
  if timeout 60 "$@" >"$TMP/out" 2>&1 </dev/null; then
    if [ -z "$check" ] || grep -Eq -- "$check" "$TMP/out"; then
      pass "$name"
      return
    fi
    echo "    output does not match /$check/"
  else
    echo "    exit status $?"
  fi
  fail "$name"
}

echo "building examples/demo"
timeout 300 go build -o "$TMP/demo" ./examples/demo

"$TMP/demo" -serve -certdir "$TMP/certs" >"$TMP/demo.out" 2>"$TMP/demo.err" &
demo_pid=$!
track_pid "$demo_pid"
for _ in $(seq 1 300); do
  if [ "$(grep -Ec '^(smtp|imap|pop3) 127\.0\.0\.1:[0-9]+$' "$TMP/demo.out" || true)" = 3 ]; then break; fi
  if ! kill -0 "$demo_pid" 2>/dev/null; then break; fi
  sleep 0.1
done
port() { awk -v p="$1" '$1 == p { n = split($2, a, ":"); print a[n] }' "$TMP/demo.out"; }
smtp_port=$(port smtp)
imap_port=$(port imap)
pop3_port=$(port pop3)
ca="$TMP/certs/ca.pem"
if [ -z "$smtp_port" ] || [ -z "$imap_port" ] || [ -z "$pop3_port" ] || [ ! -s "$ca" ]; then
  echo "FAIL demo -serve did not start"
  sed 's/^/    /' "$TMP/demo.out" "$TMP/demo.err"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "demo -serve: smtp $smtp_port, imap $imap_port, pop3 $pop3_port; CA $ca"

# openssl s_client: STARTTLS, then a verified handshake for "localhost".
for proto in smtp imap pop3; do
  p=$(port "$proto")
  run "openssl s_client -starttls $proto" 'Verify return code: 0 \(ok\)' \
    openssl s_client -connect "127.0.0.1:$p" -starttls "$proto" -verify_return_error \
    -CAfile "$ca" -servername localhost -verify_hostname localhost
done

# curl: --ssl-reqd refuses to continue without TLS; "localhost" is pinned to
# 127.0.0.1 and verified against the demo CA.
printf 'From: demo@localhost\r\nTo: demo@localhost\r\nSubject: curl over STARTTLS\r\n\r\n.leading dot\r\nhello\r\n' >"$TMP/msg.txt"
curl_common=(curl --silent --show-error --ssl-reqd --cacert "$ca" -u demo:demo --max-time 30)
run "curl smtp send" "" \
  "${curl_common[@]}" --resolve "localhost:$smtp_port:127.0.0.1" "smtp://localhost:$smtp_port/client.localhost" \
  --mail-from demo@localhost --mail-rcpt demo@localhost --upload-file "$TMP/msg.txt"
run "curl imap list" 'LIST .*INBOX' \
  "${curl_common[@]}" --resolve "localhost:$imap_port:127.0.0.1" "imap://localhost:$imap_port/"
run "curl imap examine INBOX" '\* 0 EXISTS' \
  "${curl_common[@]}" --resolve "localhost:$imap_port:127.0.0.1" -X 'EXAMINE INBOX' "imap://localhost:$imap_port/"
run "curl pop3 list" "" \
  "${curl_common[@]}" --resolve "localhost:$pop3_port:127.0.0.1" "pop3://localhost:$pop3_port/"

# Python's standard library clients.
for proto in smtp imap pop3; do
  lib=${proto}lib; [ "$proto" = pop3 ] && lib=poplib
  run "python $lib starttls" "" python3 .ci/real_clients.py "$proto" 127.0.0.1 "$(port "$proto")" "$ca"
done

# swaks: STARTTLS with verification, AUTH PLAIN, a message.
if ! command -v swaks >/dev/null 2>&1 || ! perl -MNet::SSLeay -e 1 >/dev/null 2>&1; then
  echo "installing swaks with apt-get"
  apt_install swaks libnet-ssleay-perl || true
fi
if command -v swaks >/dev/null 2>&1; then
  run "swaks --tls --auth PLAIN" '250 2\.0\.0 Message accepted' \
    swaks --server 127.0.0.1 --port "$smtp_port" --tls --tls-verify --tls-ca-path "$ca" \
    --auth PLAIN --auth-user demo --auth-password demo \
    --from demo@localhost --to demo@localhost --timeout 30
else
  : >"$TMP/out"
  fail "swaks --tls --auth PLAIN (swaks could not be installed)"
fi

# The server must still be up (nothing above may have crashed it), and exit 0
# within 5 s of SIGTERM.
if kill -0 "$demo_pid" 2>/dev/null; then
  kill -TERM "$demo_pid"
  for _ in $(seq 1 50); do
    kill -0 "$demo_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$demo_pid" 2>/dev/null; then
    kill -KILL "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
    forget_pid "$demo_pid"
    : >"$TMP/out"
    fail "demo -serve exits within 5 s of SIGTERM"
  else
    status=0
    wait "$demo_pid" || status=$?
    forget_pid "$demo_pid"
    cp "$TMP/demo.err" "$TMP/out"
    if [ "$status" = 0 ]; then pass "demo -serve exits 0 on SIGTERM"; else fail "demo -serve exits 0 on SIGTERM (status $status)"; fi
  fi
else
  forget_pid "$demo_pid"
  cp "$TMP/demo.err" "$TMP/out"
  fail "demo -serve still running after the clients"
fi

echo "$passed passed, $failed failed"
log "total $(secs $(( $(now_ms) - T_START ))) s"
[ "$failed" = 0 ]
