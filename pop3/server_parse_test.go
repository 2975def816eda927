package pop3_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/starttls"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line    string
		want    *pop3.Command
		wantErr bool
	}{
		{line: "STLS", want: &pop3.Command{Name: "STLS"}},
		{line: "stls", want: &pop3.Command{Name: "STLS"}},
		{line: "STLS ", want: &pop3.Command{Name: "STLS"}},
		{line: "USER demo", want: &pop3.Command{Name: "USER", Rest: "demo", Args: []string{"demo"}}},
		{line: "TOP 1 10", want: &pop3.Command{Name: "TOP", Rest: "1 10", Args: []string{"1", "10"}}},
		// RFC 1939, Section 7: a password may contain spaces; Rest has it whole.
		{line: "PASS my secret", want: &pop3.Command{Name: "PASS", Rest: "my secret", Args: []string{"my", "secret"}}},
		{line: "PASS pässwörd", want: &pop3.Command{Name: "PASS", Rest: "pässwörd", Args: []string{"pässwörd"}}},
		{line: "", wantErr: true},
		{line: " STLS", wantErr: true},
		{line: "ST", wantErr: true},
		{line: "XSTLS", wantErr: true},
		{line: "ſtls", wantErr: true},
		{line: "ST1S", wantErr: true},
		{line: "STLS\x00", wantErr: true},
		{line: "USER a\tb", wantErr: true},
		{line: "USER a\rb", wantErr: true},
		{line: "USER a\x7f", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			cmd, err := pop3.ParseCommand(tt.line)
			if tt.wantErr {
				require.ErrorIs(t, err, starttls.ErrProtocol, "got %v", err)
				assert.Nil(t, cmd)
				assert.NotContains(t, err.Error(), "\x00", "peer text is escaped")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cmd)
		})
	}
}

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name string
		opts *pop3.CapabilityOptions
		want []string
	}{{
		name: "nil is before TLS",
		want: []string{"UIDL", "RESP-CODES", "AUTH-RESP-CODE", "STLS"},
	}, {
		name: "before TLS: no USER, plaintext SASL withheld, others kept",
		opts: &pop3.CapabilityOptions{UserPass: true, Mechanisms: []string{"PLAIN", "login", "SCRAM-SHA-256"}},
		want: []string{"UIDL", "RESP-CODES", "AUTH-RESP-CODE", "STLS", "SASL SCRAM-SHA-256"},
	}, {
		name: "after TLS",
		opts: &pop3.CapabilityOptions{TLS: true, UserPass: true, Mechanisms: []string{"PLAIN"}},
		want: []string{"UIDL", "RESP-CODES", "AUTH-RESP-CODE", "USER", "SASL PLAIN"},
	}, {
		name: "after TLS without USER or SASL",
		opts: &pop3.CapabilityOptions{TLS: true},
		want: []string{"UIDL", "RESP-CODES", "AUTH-RESP-CODE"},
	}, {
		name: "plaintext explicitly allowed before TLS",
		opts: &pop3.CapabilityOptions{AllowPlaintextAuth: true, UserPass: true, Mechanisms: []string{"PLAIN"}},
		want: []string{"UIDL", "RESP-CODES", "AUTH-RESP-CODE", "STLS", "USER", "SASL PLAIN"},
	}, {
		name: "extensions filtered: the state decides STLS, USER and SASL",
		opts: &pop3.CapabilityOptions{TLS: true, Extensions: []string{
			"TOP", "stls", "User", "SASL PLAIN", "EXPIRE NEVER", "", ".", "BAD\r\nSTLS"}},
		want: []string{"TOP", "EXPIRE NEVER"},
	}, {
		name: "malformed mechanisms dropped",
		opts: &pop3.CapabilityOptions{TLS: true, Extensions: []string{}, Mechanisms: []string{"A B", "", "X\x00"}},
		want: nil,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, pop3.Capabilities(tt.opts).List())
		})
	}
}

func TestRefuseSTLS(t *testing.T) {
	assert.Equal(t, "-ERR Command not permitted when TLS active", pop3.RefuseSTLS(true))
	assert.Equal(t, "-ERR STLS not permitted in TRANSACTION state", pop3.RefuseSTLS(false))
}

func TestWriteMultiline(t *testing.T) {
	fc := scripttest.NewFakeConn(nil)
	c := starttls.NewConn(fc, nil)
	require.NoError(t, pop3.WriteMultiline(c, "+OK 2 messages", []string{"1 120", ".hidden", "..", ""}))
	assert.Equal(t, "+OK 2 messages\r\n1 120\r\n..hidden\r\n...\r\n\r\n.\r\n", fc.Written())

	fc = scripttest.NewFakeConn(nil)
	c = starttls.NewConn(fc, nil)
	err := pop3.WriteMultiline(c, "+OK", []string{"a", "b\r\n.\r\n+OK forged"})
	require.ErrorIs(t, err, starttls.ErrUnsafeArgument)
	assert.Empty(t, fc.Written(), "nothing written")
}

// FuzzParseCommand checks the POP3 command parser's invariants.
func FuzzParseCommand(f *testing.F) {
	for _, seed := range []string{
		// RFC 1939, RFC 2449 and RFC 2595 examples.
		"USER mrose", "PASS secret", "APOP mrose c4c9334bac560ecc979e58001b3e22fb",
		"STAT", "LIST 2", "RETR 1", "DELE 1", "TOP 1 10", "UIDL", "QUIT", "CAPA", "STLS",
		"AUTH PLAIN AGRlbW8AZGVtbw==", "stls ", "PASS a b  c", "", "ſtls", "USER\x00",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, err := pop3.ParseCommand(line)
		if err != nil {
			if cmd != nil {
				t.Fatalf("command %+v with error %v", cmd, err)
			}
			if !strings.Contains(err.Error(), "starttls: protocol violation") {
				t.Fatalf("error %v", err)
			}
			return
		}
		if n := len(cmd.Name); n < 3 || n > 4 || strings.ToUpper(cmd.Name) != cmd.Name {
			t.Fatalf("bad name %q", cmd.Name)
		}
		for _, r := range cmd.Name {
			if r < 'A' || r > 'Z' {
				t.Fatalf("bad name %q", cmd.Name)
			}
		}
		if strings.IndexFunc(cmd.Rest, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 || strings.HasSuffix(cmd.Rest, " ") {
			t.Fatalf("bad rest %q", cmd.Rest)
		}
		if strings.Join(cmd.Args, " ") != cmd.Rest || (cmd.Rest == "") != (cmd.Args == nil) {
			t.Fatalf("args %q do not make rest %q", cmd.Args, cmd.Rest)
		}
		again, err := pop3.ParseCommand(strings.TrimSpace(cmd.Name + " " + cmd.Rest))
		if err != nil || again.Name != cmd.Name || again.Rest != cmd.Rest {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, cmd)
		}
	})
}
