package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// tourTimeout bounds each client's whole session in the tour.
const tourTimeout = 10 * time.Second

// tour starts the three servers, upgrades a library client to each and
// prints what happened. It returns 0 when all three upgraded and logged in.
func tour(ctx context.Context, stdout, stderr io.Writer) int {
	p, err := newPKI()
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	srv := newServers(p, nil)
	defer srv.shutdown()
	fmt.Fprintln(stdout, "tlsup demo: SMTP, IMAP and POP3 servers built on the library's pre-TLS fronts,")
	fmt.Fprintln(stdout, "listening on 127.0.0.1 with a throwaway CA; a library client upgrades to each,")
	fmt.Fprintln(stdout, "then logs in as demo/demo inside TLS. C: client, S: server; secrets redacted.")
	upgraded := 0
	for _, proto := range protocols() {
		addr, err := srv.listen(ctx, proto, "127.0.0.1:0")
		if err != nil {
			fmt.Fprintf(stderr, "demo: %s: %v\n", proto, err)
			return 1
		}
		fmt.Fprintf(stdout, "\n== %s %s\n", proto, addr)
		var transcript bytes.Buffer
		cctx, cancel := context.WithTimeout(ctx, tourTimeout)
		res, err := clientSession(cctx, proto, addr, p.ca.Pool(), &transcript)
		cancel()
		io.Copy(stdout, &transcript)
		if res != nil && res.TLS {
			printResult(stdout, res)
		}
		if err != nil {
			fmt.Fprintf(stdout, "FAILED: %v\n", err)
			continue
		}
		fmt.Fprintf(stdout, "upgraded in %v, then logged in as %s inside TLS\n", res.Elapsed.Round(time.Millisecond), demoUser)
		upgraded++
	}
	fmt.Fprintf(stdout, "\n%d of %d upgraded\n", upgraded, len(protocols()))
	if upgraded != len(protocols()) {
		return 1
	}
	return 0
}

// printResult prints the TLS outcome: version, cipher suite, the name
// verified and the capabilities before and after.
func printResult(w io.Writer, res *starttls.Result) {
	st := res.State
	verified := "not verified"
	if len(st.VerifiedChains) > 0 && len(st.PeerCertificates) > 0 {
		chain := st.VerifiedChains[0]
		verified = fmt.Sprintf("certificate verified for %q, issued by %q", st.ServerName, chain[len(chain)-1].Subject.CommonName)
	}
	fmt.Fprintf(w, "TLS: %s, %s, %s\n", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), verified)
	fmt.Fprintf(w, "capabilities before TLS (untrusted): %s\n", res.Before)
	fmt.Fprintf(w, "capabilities after TLS:              %s\n", res.After)
}

// clientSession upgrades a library client to the proto server at addr,
// verifying "localhost" against roots, then logs in as the demo user and
// does a small action inside TLS, and quits. The transcript receives the
// client's dialogue. On error the connection is closed.
func clientSession(ctx context.Context, proto, addr string, roots *x509.CertPool, transcript io.Writer) (*starttls.Result, error) {
	cfg := tlsconf.Client(hostname, roots)
	conn := &starttls.Options{Transcript: transcript}
	var (
		tc  *tls.Conn
		res *starttls.Result
		err error
	)
	switch proto {
	case "smtp":
		tc, res, err = smtp.Dial(ctx, "tcp", addr, &smtp.Options{TLSConfig: cfg, Mode: starttls.StartTLS, Conn: conn})
	case "imap":
		tc, res, err = imap.Dial(ctx, "tcp", addr, &imap.Options{TLSConfig: cfg, Mode: starttls.StartTLS, Conn: conn})
	case "pop3":
		tc, res, err = pop3.Dial(ctx, "tcp", addr, &pop3.Options{TLSConfig: cfg, Mode: starttls.StartTLS, Conn: conn})
	default:
		return nil, fmt.Errorf("unknown protocol %q", proto)
	}
	if err != nil {
		return res, err
	}
	defer tc.Close()
	release := starttls.WatchContext(ctx, tc)
	defer release()
	switch proto {
	case "smtp":
		err = smtpClient(res.Conn)
	case "imap":
		err = imapClient(res.Conn)
	default:
		err = pop3Client(res.Conn)
	}
	if err != nil {
		return res, fmt.Errorf("%s after tls: %w", proto, err)
	}
	return res, nil
}

// plainResponse is the SASL PLAIN response for the demo account.
func plainResponse() string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + demoUser + "\x00" + demoPassword))
}

// smtpClient logs in, sends a message (with a dot-stuffed line) and quits.
func smtpClient(c *starttls.Conn) error {
	expect := func(code int) error {
		r, err := smtp.ReadReply(c)
		if err != nil {
			return err
		}
		if r.Code != code {
			return fmt.Errorf("got %d %s, want %d", r.Code, r.Text(), code)
		}
		return nil
	}
	steps := []struct {
		line   string
		secret bool
		code   int
	}{
		{"AUTH PLAIN " + plainResponse(), true, 235},
		{"MAIL FROM:<demo@localhost>", false, 250},
		{"RCPT TO:<demo@localhost>", false, 250},
		{"DATA", false, 354},
	}
	for _, s := range steps {
		write := c.WriteLine
		if s.secret {
			write = c.WriteSecretLine
		}
		if err := write(s.line); err != nil {
			return err
		}
		if err := expect(s.code); err != nil {
			return fmt.Errorf("%s: %w", strings.Fields(s.line)[0], err)
		}
	}
	// RFC 5321, Section 4.5.2: a line starting with "." is sent with the
	// dot doubled.
	for _, l := range []string{"Subject: tlsup demo", "", "Hello over TLS.", "..a line that starts with a dot", "."} {
		if err := c.WriteLine(l); err != nil {
			return err
		}
	}
	if err := expect(250); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	if err := c.WriteLine("QUIT"); err != nil {
		return err
	}
	return expect(221)
}

// imapCommand sends a tagged command and reads up to its completion, which
// must be OK.
func imapCommand(c *starttls.Conn, tag, command string, secret bool) error {
	write := c.WriteLine
	if secret {
		write = c.WriteSecretLine
	}
	if err := write(tag + " " + command); err != nil {
		return err
	}
	for n := 0; n < c.MaxResponseLines(); n++ {
		line, err := c.ReadLine()
		if err != nil {
			return err
		}
		if rest, ok := strings.CutPrefix(string(line), tag+" "); ok {
			if !strings.HasPrefix(rest, "OK") {
				return fmt.Errorf("%s: %s", strings.Fields(command)[0], starttls.Escape(rest))
			}
			return nil
		}
	}
	return fmt.Errorf("%s: no completion", command)
}

// imapClient logs in, lists, examines INBOX and logs out.
func imapClient(c *starttls.Conn) error {
	for i, cmd := range []string{"LOGIN " + demoUser + " " + demoPassword, `LIST "" *`, "EXAMINE INBOX", "LOGOUT"} {
		if err := imapCommand(c, fmt.Sprintf("d%d", i+1), cmd, i == 0); err != nil {
			return err
		}
	}
	return nil
}

// pop3Client logs in with USER/PASS, asks STAT and LIST, and quits.
func pop3Client(c *starttls.Conn) error {
	steps := []struct {
		line   string
		secret bool
		multi  bool
	}{
		{"USER " + demoUser, false, false},
		{"PASS " + demoPassword, true, false},
		{"STAT", false, false},
		{"LIST", false, true},
		{"QUIT", false, false},
	}
	for _, s := range steps {
		write := c.WriteLine
		if s.secret {
			write = c.WriteSecretLine
		}
		if err := write(s.line); err != nil {
			return err
		}
		r, err := pop3.ReadResponse(c)
		if err != nil {
			return err
		}
		if !r.OK {
			return fmt.Errorf("%s: -ERR %s", strings.Fields(s.line)[0], starttls.Escape(r.Text))
		}
		if s.multi {
			if _, err := pop3.ReadMultiline(c); err != nil {
				return err
			}
		}
	}
	return nil
}
