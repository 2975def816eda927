package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

// Bounds of the demo's post-TLS loops.
const (
	// maxMessage bounds a message body in octets; the rest is discarded and
	// the message refused.
	maxMessage = 10 << 20
	// maxRecipients bounds RCPT per transaction (RFC 5321, Section
	// 4.5.3.1.8 asks for at least 100).
	maxRecipients = 100
	// maxBadCommands is how many refused commands a session may send
	// before it is closed.
	maxBadCommands = 50
)

// smtpState is the post-TLS SMTP session: it starts clean, with no EHLO,
// no transaction and no authentication (RFC 3207, Section 4.2).
type smtpState struct {
	c          *starttls.Conn
	greeted    bool
	authed     bool
	mail       bool
	recipients int
}

// smtpCapabilities is the EHLO keyword list inside TLS.
func smtpCapabilities() *starttls.Capabilities {
	exts := append(smtp.DefaultExtensions(), fmt.Sprintf("SIZE %d", maxMessage))
	return smtp.Capabilities(&smtp.CapabilityOptions{TLS: true, Extensions: exts, Mechanisms: []string{"PLAIN"}})
}

// smtpSession is the example's minimal SMTP submission loop after TLS:
// EHLO, AUTH PLAIN, MAIL/RCPT/DATA (accepted and discarded), RSET, NOOP,
// QUIT. MAIL and AUTH before a fresh EHLO get 503; STARTTLS gets 503.
func smtpSession(ctx context.Context, c *starttls.Conn) error {
	s := &smtpState{c: c}
	bad := 0
	for {
		line, err := readLine(c)
		if err != nil {
			if errors.Is(err, starttls.ErrTooLarge) {
				c.WriteLine(smtp.ReplyLineTooLong)
				return err
			}
			if endOfSession(err) {
				return nil
			}
			return err
		}
		if starttls.IsHTTPRequest([]byte(line)) {
			// ALPACA: not a byte of answer a browser could use.
			return errHTTPRequest
		}
		verb, arg, _ := strings.Cut(line, " ")
		verb = starttls.UpperASCII(verb)
		arg = strings.TrimSpace(arg)
		reply, ok, quit, err := s.command(verb, arg)
		if err != nil {
			return err
		}
		if !ok {
			bad++
			if bad > maxBadCommands {
				c.WriteLine("421 4.7.0 " + hostname + " Too many errors, closing connection")
				return fmt.Errorf("more than %d refused commands", maxBadCommands)
			}
		}
		if reply != "" {
			if err := c.WriteLine(reply); err != nil {
				return err
			}
		}
		if quit {
			return nil
		}
	}
}

// command answers one command. It returns the reply ("" when already
// written), whether the command was accepted, and whether the session ends.
func (s *smtpState) command(verb, arg string) (reply string, ok, quit bool, err error) {
	switch verb {
	case "EHLO", "HELO":
		if arg == "" {
			return "501 5.5.4 Syntax: " + verb + " hostname", false, false, nil
		}
		// RFC 5321, Section 4.1.4: EHLO resets the transaction.
		s.greeted, s.mail, s.recipients = true, false, 0
		if verb == "HELO" {
			return "250 " + hostname, true, false, nil
		}
		lines := append([]string{hostname}, smtpCapabilities().List()...)
		return "", true, false, smtp.WriteReply(s.c, 250, lines...)
	case "STARTTLS":
		return smtp.ReplyTLSActive, false, false, nil
	case "NOOP":
		return "250 2.0.0 OK", true, false, nil
	case "RSET":
		s.mail, s.recipients = false, 0
		return "250 2.0.0 OK", true, false, nil
	case "QUIT":
		return "221 2.0.0 " + hostname + " closing connection", true, true, nil
	case "AUTH":
		return s.auth(arg)
	case "MAIL":
		// The contract asks for TLS before mail, not for AUTH: mail is
		// accepted (and discarded) with or without authentication.
		switch {
		case !s.greeted:
			// RFC 3207, Section 4.2: a fresh EHLO must follow TLS.
			return "503 5.5.1 Send EHLO first", false, false, nil
		case s.mail:
			return "503 5.5.1 Nested MAIL command", false, false, nil
		case !hasPrefixFold(arg, "FROM:"):
			return "501 5.5.4 Syntax: MAIL FROM:<address>", false, false, nil
		}
		s.mail = true
		return "250 2.1.0 Sender OK", true, false, nil
	case "RCPT":
		switch {
		case !s.mail:
			return "503 5.5.1 Need MAIL before RCPT", false, false, nil
		case !hasPrefixFold(arg, "TO:"):
			return "501 5.5.4 Syntax: RCPT TO:<address>", false, false, nil
		case s.recipients >= maxRecipients:
			return "452 4.5.3 Too many recipients", false, false, nil
		}
		s.recipients++
		return "250 2.1.5 Recipient OK", true, false, nil
	case "DATA":
		switch {
		case arg != "":
			return "501 5.5.4 DATA takes no arguments", false, false, nil
		case s.recipients == 0:
			return "503 5.5.1 Need RCPT before DATA", false, false, nil
		}
		return s.data()
	case "VRFY", "EXPN", "HELP":
		return "502 5.5.1 Command not implemented", false, false, nil
	}
	return "500 5.5.2 Command unrecognized", false, false, nil
}

// auth is AUTH PLAIN (RFC 4954, RFC 4616), with or without an initial
// response.
func (s *smtpState) auth(arg string) (string, bool, bool, error) {
	mech, initial, _ := strings.Cut(arg, " ")
	switch {
	case !s.greeted:
		return "503 5.5.1 Send EHLO first", false, false, nil
	case s.authed:
		return "503 5.5.1 Already authenticated", false, false, nil
	case s.mail:
		return "503 5.5.1 AUTH not allowed during a mail transaction", false, false, nil
	case !starttls.EqualFold(mech, "PLAIN"):
		return "504 5.5.4 Unrecognized authentication type", false, false, nil
	}
	if initial == "" {
		// RFC 4954, Section 4: an empty challenge.
		if err := s.c.WriteLine("334 "); err != nil {
			return "", false, false, err
		}
		line, err := readLine(s.c)
		if err != nil {
			return "", false, false, err
		}
		if line == "*" {
			return "501 5.0.0 Authentication cancelled", false, false, nil
		}
		initial = line
	}
	ok, err := checkPlain(initial)
	switch {
	case err != nil:
		return "501 5.5.2 Cannot decode the response", false, false, nil
	case !ok:
		return "535 5.7.8 Authentication credentials invalid", false, false, nil
	}
	s.authed = true
	return "235 2.7.0 Authentication successful", true, false, nil
}

// data reads the message after 354 up to the lone ".", undoing dot-stuffing
// (RFC 5321, Section 4.5.2), and discards it.
func (s *smtpState) data() (string, bool, bool, error) {
	if err := s.c.WriteLine("354 End data with <CR><LF>.<CR><LF>"); err != nil {
		return "", false, false, err
	}
	size := 0
	for {
		line, err := readLine(s.c)
		if err != nil {
			if errors.Is(err, starttls.ErrTooLarge) {
				s.c.WriteLine(smtp.ReplyLineTooLong)
			}
			return "", false, false, err
		}
		if line == "." {
			break
		}
		line = strings.TrimPrefix(line, ".")
		size += len(line) + 2
	}
	s.mail, s.recipients = false, 0
	if size > maxMessage {
		return "552 5.3.4 Message too big", false, false, nil
	}
	return fmt.Sprintf("250 2.0.0 Message accepted (%d octets) and discarded", size), true, false, nil
}

// checkPlain decodes a SASL PLAIN response (RFC 4616, Section 2:
// authzid NUL authcid NUL passwd) and checks it against the demo account.
// "=" is the empty response.
func checkPlain(b64 string) (bool, error) {
	if b64 == "=" {
		b64 = ""
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return false, err
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 3 {
		return false, errors.New("malformed PLAIN response")
	}
	authz, user, pass := parts[0], parts[1], parts[2]
	return (authz == "" || authz == user) && user == demoUser && pass == demoPassword, nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && starttls.EqualFold(s[:len(prefix)], prefix)
}
