package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

// echoConn is a net.Conn without a network: every Write is answered by
// reply(written line), which Read then serves; with reply nil, Read serves
// loop over and over. Only Read and Write are implemented.
type echoConn struct {
	net.Conn
	reply   func(cmd []byte) []byte
	loop    []byte
	pending []byte
}

func (e *echoConn) Read(p []byte) (int, error) {
	if len(e.pending) == 0 {
		if e.reply != nil {
			return 0, fmt.Errorf("bench: read with no reply pending")
		}
		e.pending = e.loop
	}
	n := copy(p, e.pending)
	e.pending = e.pending[n:]
	return n, nil
}

func (e *echoConn) Write(p []byte) (int, error) {
	if e.reply != nil {
		e.pending = e.reply(p)
	}
	return len(p), nil
}

// BenchmarkReadLine reads 60-byte lines from a starttls.Conn in steady
// state: the line reader must not allocate per line.
func BenchmarkReadLine(b *testing.B) {
	line := "250-" + strings.Repeat("x", 54) + "\r\n"
	c := starttls.NewConn(&echoConn{loop: []byte(strings.Repeat(line, 64))}, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := c.ReadLine(); err != nil {
			b.Fatal(err)
		}
	}
}

// twentyKeywords are the extensions of a 20-line EHLO reply (with the
// domain line), a 20-atom CAPABILITY response and a 20-line CAPA reply.
var twentyKeywords = []string{
	"PIPELINING", "SIZE 35882577", "ETRN", "STARTTLS", "AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES",
	"8BITMIME", "DSN", "SMTPUTF8", "CHUNKING", "BINARYMIME", "DELIVERBY 240", "MT-PRIORITY",
	"REQUIRETLS", "XCLIENT NAME ADDR", "XFORWARD NAME ADDR", "VRFY", "EXPN", "HELP",
}

func smtpEHLO20() []byte {
	var b bytes.Buffer
	b.WriteString("250-mx.example.test Hello localhost [127.0.0.1]\r\n")
	for i, k := range twentyKeywords {
		sep := "-"
		if i == len(twentyKeywords)-1 {
			sep = " "
		}
		b.WriteString("250" + sep + k + "\r\n")
	}
	return b.Bytes()
}

// BenchmarkParse measures capability discovery on a ready reply: the
// command written and the 20-line (20-entry) answer read and parsed into a
// capability set, with no network. Its allocs/op is the parsing cost the
// README states.
func BenchmarkParse(b *testing.B) {
	ctx := context.Background()
	b.Run("SMTPEHLO20", func(b *testing.B) {
		ehlo := smtpEHLO20()
		c := starttls.NewConn(&echoConn{reply: func([]byte) []byte { return ehlo }}, nil)
		u := &smtp.Upgrader{}
		b.ReportAllocs()
		for b.Loop() {
			caps, err := u.Discover(ctx, c)
			if err != nil || caps.Len() != 19 {
				b.Fatal(caps.Len(), err)
			}
		}
	})
	b.Run("SMTPReadReply20", func(b *testing.B) {
		ehlo := smtpEHLO20()
		c := starttls.NewConn(&echoConn{loop: ehlo}, nil)
		b.ReportAllocs()
		for b.Loop() {
			r, err := smtp.ReadReply(c)
			if err != nil || len(r.Lines) != 20 {
				b.Fatal(len(r.Lines), err)
			}
		}
	})
	b.Run("IMAPCapability20", func(b *testing.B) {
		atoms := "IMAP4rev1 IMAP4rev2 STARTTLS LOGINDISABLED ID ENABLE IDLE NAMESPACE UIDPLUS " +
			"LITERAL+ SASL-IR LOGIN-REFERRALS CHILDREN UNSELECT MULTIAPPEND BINARY CONDSTORE " +
			"ESEARCH QRESYNC SPECIAL-USE"
		var buf []byte
		c := starttls.NewConn(&echoConn{reply: func(cmd []byte) []byte {
			tag, _, _ := bytes.Cut(cmd, []byte(" "))
			buf = append(append(append(append(buf[:0], "* CAPABILITY "...), atoms...), "\r\n"...), tag...)
			return append(buf, " OK CAPABILITY completed\r\n"...)
		}}, nil)
		u := &imap.Upgrader{}
		b.ReportAllocs()
		for b.Loop() {
			caps, err := u.Discover(ctx, c)
			if err != nil || caps.Len() != 20 {
				b.Fatal(caps.Len(), err)
			}
		}
	})
	b.Run("POP3CAPA20", func(b *testing.B) {
		capa := []byte("+OK Capability list follows\r\n" + strings.Join(twentyKeywords, "\r\n") + "\r\nSTLS\r\n.\r\n")
		c := starttls.NewConn(&echoConn{reply: func([]byte) []byte { return capa }}, nil)
		u := &pop3.Upgrader{}
		b.ReportAllocs()
		for b.Loop() {
			caps, err := u.Discover(ctx, c)
			if err != nil || caps.Len() != 20 {
				b.Fatal(caps.Len(), err)
			}
		}
	})
}
