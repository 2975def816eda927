-- A throwaway Prosody for .ci/real-binproto.sh. @DIR@ is its directory and
-- @PKI@ the certificate directory, filled in by the script.
--   xmpp.tlsup.test      TLS offered (STARTTLS on 5222, direct TLS on 5223)
--   required.tlsup.test  TLS required before authentication
--   notls.tlsup.test     no certificate: STARTTLS is not offered
-- c2s listens on 127.0.0.7 and 127.0.0.8 only; no s2s, no HTTP.
pidfile = "@DIR@/prosody.pid"
data_path = "@DIR@/data"
daemonize = false
log = { info = "@DIR@/prosody.log"; error = "@DIR@/prosody.err" }

interfaces = { "127.0.0.7" }
c2s_interfaces = { "127.0.0.7", "127.0.0.8" }
c2s_ports = { 5222 }
c2s_direct_tls_interfaces = { "127.0.0.7" }
c2s_direct_tls_ports = { 5223 }
c2s_direct_tls_ssl = { certificate = "@PKI@/server.pem"; key = "@PKI@/server.key" }
s2s_ports = {}
s2s_interfaces = {}
component_ports = {}
http_ports = {}
https_ports = {}
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping" }
modules_disabled = { "s2s"; "offline"; "c2s_direct_tls_legacy" }
authentication = "internal_plain"
storage = "internal"
c2s_require_encryption = false
allow_unencrypted_plain_auth = false
certificates = "@DIR@/no-certificates"

VirtualHost "xmpp.tlsup.test"
  ssl = { certificate = "@PKI@/server.pem"; key = "@PKI@/server.key" }

VirtualHost "required.tlsup.test"
  ssl = { certificate = "@PKI@/server.pem"; key = "@PKI@/server.key" }
  c2s_require_encryption = true

VirtualHost "notls.tlsup.test"
  -- Without mod_tls nothing offers STARTTLS (Prosody would otherwise find
  -- a certificate for the host anyway).
  modules_disabled = { "tls"; "s2s"; "offline"; "c2s_direct_tls_legacy" }
