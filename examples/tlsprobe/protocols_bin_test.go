package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/examples/ldap"
	"github.com/tlsup/tlsup/examples/postgres"
	"github.com/tlsup/tlsup/internal/bytepeer"
	"github.com/tlsup/tlsup/internal/scripttest"
)

// pgPeer answers the SSLRequest with answer and starts TLS after 'S'.
func pgPeer(answer string) func(*bytepeer.Conn) error {
	return func(p *bytepeer.Conn) error {
		if err := p.Expect(postgres.SSLRequest()); err != nil {
			return err
		}
		if err := p.SendString(answer); err != nil {
			return err
		}
		if answer == "S" {
			if err := p.TLS(); err != nil {
				return err
			}
		}
		return p.ExpectEOF()
	}
}

func TestProbePostgres(t *testing.T) {
	pki := scripttest.NewPKI(t)
	caFile := writeCA(t, pki)
	tests := []struct {
		name   string
		answer string
		policy string
		code   int
		kind   string
		tls    bool
	}{
		{"tls", "S", "required", exitTLS, "", true},
		{"N required", "N", "required", exitFailed, "not-offered", false},
		{"N always", "N", "always", exitFailed, "not-offered", false},
		{"N opportunistic", "N", "opportunistic", exitPlaintext, "", false},
		{"injected", "SN", "required", exitFailed, "injected-data", false},
		{"garbage", "X", "required", exitFailed, "protocol", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, peer := bytepeer.Listen(t, pgPeer(tt.answer), &bytepeer.Options{TLSConfig: pki.Server()})
			r := runProbe(t, "-json", "-protocol", "postgres", "-policy", tt.policy, "-cafile", caFile,
				"-servername", scripttest.TestName, "-timeout", "10s", addr)
			assert.Equal(t, tt.code, r.code, "stdout: %s", r.stdout)
			assert.Equal(t, tt.kind, r.errorKind(t))
			assert.Equal(t, tt.tls, r.json["tls"])
			assert.Equal(t, "postgres", r.json["protocol"])
			assert.Nil(t, r.json["greeting"], "PostgreSQL has no greeting")
			assert.Equal(t, []string{}, stringList(r.json["capabilities_before"]))
			if tt.tls {
				assert.Equal(t, []string{}, stringList(r.json["capabilities_after"]))
				assert.Equal(t, true, r.json["verified"])
			}
			require.NoError(t, peer.Wait())
		})
	}
}

func TestProbeLDAP(t *testing.T) {
	pki := scripttest.NewPKI(t)
	caFile := writeCA(t, pki)
	success := append([]byte{0x30, 0x24, 0x02, 0x01, 0x01, 0x78, 0x1f,
		0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00, 0x8a, 0x16}, ldap.OIDStartTLS...)
	addr, peer := bytepeer.Listen(t, func(p *bytepeer.Conn) error {
		if err := p.Expect(ldap.StartTLSRequest()); err != nil {
			return err
		}
		if err := p.Send(success); err != nil {
			return err
		}
		if err := p.TLS(); err != nil {
			return err
		}
		return p.ExpectEOF()
	}, &bytepeer.Options{TLSConfig: pki.Server()})
	r := runProbe(t, "-json", "-protocol", "ldap", "-cafile", caFile, "-servername", scripttest.TestName, "-timeout", "10s", addr)
	assert.Equal(t, exitTLS, r.code, "stdout: %s", r.stdout)
	assert.Equal(t, "starttls", r.json["mode"])
	assert.Nil(t, r.json["greeting"])
	assert.Equal(t, []string{}, stringList(r.json["capabilities_before"]))
	assert.Equal(t, []string{}, stringList(r.json["capabilities_after"]))
	require.NoError(t, peer.Wait())
}

func TestProbeXMPP(t *testing.T) {
	pki := scripttest.NewPKI(t)
	caFile := writeCA(t, pki)
	head := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='" +
		scripttest.TestName + "' id='1' version='1.0'>"
	open := func(p *bytepeer.Conn) error {
		h, err := p.ExpectUntil("streams'>")
		if err != nil {
			return err
		}
		if !bytes.Contains(h, []byte("to='"+scripttest.TestName+"'")) {
			return assert.AnError
		}
		return nil
	}
	addr, peer := bytepeer.Listen(t, func(p *bytepeer.Conn) error {
		if err := open(p); err != nil {
			return err
		}
		if err := p.SendString(head + "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"); err != nil {
			return err
		}
		if err := p.Expect([]byte("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")); err != nil {
			return err
		}
		if err := p.SendString("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"); err != nil {
			return err
		}
		if err := p.TLS(); err != nil {
			return err
		}
		if err := open(p); err != nil {
			return err
		}
		if err := p.SendString(head + "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>"); err != nil {
			return err
		}
		return p.ExpectEOF()
	}, &bytepeer.Options{TLSConfig: pki.Server()})
	r := runProbe(t, "-json", "-protocol", "xmpp", "-cafile", caFile, "-servername", scripttest.TestName, "-timeout", "10s", addr)
	assert.Equal(t, exitTLS, r.code, "stdout: %s", r.stdout)
	assert.Equal(t, scripttest.TestName, r.json["greeting"], "the stream's from")
	assert.Equal(t, []string{"starttls required"}, stringList(r.json["capabilities_before"]))
	assert.Equal(t, []string{"mechanisms PLAIN SCRAM-SHA-1"}, stringList(r.json["capabilities_after"]))
	require.NoError(t, peer.Wait())
}

func TestProbeBinaryPorts(t *testing.T) {
	for _, tt := range []struct {
		arg, protocol, mode, address string
	}{
		{"db.example.test", "postgres", "starttls", "db.example.test:5432"},
		{"ldap.example.test", "ldap", "starttls", "ldap.example.test:389"},
		{"ldap.example.test", "ldap", "implicit", "ldap.example.test:636"},
		{"chat.example.test", "xmpp", "starttls", "chat.example.test:5222"},
		{"chat.example.test", "xmpp", "implicit", "chat.example.test:5223"},
	} {
		p, err := parse([]string{"-protocol", tt.protocol, "-mode", tt.mode, tt.arg}, &bytes.Buffer{})
		require.NoError(t, err)
		assert.Equal(t, tt.address, p.address)
	}
	for port, protocol := range map[string]string{"5432": "postgres", "389": "ldap", "636": "ldap", "5222": "xmpp", "5223": "xmpp"} {
		p, err := parse([]string{"h.example.test:" + port}, &bytes.Buffer{})
		require.NoError(t, err)
		assert.Equal(t, protocol, p.protocol, "port %s", port)
	}
}
