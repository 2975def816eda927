package pop3_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/starttls"
)

// capaConnOn returns a starttls.Conn that reads data.
func capaConnOn(data string, opts *starttls.Options) (*starttls.Conn, *scripttest.FakeConn) {
	raw := scripttest.NewFakeConn([]byte(data))
	return starttls.NewConn(raw, opts), raw
}

func TestReadResponse(t *testing.T) {
	for _, tt := range []struct {
		line string
		want pop3.Response
		bad  bool
	}{
		{line: "+OK", want: pop3.Response{OK: true}},
		{line: "+OK ", want: pop3.Response{OK: true}},
		{line: "+OK POP3 ready", want: pop3.Response{OK: true, Text: "POP3 ready"}},
		{line: "+ok lower case", want: pop3.Response{OK: true, Text: "lower case"}},
		{line: "-ERR", want: pop3.Response{}},
		{line: "-ERR no such message", want: pop3.Response{Text: "no such message"}},
		{line: "-ERR [SYS/TEMP] busy", want: pop3.Response{Code: "SYS/TEMP", Text: "[SYS/TEMP] busy"}},
		{line: "-ERR [SYS/PERM] no TLS", want: pop3.Response{Code: "SYS/PERM", Text: "[SYS/PERM] no TLS"}},
		{line: "-ERR [IN-USE] locked", want: pop3.Response{Code: "IN-USE", Text: "[IN-USE] locked"}},
		{line: "-ERR [AUTH]", want: pop3.Response{Code: "AUTH", Text: "[AUTH]"}},
		{line: "-ERR [LOGIN-DELAY]x", want: pop3.Response{Code: "LOGIN-DELAY", Text: "[LOGIN-DELAY]x"}},
		{line: "-ERR [] empty", want: pop3.Response{Text: "[] empty"}},
		{line: "-ERR [SYS/] half", want: pop3.Response{Text: "[SYS/] half"}},
		{line: "-ERR [/TEMP] half", want: pop3.Response{Text: "[/TEMP] half"}},
		{line: "-ERR [SYS TEMP] space", want: pop3.Response{Text: "[SYS TEMP] space"}},
		{line: "-ERR [SYS/TEMP busy", want: pop3.Response{Text: "[SYS/TEMP busy"}},
		{line: "-ERR  two spaces", want: pop3.Response{Text: " two spaces"}},
		{line: "+OKAY", bad: true},
		{line: "-ERROR", bad: true},
		{line: "+OK\tTLS", bad: true},
		{line: "+ ", bad: true},
		{line: "+", bad: true},
		{line: "", bad: true},
		{line: "OK", bad: true},
		{line: "* OK IMAP", bad: true},
		{line: "220 ESMTP", bad: true},
	} {
		t.Run(tt.line, func(t *testing.T) {
			c, _ := capaConnOn(tt.line+"\r\n", nil)
			got, err := pop3.ReadResponse(c)
			if tt.bad {
				require.ErrorIs(t, err, starttls.ErrProtocol)
				var pe starttls.ProtocolError
				require.ErrorAs(t, err, &pe)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestReadResponseErrors(t *testing.T) {
	c, _ := capaConnOn("", nil)
	_, err := pop3.ReadResponse(c)
	require.ErrorIs(t, err, io.EOF)

	c, _ = capaConnOn("+OK no end", nil)
	_, err = pop3.ReadResponse(c)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)

	c, _ = capaConnOn("+OK "+strings.Repeat("x", 100)+"\r\n", &starttls.Options{MaxLineLength: 64})
	_, err = pop3.ReadResponse(c)
	require.ErrorIs(t, err, starttls.ErrTooLarge)
}

func TestReadMultiline(t *testing.T) {
	for _, tt := range []struct {
		name string
		data string
		want []string
		err  error
	}{
		{name: "empty", data: ".\r\n", want: nil},
		{name: "RFC 1939 LIST", data: "1 120\r\n2 200\r\n.\r\n", want: []string{"1 120", "2 200"}},
		{name: "stuffed", data: "..STLS\r\n...\r\n..\r\n.\r\n", want: []string{".STLS", "..", "."}},
		{name: "bare LF", data: "TOP\nUIDL\n.\n", want: []string{"TOP", "UIDL"}},
		{name: "empty line kept", data: "a\r\n\r\nb\r\n.\r\n", want: []string{"a", "", "b"}},
		{name: "terminator with a space is a line", data: ". \r\n", err: starttls.ErrProtocol},
		{name: "unstuffed dot", data: ".STLS\r\n.\r\n", err: starttls.ErrProtocol},
		{name: "no terminator", data: "TOP\r\nUIDL\r\n", err: io.EOF},
		{name: "cut inside a line", data: "TOP\r\nUI", err: io.ErrUnexpectedEOF},
		{name: "over the line count", data: "1\r\n2\r\n3\r\n4\r\n.\r\n", err: starttls.ErrTooLarge},
		{name: "at the line count", data: "1\r\n2\r\n3\r\n.\r\n", want: []string{"1", "2", "3"}},
		{name: "over the line length", data: strings.Repeat("x", 65) + "\r\n.\r\n", err: starttls.ErrTooLarge},
		{name: "stops at the terminator", data: "a\r\n.\r\n+OK next\r\n", want: []string{"a"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := capaConnOn(tt.data, &starttls.Options{MaxResponseLines: 4, MaxLineLength: 64})
			got, err := pop3.ReadMultiline(c)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			if tt.name == "stops at the terminator" {
				assert.Equal(t, len("+OK next\r\n"), c.Buffered(), "nothing read past the terminator")
			}
		})
	}
}

func TestDiscoverDirect(t *testing.T) {
	u := &pop3.Upgrader{}
	c, raw := capaConnOn("+OK Capability list follows\r\nTOP\r\n\r\nSASL PLAIN LOGIN\r\nIMPLEMENTATION Shlemazle-Plotz-v302\r\n.\r\n", nil)
	caps, err := u.Discover(context.Background(), c)
	require.NoError(t, err)
	assert.Equal(t, "CAPA\r\n", raw.Written())
	assert.Equal(t, []string{"TOP", "SASL PLAIN LOGIN", "IMPLEMENTATION Shlemazle-Plotz-v302"}, caps.List(),
		"whole lines as sent, the empty line skipped")

	c, _ = capaConnOn("-ERR [SYS/PERM] no CAPA\r\n", nil)
	_, err = u.Discover(context.Background(), c)
	require.ErrorIs(t, err, starttls.ErrRefused)
	var re *starttls.ReplyError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, &starttls.ReplyError{Protocol: "pop3", Command: "CAPA", Status: "-ERR", Text: "[SYS/PERM] no CAPA", Kind: starttls.ErrRefused}, re)
	assert.Equal(t, "pop3: CAPA: -ERR [SYS/PERM] no CAPA", err.Error())
}

func TestAPOPTimestamp(t *testing.T) {
	for _, tt := range []struct {
		greeting string
		want     string
	}{
		{"POP3 server ready <1896.697170952@dbc.mtview.ca.us>", "<1896.697170952@dbc.mtview.ca.us>"},
		{"<1.2@host> at the start", "<1.2@host>"},
		{"Dovecot ready.", ""},
		{"<no-at-sign> here", ""},
		{"a <broken <1.2@host> pair", "<1.2@host>"},
		{"spaces <1 2@host>", ""},
		{"unclosed <1.2@host", ""},
		{"", ""},
	} {
		got, ok := pop3.APOPTimestamp(tt.greeting)
		assert.Equal(t, tt.want, got, tt.greeting)
		assert.Equal(t, tt.want != "", ok, tt.greeting)
	}
}
