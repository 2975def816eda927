#!/usr/bin/env bash
# Real line-protocol servers for CI: installs Dovecot's ManageSieve
# (Pigeonhole), INN's nnrpd and vsftpd from Debian's packages, starts
# throwaway instances of them on 127.0.0.5 (TLS) and 127.0.0.6 (no TLS)
# only (configs in .ci/real-lineproto/, everything else in a temporary
# directory), runs the example Upgraders against them
# (internal/realpeers/lineproto, with TLSUP_REAL_LINEPROTO=1) and
# examples/tlsprobe, then stops exactly the daemons it started.
#
#   127.0.0.5:4190 ManageSieve, STARTTLS     127.0.0.6:4190 ManageSieve, no TLS
#   127.0.0.5:119  NNTP, STARTTLS            127.0.0.6:119  NNTP, TLS broken (580)
#   127.0.0.5:563  NNTP over implicit TLS    127.0.0.6:563  NNTP, plaintext
#   127.0.0.5:21   FTP, AUTH TLS             127.0.0.6:21   FTP, no TLS
#   127.0.0.5:990  FTP over implicit TLS     127.0.0.6:990  FTP, plaintext
#
# Needs root on Debian 12 (apt-get, a system user for vsftpd's PAM login,
# privileged ports).
#
#   bash .ci/real-lineproto.sh            run the tests
#   bash .ci/real-lineproto.sh --capture  also rewrite the golden fixtures
#                                         (examples/{sieve,nntp,ftp}/testdata/golden_*)
#
# Without --capture the fixtures are captured into the temporary directory
# and compared with the committed ones; a difference is reported, not fatal.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh real-lineproto     # log, make_tmp, apt_install, make_pki, ...
CONF="$ROOT/.ci/real-lineproto"
capture_flag "${1:-}"

require_root "apt-get, useradd, ports 21/119/563/990"

make_tmp
mkdir -p "$TMP/mail/tlsup" "$TMP/ftp-home" "$TMP/vsftpd/empty"

TEST_USER=tlsup
USER_CREATED=0     # 1 when this script created the system user
EXIT_HOOKS+=('if [ "$USER_CREATED" = 1 ]; then userdel "$TEST_USER" 2>/dev/null; fi')

PORTS="4190 119 563 21 990"

# ---------------------------------------------------------------- install
t0=$(now_ms)
# inn2's postinst fails when the machine's name has no domain (a CI
# container's "hostname --fqdn"): innconfval refuses an inn.conf without
# "domain". It is then configured again with INNCONF pointing at a copy of
# Debian's inn.conf that has one; /etc/news is left as shipped.
finish_inn2() {
  if installed inn2; then return 0; fi
  [ -f /etc/news/inn.conf ] || return 1
  { grep -v '^domain:' /etc/news/inn.conf; echo "domain: tlsup.test"; } > "$TMP/inn-install.conf"
  INNCONF="$TMP/inn-install.conf" DEBIAN_FRONTEND=noninteractive dpkg --configure inn2
}
APT_FIXUP=finish_inn2
apt_install inn2 dovecot-core dovecot-managesieved vsftpd openssl || exit 1
t_install=$(( $(now_ms) - t0 ))
DOVECOT_VERSION=$(dovecot --version)
PIGEONHOLE_VERSION=$(dpkg-query -W -f='${Version}' dovecot-managesieved)
INN_VERSION=$(dpkg-query -W -f='${Version}' inn2)
VSFTPD_VERSION=$(dpkg-query -W -f='${Version}' vsftpd)
log "install took $(secs $t_install) s: Dovecot $DOVECOT_VERSION (managesieved $PIGEONHOLE_VERSION), INN $INN_VERSION, vsftpd $VSFTPD_VERSION"

# ---------------------------------------------------------------- start
t0=$(now_ms)
for p in $PORTS; do ports_free "127.0.0.5:$p" "127.0.0.6:$p"; done

# A throwaway CA and a server certificate for localhost and both addresses.
make_pki localhost "DNS:localhost,IP:127.0.0.5,IP:127.0.0.6"

# One test user and password for all three: Dovecot's passwd-file, INN's
# ckpasswd file, and a system user for vsftpd (PAM). The system user is
# removed at exit if this script created it.
TEST_PASSWORD=$(openssl rand -hex 12)
if ! id "$TEST_USER" > /dev/null 2>&1; then
  useradd -M -d "$TMP/ftp-home" -s /bin/sh "$TEST_USER"
  USER_CREATED=1
else
  usermod -d "$TMP/ftp-home" "$TEST_USER"
fi
echo "$TEST_USER:$TEST_PASSWORD" | chpasswd
chown "$TEST_USER" "$TMP/ftp-home"
chown 65534:65534 "$TMP/mail/tlsup"

# Dovecot ManageSieve: two instances (see dovecot.conf).
echo "$TEST_USER:{PLAIN}$TEST_PASSWORD:65534:65534::$TMP/mail/tlsup::" > "$TMP/users"
chgrp dovecot "$TMP/users"
chmod 640 "$TMP/users"
start_dovecot() { # NAME ADDR SSL
  mkdir -p "$TMP/$1/run" "$TMP/$1/state"
  sed -e "s|@DIR@|$TMP|g" -e "s|@NAME@|$1|g" -e "s|@ADDR@|$2|g" -e "s|@SSL@|$3|g" \
    "$CONF/dovecot.conf" > "$TMP/$1/dovecot.conf"
  dovecot -c "$TMP/$1/dovecot.conf" -n > /dev/null
  start_daemon "$TMP/log/$1.out" dovecot -F -c "$TMP/$1/dovecot.conf"
  log "dovecot ($1, $2:4190, ssl=$3) started, pid $LAST_PID"
}
start_dovecot dovecot 127.0.0.5 yes
DOVECOT_TLS_PID=$LAST_PID
start_dovecot dovecot-notls 127.0.0.6 no
DOVECOT_NOTLS_PID=$LAST_PID

# INN: nnrpd standalone (-D -f, in the foreground as this shell's child),
# reading a copy of Debian's inn.conf with the overrides of inn.conf.in,
# and an overview of its own (built empty by makehistory) so that nothing
# under /var/lib/news or /var/spool/news is written.
INN="$TMP/inn"
mkdir -p "$INN/etc" "$INN/run" "$INN/log" "$INN/tmp" "$INN/db" "$INN/overview"
for f in /etc/news/*; do
  case "$(basename "$f")" in inn.conf|readers.conf) ;; *) cp -a "$f" "$INN/etc/" ;; esac
done
keys=$(grep -v '^#' "$CONF/inn.conf.in" | cut -d: -f1 | grep . | paste -sd'|')
{ grep -v -E "^($keys):" /etc/news/inn.conf; sed "s|@DIR@|$TMP|g" "$CONF/inn.conf.in"; } > "$INN/etc/inn.conf"
# The no-TLS instance: certificate files that do not exist. nnrpd still
# advertises STARTTLS there and answers it with 580 (a real refusal).
sed -e "s|^tlscertfile:.*|tlscertfile: $INN/etc/absent-cert.pem|" \
  -e "s|^tlskeyfile:.*|tlskeyfile: $INN/etc/absent-key.pem|" "$INN/etc/inn.conf" > "$INN/etc/inn-notls.conf"
sed "s|@DIR@|$TMP|g" "$CONF/readers.conf" > "$INN/etc/readers.conf"
cp /usr/lib/news/examples/active /usr/lib/news/examples/newsgroups "$INN/db/" 2>/dev/null ||
  cp /var/lib/news/active /var/lib/news/newsgroups "$INN/db/"
cp "$TMP/pki/server.pem" "$INN/etc/cert.pem"
cp "$TMP/pki/server.key" "$INN/etc/key.pem"
echo "$TEST_USER:$(openssl passwd -6 "$TEST_PASSWORD")" > "$INN/etc/newsusers"
chown -R news:news "$INN"
chmod 600 "$INN/etc/key.pem" "$INN/etc/newsusers"
INNCONF="$INN/etc/inn.conf" su news -s /bin/sh -c "/usr/lib/news/bin/makehistory -O -x" \
  >> "$TMP/log/inn-makehistory.out" 2>&1
start_nnrpd() { # CONF ADDR PORT [-S]
  start_daemon "$TMP/log/nnrpd-$2-$3.out" \
    env INNCONF="$INN/etc/$1" /usr/lib/news/bin/nnrpd -D -f -n -b "$2" -p "$3" ${4:-}
  log "nnrpd ($1, $2:$3 ${4:-}) started, pid $LAST_PID"
}
start_nnrpd inn.conf 127.0.0.5 119
NNRPD_PIDS="$LAST_PID"
start_nnrpd inn.conf 127.0.0.5 563 -S
NNRPD_PIDS="$NNRPD_PIDS $LAST_PID"
start_nnrpd inn-notls.conf 127.0.0.6 119
NNRPD_PIDS="$NNRPD_PIDS $LAST_PID"
start_nnrpd inn-notls.conf 127.0.0.6 563
NNRPD_PIDS="$NNRPD_PIDS $LAST_PID"

# vsftpd: one standalone instance per listener, in the foreground.
start_vsftpd() { # NAME ADDR PORT SSL IMPLICIT
  sed -e "s|@DIR@|$TMP|g" -e "s|@NAME@|$1|g" -e "s|@ADDR@|$2|g" -e "s|@PORT@|$3|g" \
    -e "s|@SSL@|$4|g" -e "s|@IMPLICIT@|$5|g" "$CONF/vsftpd.conf" > "$TMP/vsftpd/$1.conf"
  start_daemon "$TMP/log/vsftpd-$1.out" vsftpd "$TMP/vsftpd/$1.conf"
  log "vsftpd ($1, $2:$3 ssl=$4 implicit=$5) started, pid $LAST_PID"
}
start_vsftpd explicit 127.0.0.5 21 YES NO
VSFTPD_PIDS="$LAST_PID"
start_vsftpd implicit 127.0.0.5 990 YES YES
VSFTPD_PIDS="$VSFTPD_PIDS $LAST_PID"
start_vsftpd notls 127.0.0.6 21 NO NO
VSFTPD_PIDS="$VSFTPD_PIDS $LAST_PID"
start_vsftpd notls-990 127.0.0.6 990 NO NO
VSFTPD_PIDS="$VSFTPD_PIDS $LAST_PID"

wait_port 127.0.0.5 4190 "$DOVECOT_TLS_PID"
wait_port 127.0.0.6 4190 "$DOVECOT_NOTLS_PID"
set -- $NNRPD_PIDS
wait_port 127.0.0.5 119 "$1"; wait_port 127.0.0.5 563 "$2"
wait_port 127.0.0.6 119 "$3"; wait_port 127.0.0.6 563 "$4"
set -- $VSFTPD_PIDS
wait_port 127.0.0.5 21 "$1"; wait_port 127.0.0.5 990 "$2"
wait_port 127.0.0.6 21 "$3"; wait_port 127.0.0.6 990 "$4"
t_start_servers=$(( $(now_ms) - t0 ))
log "start took $(secs $t_start_servers) s; all ports listen"

# ---------------------------------------------------------------- tests
t0=$(now_ms)
go build -o "$TMP/tlsprobe" ./examples/tlsprobe
captured="${CAPTURE_INTO:-$TMP/capture}"
mkdir -p "$captured"

logged env TLSUP_REAL_LINEPROTO=1 \
  TLSUP_CA="$TMP/pki/ca.pem" \
  TLSUP_USER="$TEST_USER" TLSUP_PASSWORD="$TEST_PASSWORD" \
  TLSUP_SIEVE_ADDR=127.0.0.5:4190 \
  TLSUP_SIEVE_NOTLS_ADDR=127.0.0.6:4190 \
  TLSUP_NNTP_ADDR=127.0.0.5:119 \
  TLSUP_NNTPS_ADDR=127.0.0.5:563 \
  TLSUP_NNTP_NOTLS_ADDR=127.0.0.6:119 \
  TLSUP_NNTPS_NOTLS_ADDR=127.0.0.6:563 \
  TLSUP_FTP_ADDR=127.0.0.5:21 \
  TLSUP_FTPS_ADDR=127.0.0.5:990 \
  TLSUP_FTP_NOTLS_ADDR=127.0.0.6:21 \
  TLSUP_FTPS_NOTLS_ADDR=127.0.0.6:990 \
  TLSUP_DOVECOT_VERSION="$DOVECOT_VERSION" \
  TLSUP_INN_VERSION="$INN_VERSION" \
  TLSUP_VSFTPD_VERSION="$VSFTPD_VERSION" \
  TLSUP_TLSPROBE="$TMP/tlsprobe" \
  TLSUP_CAPTURE="$captured" \
  go test -count=1 -race -v ./internal/realpeers/lineproto/ ||
  die "go test ./internal/realpeers/lineproto/ failed"

# The probe as a person runs it: text output, exit status 0 for each.
for target in "sieve 127.0.0.5:4190" "nntp 127.0.0.5:119" "nntp 127.0.0.5:563" "ftp 127.0.0.5:21" "ftp 127.0.0.5:990"; do
  set -- $target
  log "tlsprobe -protocol $1 $2"
  if ! "$TMP/tlsprobe" -cafile "$TMP/pki/ca.pem" -timeout 10s -protocol "$1" "$2" | sed 's/^/    /'; then
    die "tlsprobe -protocol $1 $2 did not establish TLS"
  fi
done
t_tests=$(( $(now_ms) - t0 ))

if [ -z "$CAPTURE_INTO" ]; then
  compare_golden "$captured" examples/sieve examples/nntp examples/ftp
else
  log "golden fixtures rewritten under examples/{sieve,nntp,ftp}/testdata/"
fi

t_total=$(( $(now_ms) - T_START ))
log "summary: Dovecot $DOVECOT_VERSION (managesieved $PIGEONHOLE_VERSION), INN $INN_VERSION, vsftpd $VSFTPD_VERSION"
log "  sieve 4190: 127.0.0.5 starttls; 127.0.0.6 no tls"
log "  nntp  119: 127.0.0.5 starttls; 127.0.0.6 starttls advertised, refused 580; 563: .5 implicit, .6 plaintext"
log "  ftp   21: 127.0.0.5 auth tls; 127.0.0.6 no tls; 990: .5 implicit, .6 plaintext"
log "  install $(secs $t_install) s, start $(secs $t_start_servers) s, tests $(secs $t_tests) s, total $(secs $t_total) s"
