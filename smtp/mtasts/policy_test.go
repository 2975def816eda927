package mtasts_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/smtp/mtasts"
	"github.com/tlsup/tlsup/tlsconf"
)

// The example of RFC 8461, Section 3.2.
const rfcPolicy = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n"

// RFC 8461, Section 3.2: the policy grammar.
func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		mode    mtasts.Mode
		mx      []string
		maxAge  time.Duration
		wantErr string // substring; "" for success
	}{
		{"rfc example", rfcPolicy, mtasts.Enforce, []string{"mail.example.com", "*.example.net", "backupmx.example.com"}, 604800 * time.Second, ""},
		{"crlf", strings.ReplaceAll(rfcPolicy, "\n", "\r\n"), mtasts.Enforce, []string{"mail.example.com", "*.example.net", "backupmx.example.com"}, 604800 * time.Second, ""},
		{"no final newline", "version: STSv1\nmode: testing\nmx: MX.Example.COM.\nmax_age: 86400", mtasts.Testing, []string{"mx.example.com"}, 86400 * time.Second, ""},
		{"none without mx", "version: STSv1\nmode: none\nmax_age: 0\n", mtasts.None, nil, 0, ""},
		{"extension ignored", "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\nfoo_bar.baz: anything goes here\n", mtasts.Enforce, []string{"a.example"}, time.Second, ""},
		{"spaces around", "  version:STSv1 \nmode:\tenforce\nmx: a.example\nmax_age: 31557600\n", mtasts.Enforce, []string{"a.example"}, mtasts.MaxAgeLimit, ""},
		{"case-insensitive keywords", "Version: stsv1\nMODE: Enforce\nMX: A.Example\nMax_Age: 1\n", mtasts.Enforce, []string{"a.example"}, time.Second, ""},
		{"underscore in mx", "version: STSv1\nmode: enforce\nmx: a_b.example\nmax_age: 1\n", "", nil, 0, "bad character"},
		{"empty", "", "", nil, 0, "no colon"},
		{"no version", "mode: enforce\nmx: a.example\nmax_age: 1\n", "", nil, 0, "no version"},
		{"wrong version", "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n", "", nil, 0, "want STSv1"},
		{"no mode", "version: STSv1\nmx: a.example\nmax_age: 1\n", "", nil, 0, "no mode"},
		{"bad mode", "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n", "", nil, 0, "mode"},
		{"mode twice", "version: STSv1\nmode: enforce\nmode: none\nmx: a.example\nmax_age: 1\n", "", nil, 0, "repeated"},
		{"no max_age", "version: STSv1\nmode: enforce\nmx: a.example\n", "", nil, 0, "no max_age"},
		{"max_age too large", "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n", "", nil, 0, "over"},
		{"max_age 11 digits", "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 00000000001\n", "", nil, 0, "10 digits"},
		{"max_age negative", "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n", "", nil, 0, "10 digits"},
		{"enforce without mx", "version: STSv1\nmode: enforce\nmax_age: 1\n", "", nil, 0, "no mx"},
		{"testing without mx", "version: STSv1\nmode: testing\nmax_age: 1\n", "", nil, 0, "no mx"},
		{"wildcard inside", "version: STSv1\nmode: enforce\nmx: mail.*.example\nmax_age: 1\n", "", nil, 0, "wildcard"},
		{"wildcard on a tld", "version: STSv1\nmode: enforce\nmx: *.com\nmax_age: 1\n", "", nil, 0, "bad host"},
		{"double wildcard", "version: STSv1\nmode: enforce\nmx: *.*.example.com\nmax_age: 1\n", "", nil, 0, "wildcard"},
		{"empty label", "version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1\n", "", nil, 0, "bad label"},
		{"blank line inside", "version: STSv1\n\nmode: enforce\nmx: a.example\nmax_age: 1\n", "", nil, 0, "no colon"},
		{"empty value", "version: STSv1\nmode: enforce\nmx:\nmax_age: 1\n", "", nil, 0, "bad value"},
		{"control in value", "version: STSv1\nmode: enforce\nmx: a.example\x00\nmax_age: 1\n", "", nil, 0, "bad value"},
		{"bad key", "version: STSv1\nmode: enforce\nmx: a.example\nmax age: 1\n", "", nil, 0, "bad key"},
		{"over 64 KiB", "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\nx: " + strings.Repeat("a", 64<<10) + "\n", "", nil, 0, "bytes, over"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := mtasts.Parse(tt.text)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, mtasts.ErrInvalid)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.mode, p.Mode)
			assert.Equal(t, tt.mx, p.MX)
			assert.Equal(t, tt.maxAge, p.MaxAge)
			assert.Equal(t, tt.text, p.Text)
		})
	}
}

// RFC 8461, Section 4.1: MX host matching.
func TestMatch(t *testing.T) {
	p := &mtasts.Policy{Mode: mtasts.Enforce, MX: []string{"mail.example.com", "*.example.net"}}
	tests := []struct {
		host string
		want bool
	}{
		{"mail.example.com", true},
		{"MAIL.Example.COM.", true},
		{"example.com", false},
		{"x.mail.example.com", false},
		{"mx1.example.net", true},
		{"example.net", false /* the wildcard needs one label */},
		{"a.b.example.net", false /* and only one */},
		{".example.net", false},
		{"mx1.example.net.evil.test", false},
		{"mx1example.net", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, p.Match(tt.host), "Match(%q)", tt.host)
	}
}

// RFC 8461, Section 4.2: the config for each mode.
func TestTLSConfig(t *testing.T) {
	ca, err := tlsconf.NewCA("ca")
	require.NoError(t, err)
	enforce := &mtasts.Policy{Mode: mtasts.Enforce, MX: []string{"*.example.com"}}
	cfg, out, err := enforce.TLSConfig("MX.example.com.", ca.Pool())
	require.NoError(t, err)
	assert.Nil(t, out)
	assert.Equal(t, "mx.example.com", cfg.ServerName)
	assert.False(t, cfg.InsecureSkipVerify, "enforce verifies")
	assert.Equal(t, uint16(0x0303), cfg.MinVersion, "TLS 1.2 or later")

	cfg, _, err = enforce.TLSConfig("mx.evil.test", ca.Pool())
	require.ErrorIs(t, err, mtasts.ErrMXMismatch)
	assert.Nil(t, cfg, "enforce: do not connect")

	testing := &mtasts.Policy{Mode: mtasts.Testing, MX: []string{"*.example.com"}}
	cfg, out, err = testing.TLSConfig("mx.evil.test", ca.Pool())
	require.ErrorIs(t, err, mtasts.ErrMXMismatch)
	require.NotNil(t, cfg, "testing: deliver anyway")
	require.NotNil(t, out, "and record the verification")
	assert.True(t, cfg.InsecureSkipVerify)

	none := &mtasts.Policy{Mode: mtasts.None}
	cfg, out, err = none.TLSConfig("mx.evil.test", ca.Pool())
	assert.NoError(t, err)
	assert.Nil(t, cfg)
	assert.Nil(t, out)
}

// RFC 8461, Section 3.1: the TXT record.
func TestParseRecord(t *testing.T) {
	tests := []struct {
		txt     string
		id      string
		wantErr bool
	}{
		{"v=STSv1; id=20160831085700Z;", "20160831085700Z", false},
		{"v=STSv1;id=abc", "abc", false},
		{"v=STSv1 ; id = abc ; ext=1", "abc", false},
		{"v=STSv1; id=" + strings.Repeat("a", 32), strings.Repeat("a", 32), false},
		{"v=STSv1; id=" + strings.Repeat("a", 33), "", true},
		{"v=STSv1; id=a-b", "", true},
		{"v=STSv1;", "", true},
		{"v=STSv1; id=", "", true},
		{"v=STSv1; id=a; id=b", "", true},
		{"id=a; v=STSv1", "", true},
		{"v=STSv2; id=a", "", true},
		{"v=STSv1; id=a;;", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		id, err := mtasts.ParseRecord(tt.txt)
		if tt.wantErr {
			require.ErrorIs(t, err, mtasts.ErrNoPolicy, "%q", tt.txt)
			continue
		}
		require.NoError(t, err, "%q", tt.txt)
		assert.Equal(t, tt.id, id)
	}

	id, err := mtasts.SelectRecord([]string{"v=spf1 -all", "v=STSv1; id=one"})
	require.NoError(t, err)
	assert.Equal(t, "one", id)
	_, err = mtasts.SelectRecord([]string{"v=STSv1; id=one", "v=STSv1; id=two"})
	require.ErrorIs(t, err, mtasts.ErrNoPolicy, "two records: no policy")
	_, err = mtasts.SelectRecord(nil)
	require.ErrorIs(t, err, mtasts.ErrNoPolicy)
}

func FuzzParse(f *testing.F) {
	f.Add(rfcPolicy)
	f.Add(strings.ReplaceAll(rfcPolicy, "\n", "\r\n"))
	f.Add("version: STSv1\nmode: none\nmax_age: 0")
	f.Add("version: STSv1\nmode: testing\nmx: *.a.b\nmax_age: 9999999999\n")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := mtasts.Parse(text)
		if err != nil {
			require.ErrorIs(t, err, mtasts.ErrInvalid)
			assert.Nil(t, p)
			return
		}
		assert.Contains(t, []mtasts.Mode{mtasts.Enforce, mtasts.Testing, mtasts.None}, p.Mode)
		assert.LessOrEqual(t, p.MaxAge, mtasts.MaxAgeLimit)
		assert.GreaterOrEqual(t, p.MaxAge, time.Duration(0))
		assert.LessOrEqual(t, len(text), mtasts.MaxPolicySize)
		if p.Mode != mtasts.None {
			assert.NotEmpty(t, p.MX)
		}
		for _, mx := range p.MX {
			assert.Equal(t, strings.ToLower(mx), mx)
			assert.NotContains(t, strings.TrimPrefix(mx, "*."), "*")
			// A pattern matches a host built from it.
			assert.True(t, p.Match(strings.Replace(mx, "*", "x", 1)), "pattern %q", mx)
		}
		// Parsing is deterministic and keeps the text.
		again, err := mtasts.Parse(p.Text)
		require.NoError(t, err)
		assert.Equal(t, p, again)
	})
}

func FuzzParseRecord(f *testing.F) {
	f.Add("v=STSv1; id=20160831085700Z;")
	f.Add("v=STSv1;id=a;ext=b")
	f.Fuzz(func(t *testing.T, txt string) {
		id, err := mtasts.ParseRecord(txt)
		if err != nil {
			require.ErrorIs(t, err, mtasts.ErrNoPolicy)
			return
		}
		require.NotEmpty(t, id)
		require.LessOrEqual(t, len(id), 32)
		assert.True(t, strings.HasPrefix(strings.TrimLeft(txt, " \t"), "v"))
		assert.Contains(t, txt, id)
	})
}
