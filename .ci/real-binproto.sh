#!/usr/bin/env bash
# Real servers for the binary and XML protocols of examples/: installs
# PostgreSQL 15, OpenLDAP slapd 2.5 and Prosody 0.12 from Debian 12, starts
# throwaway instances of them on 127.0.0.7 and 127.0.0.8 only (configs in
# .ci/real-binproto/, everything else in a temporary directory, certificates
# from a throwaway CA), runs the examples' real-server tests
# and examples/tlsprobe's (TLSUP_REAL_BINPROTO=1) against them, then stops
# exactly the daemons it started.
#
#   postgres 127.0.0.7:5432  ssl = on (SSLRequest answered S)
#            127.0.0.8:5432  ssl = off (answered N)
#   ldap     127.0.0.7:389   StartTLS (TLS set in cn=config)
#            127.0.0.7:636   ldaps
#            127.0.0.8:389   no TLS configured (StartTLS answered unavailable)
#   xmpp     127.0.0.7:5222  STARTTLS (xmpp.tlsup.test offered, required.tlsup.test required)
#            127.0.0.7:5223  direct TLS
#            127.0.0.8:5222  notls.tlsup.test: STARTTLS not offered
#
# Needs root on Debian 12 (apt-get, ports 389 and 636).
#
#   bash .ci/real-binproto.sh           run the tests
#   bash .ci/real-binproto.sh --serve   start the servers, write the tests'
#                                       environment to the file named in the
#                                       log and wait (for development)
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh real-binproto     # log, make_tmp, apt_install, make_pki, ...
CONF="$ROOT/.ci/real-binproto"
serve=0
case "${1:-}" in
  "") ;;
  --serve) serve=1 ;;
  *) echo "usage: $0 [--serve]" >&2; exit 2 ;;
esac

require_root "apt-get, ports 389/636"

make_tmp
# SIGINT is PostgreSQL's fast shutdown; slapd and Prosody take it as
# SIGTERM.
STOP_SIGNAL=INT
# A postmaster that came up although it failed is ours too: its pid file
# is in our directory.
adopt_pidfile "$TMP/pg-tls/postmaster.pid"
adopt_pidfile "$TMP/pg-plain/postmaster.pid"
EXTRA_LOGS+=("$TMP/prosody/prosody.log" "$TMP/prosody/prosody.err")

LISTENERS="127.0.0.7:5432 127.0.0.8:5432 127.0.0.7:389 127.0.0.7:636 127.0.0.8:389 127.0.0.7:5222 127.0.0.8:5222 127.0.0.7:5223"

# ---------------------------------------------------------------- install
t0=$(now_ms)
# slapd: no initial configuration and no prompt (this script writes its own).
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
apt_install postgresql-15 slapd ldap-utils prosody openssl || exit 1
t_install=$(( $(now_ms) - t0 ))
PGBIN=/usr/lib/postgresql/15/bin
PG_VERSION=$("$PGBIN/postgres" --version | awk '{print $3}')
SLAPD_VERSION=$(slapd -VV 2>&1 | sed -n 's/.*slapd \([0-9][0-9.]*\).*/\1/p' | head -n 1)
PROSODY_VERSION=$(dpkg-query -W -f '${Version}' prosody)
log "install took $(secs $t_install) s: PostgreSQL $PG_VERSION, slapd $SLAPD_VERSION, Prosody $PROSODY_VERSION"

# ---------------------------------------------------------------- start
t0=$(now_ms)
ports_free $LISTENERS

# A throwaway CA and one server certificate for every name and address.
make_pki localhost "DNS:localhost,DNS:ldap.tlsup.test,DNS:db.tlsup.test,DNS:xmpp.tlsup.test,DNS:required.tlsup.test,IP:127.0.0.7,IP:127.0.0.8"
chmod 644 "$TMP/pki/server.key" # the daemons run as their own users; the directory is ours
TEST_USER=tlsup
TEST_PASSWORD=$(openssl rand -hex 12)

# PostgreSQL: one initdb, copied for the cluster without TLS.
t1=$(now_ms)
for c in tls plain; do mkdir -p "$TMP/pg-$c-run"; done
install -d -o postgres -g postgres -m 700 "$TMP/pg-tls"
setpriv --reuid=postgres --regid=postgres --init-groups \
  "$PGBIN/initdb" -D "$TMP/pg-tls" -U postgres -A peer --no-sync -E UTF8 --locale=C.UTF-8 \
  > "$TMP/log/initdb.log" 2>&1
cp -a "$TMP/pg-tls" "$TMP/pg-plain"
for c in tls plain; do
  dir="$TMP/pg-$c-run"
  sed "s|@DIR@|$dir|g" "$CONF/postgresql-$c.conf" >> "$TMP/pg-$c/postgresql.conf"
  cp "$CONF/pg_hba-$c.conf" "$dir/pg_hba-$c.conf"
  if [ "$c" = tls ]; then
    cp "$TMP/pki/server.pem" "$dir/server.pem"
    cp "$TMP/pki/server.key" "$dir/server.key"
    chmod 600 "$dir/server.key"
  fi
  chown -R postgres:postgres "$dir"
  start_daemon "$TMP/log/postgres-$c.log" setpriv --reuid=postgres --regid=postgres --init-groups \
    "$PGBIN/postgres" -D "$TMP/pg-$c"
done
log "postgres started, pids ${STARTED_PIDS[*]} ($(secs $(( $(now_ms) - t1 ))) s with initdb)"

# slapd: cn=config written with slapadd, one instance with TLS, one without.
t1=$(now_ms)
LDAP_ROOTPW=$(openssl rand -hex 12)
for c in tls plain; do
  dir="$TMP/slapd-$c"
  mkdir -p "$dir/slapd.d" "$dir/db"
  if [ "$c" = tls ]; then tls_mark=""; else tls_mark="#"; fi
  sed -e "s|@DIR@|$dir|g" -e "s|@PKI@|$TMP/pki|g" -e "s|@ROOTPW@|$LDAP_ROOTPW|g" \
    -e "s|^@TLS@|$tls_mark|" "$CONF/slapd-config.ldif" > "$dir/config.ldif"
  slapadd -n 0 -F "$dir/slapd.d" -l "$dir/config.ldif" > "$TMP/log/slapadd-$c.log" 2>&1
  slapadd -n 1 -F "$dir/slapd.d" -l "$CONF/slapd-data.ldif" >> "$TMP/log/slapadd-$c.log" 2>&1
  if [ "$c" = tls ]; then
    urls="ldap://127.0.0.7:389/ ldaps://127.0.0.7:636/"
  else
    urls="ldap://127.0.0.8:389/"
  fi
  # -d: stay in the foreground, as this shell's child.
  start_daemon "$TMP/log/slapd-$c.log" slapd -d 0 -F "$dir/slapd.d" -h "$urls"
done
log "slapd started ($(secs $(( $(now_ms) - t1 ))) s with slapadd)"

# Prosody, as its own user, in the foreground; the test user registered
# on the two virtual hosts that offer TLS.
t1=$(now_ms)
PDIR="$TMP/prosody"
mkdir -p "$PDIR/data" "$PDIR/no-certificates"
sed -e "s|@DIR@|$PDIR|g" -e "s|@PKI@|$TMP/pki|g" "$CONF/prosody.cfg.lua" > "$PDIR/prosody.cfg.lua"
chown -R prosody:prosody "$PDIR"
for host in xmpp.tlsup.test required.tlsup.test notls.tlsup.test; do
  setpriv --reuid=prosody --regid=prosody --init-groups \
    prosodyctl --config "$PDIR/prosody.cfg.lua" register "$TEST_USER" "$host" "$TEST_PASSWORD" \
    >> "$TMP/log/prosodyctl.log" 2>&1
done
start_daemon "$TMP/log/prosody.out" setpriv --reuid=prosody --regid=prosody --init-groups \
  prosody --config "$PDIR/prosody.cfg.lua" -F
log "prosody started ($(secs $(( $(now_ms) - t1 ))) s with registration)"

for a in $LISTENERS; do wait_port "${a%:*}" "${a#*:}"; done

# The test role, through each cluster's own socket.
for c in tls plain; do
  for _ in $(seq 100); do
    if setpriv --reuid=postgres --regid=postgres --init-groups \
      "$PGBIN/psql" -h "$TMP/pg-$c-run" -U postgres -d postgres -qAt -c 'SELECT 1' >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  setpriv --reuid=postgres --regid=postgres --init-groups \
    "$PGBIN/psql" -h "$TMP/pg-$c-run" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE $TEST_USER LOGIN PASSWORD '$TEST_PASSWORD'" > /dev/null
done
t_start_servers=$(( $(now_ms) - t0 ))
log "start took $(secs $t_start_servers) s; all ports listen"

# ---------------------------------------------------------------- tests
t0=$(now_ms)
TEST_ENV=(TLSUP_REAL_BINPROTO=1 \
  TLSUP_CA="$TMP/pki/ca.pem" \
  TLSUP_USER="$TEST_USER" TLSUP_PASSWORD="$TEST_PASSWORD" \
  TLSUP_PG_ADDR=127.0.0.7:5432 TLSUP_PG_NOTLS_ADDR=127.0.0.8:5432 \
  TLSUP_LDAP_ADDR=127.0.0.7:389 TLSUP_LDAPS_ADDR=127.0.0.7:636 TLSUP_LDAP_NOTLS_ADDR=127.0.0.8:389 \
  TLSUP_LDAP_BASE=dc=tlsup,dc=test TLSUP_LDAP_BINDDN=cn=admin,dc=tlsup,dc=test TLSUP_LDAP_BINDPW="$LDAP_ROOTPW" \
  TLSUP_XMPP_ADDR=127.0.0.7:5222 TLSUP_XMPPS_ADDR=127.0.0.7:5223 TLSUP_XMPP_NOTLS_ADDR=127.0.0.8:5222 \
  TLSUP_XMPP_DOMAIN=xmpp.tlsup.test TLSUP_XMPP_REQUIRED_DOMAIN=required.tlsup.test \
  TLSUP_XMPP_NOTLS_DOMAIN=notls.tlsup.test \
  TLSUP_PG_VERSION="$PG_VERSION" TLSUP_SLAPD_VERSION="$SLAPD_VERSION" TLSUP_PROSODY_VERSION="$PROSODY_VERSION")
if [ "$serve" = 1 ]; then
  printf 'export %q\n' "${TEST_ENV[@]}" > "$TMP/env"
  log "serving; environment in $TMP/env; stop with kill -TERM $$"
  while :; do sleep 1; done
fi
logged env "${TEST_ENV[@]}" \
  go test -count=1 -race -timeout 300s -run 'Real' -v ./examples/postgres/ ./examples/ldap/ ./examples/xmpp/ ./examples/tlsprobe/ ||
  die "go test failed"
t_tests=$(( $(now_ms) - t0 ))

t_total=$(( $(now_ms) - T_START ))
log "summary: PostgreSQL $PG_VERSION, slapd $SLAPD_VERSION, Prosody $PROSODY_VERSION"
log "  postgres 127.0.0.7:5432 ssl=on; 127.0.0.8:5432 ssl=off"
log "  ldap 127.0.0.7:389 StartTLS, 127.0.0.7:636 ldaps; 127.0.0.8:389 no TLS"
log "  xmpp 127.0.0.7:5222 STARTTLS (offered; required on required.tlsup.test), 127.0.0.7:5223 direct TLS; 127.0.0.8:5222 notls.tlsup.test"
log "  install $(secs $t_install) s, start $(secs $t_start_servers) s, tests $(secs $t_tests) s, total $(secs $t_total) s"
