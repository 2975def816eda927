package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/starttls"
)

// IMAP session states (RFC 9051, Section 3).
const (
	imapNotAuthenticated = iota
	imapAuthenticated
	imapSelected
)

// imapState is the post-TLS IMAP session: it starts in the not
// authenticated state with nothing of the plaintext session kept.
type imapState struct {
	c        *starttls.Conn
	state    int
	readOnly bool
}

// imapCapabilities is the capability list inside TLS: LOGIN allowed,
// AUTH=PLAIN, SASL-IR (RFC 4959).
func imapCapabilities() *starttls.Capabilities {
	exts := append(imap.DefaultExtensions(), "SASL-IR")
	return imap.Capabilities(&imap.CapabilityOptions{TLS: true, Extensions: exts, Mechanisms: []string{"PLAIN"}})
}

// imapSession is the example's minimal IMAP loop after TLS: CAPABILITY,
// NOOP, LOGIN, AUTHENTICATE PLAIN (continuation or SASL-IR), LIST and LSUB
// (INBOX only), SELECT/EXAMINE INBOX (empty), STATUS, SEARCH, CLOSE,
// UNSELECT, LOGOUT. STARTTLS gets BAD.
func imapSession(ctx context.Context, c *starttls.Conn) error {
	s := &imapState{c: c}
	bad := 0
	for {
		c.SetReadDeadline(time.Now().Add(sessionIdle))
		cmd, err := imap.ReadCommand(c, &imap.CommandOptions{SyncLiterals: true})
		var cerr *imap.CommandError
		switch {
		case errors.As(err, &cerr) && cerr.Close:
			c.WriteLine("* BYE Command too large")
			return err
		case errors.As(err, &cerr):
			bad++
			tag := cerr.Tag
			if tag == "" {
				tag = "*"
			}
			if err := c.WriteLine(tag + " BAD " + starttls.Escape(strings.TrimPrefix(cerr.Err.Error(), "starttls: "))); err != nil {
				return err
			}
			continue
		case errors.Is(err, starttls.ErrProtocol):
			// An HTTP request line (ALPACA): close without a byte of
			// answer a browser could use.
			return err
		case err != nil:
			if endOfSession(err) {
				return nil
			}
			c.WriteLine("* BYE Autologout")
			return err
		}
		ok, quit, err := s.command(cmd)
		if err != nil || quit {
			return err
		}
		if !ok {
			bad++
		}
		if bad > maxBadCommands {
			c.WriteLine("* BYE Too many invalid commands")
			return fmt.Errorf("more than %d refused commands", maxBadCommands)
		}
	}
}

// command answers one command; ok is false for a refusal.
func (s *imapState) command(cmd *imap.Command) (ok, quit bool, err error) {
	tag, args := cmd.Tag, cmd.Args
	lines := func(ls ...string) (bool, bool, error) {
		for _, l := range ls {
			if err := s.c.WriteLine(l); err != nil {
				return false, false, err
			}
		}
		return !strings.HasPrefix(ls[len(ls)-1], tag+" BAD") && !strings.HasPrefix(ls[len(ls)-1], tag+" NO"), false, nil
	}
	needAuth := func() (bool, bool, error) { return lines(tag + " BAD Log in first") }
	switch cmd.Name {
	case "CAPABILITY":
		return lines(imap.CapabilityLine(imapCapabilities()), tag+" OK CAPABILITY completed")
	case "NOOP", "CHECK":
		return lines(tag + " OK " + cmd.Name + " completed")
	case "LOGOUT":
		// RFC 9051, Section 6.1.3.
		s.c.WriteLine("* BYE " + hostname + " logging out")
		return true, true, s.c.WriteLine(tag + " OK LOGOUT completed")
	case "STARTTLS":
		// RFC 9051, Section 6.2.1: TLS is on, and once is enough.
		return lines(imap.RefuseStartTLS(tag, true))
	case "LOGIN":
		switch {
		case s.state != imapNotAuthenticated:
			return lines(tag + " BAD Already authenticated")
		case len(args) != 2:
			return lines(tag + " BAD LOGIN takes a user name and a password")
		case args[0] != demoUser || args[1] != demoPassword:
			return lines(tag + " NO [AUTHENTICATIONFAILED] Invalid credentials")
		}
		s.state = imapAuthenticated
		return lines(tag + " OK [CAPABILITY " + strings.Join(imapCapabilities().List(), " ") + "] LOGIN completed")
	case "AUTHENTICATE":
		return s.authenticate(tag, args)
	case "ENABLE":
		if s.state == imapNotAuthenticated {
			return needAuth()
		}
		return lines("* ENABLED", tag+" OK ENABLE completed")
	case "LIST", "LSUB":
		if s.state == imapNotAuthenticated {
			return needAuth()
		}
		if len(args) != 2 {
			return lines(tag + " BAD " + cmd.Name + " takes a reference and a pattern")
		}
		var out []string
		switch {
		case cmd.Name == "LIST" && args[1] == "":
			// RFC 9051, Section 6.3.9: the hierarchy delimiter.
			out = append(out, `* LIST (\Noselect) "/" ""`)
		case matchMailbox(args[0]+args[1], "INBOX"):
			attrs := `(\HasNoChildren)`
			if cmd.Name == "LSUB" {
				attrs = "()"
			}
			out = append(out, "* "+cmd.Name+" "+attrs+` "/" INBOX`)
		}
		return lines(append(out, tag+" OK "+cmd.Name+" completed")...)
	case "SELECT", "EXAMINE":
		if s.state == imapNotAuthenticated {
			return needAuth()
		}
		if len(args) < 1 {
			return lines(tag + " BAD " + cmd.Name + " takes a mailbox name")
		}
		if !starttls.EqualFold(args[0], "INBOX") {
			s.state = imapAuthenticated
			return lines(tag + " NO [NONEXISTENT] No such mailbox")
		}
		s.state, s.readOnly = imapSelected, cmd.Name == "EXAMINE"
		access := "[READ-WRITE]"
		if s.readOnly {
			access = "[READ-ONLY]"
		}
		return lines(
			`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)`,
			"* 0 EXISTS",
			"* 0 RECENT",
			"* OK [UIDVALIDITY 1] UIDs valid",
			"* OK [UIDNEXT 1] Predicted next UID",
			"* OK [PERMANENTFLAGS ()] No permanent flags permitted",
			tag+" OK "+access+" "+cmd.Name+" completed")
	case "STATUS":
		if s.state == imapNotAuthenticated {
			return needAuth()
		}
		if len(args) != 2 {
			return lines(tag + " BAD STATUS takes a mailbox name and items")
		}
		if !starttls.EqualFold(args[0], "INBOX") {
			return lines(tag + " NO [NONEXISTENT] No such mailbox")
		}
		var items []string
		for _, item := range strings.Fields(strings.Trim(args[1], "()")) {
			value := "0"
			switch starttls.UpperASCII(item) {
			case "UIDNEXT", "UIDVALIDITY":
				value = "1"
			case "MESSAGES", "RECENT", "UNSEEN", "SIZE", "DELETED":
			default:
				return lines(tag + " BAD Unknown status item")
			}
			items = append(items, starttls.UpperASCII(item)+" "+value)
		}
		return lines("* STATUS INBOX ("+strings.Join(items, " ")+")", tag+" OK STATUS completed")
	case "SEARCH", "UID":
		if s.state != imapSelected {
			return lines(tag + " BAD No mailbox selected")
		}
		if cmd.Name == "UID" && (len(args) == 0 || !starttls.EqualFold(args[0], "SEARCH") && !starttls.EqualFold(args[0], "FETCH")) {
			return lines(tag + " BAD Unsupported UID command")
		}
		if cmd.Name == "UID" && starttls.EqualFold(args[0], "FETCH") {
			// No message has a UID: nothing matches.
			return lines(tag + " OK UID FETCH completed")
		}
		return lines("* SEARCH", tag+" OK SEARCH completed")
	case "CLOSE", "UNSELECT":
		if s.state != imapSelected {
			return lines(tag + " BAD No mailbox selected")
		}
		s.state = imapAuthenticated
		return lines(tag + " OK " + cmd.Name + " completed")
	}
	return lines(tag + " BAD Command unrecognized or not supported")
}

// authenticate is AUTHENTICATE PLAIN (RFC 9051, Section 6.2.2), with an
// initial response (SASL-IR, RFC 4959) or after an empty continuation.
func (s *imapState) authenticate(tag string, args []string) (bool, bool, error) {
	reply := func(l string) (bool, bool, error) {
		err := s.c.WriteLine(l)
		return strings.HasPrefix(l, tag+" OK"), false, err
	}
	switch {
	case s.state != imapNotAuthenticated:
		return reply(tag + " BAD Already authenticated")
	case len(args) < 1 || len(args) > 2:
		return reply(tag + " BAD AUTHENTICATE takes a mechanism and an optional initial response")
	case !starttls.EqualFold(args[0], "PLAIN"):
		return reply(tag + " NO Unsupported authentication mechanism")
	}
	var response string
	if len(args) == 2 {
		response = args[1]
	} else {
		if err := s.c.WriteLine("+ "); err != nil {
			return false, false, err
		}
		line, err := readLine(s.c)
		if err != nil {
			return false, false, err
		}
		if line == "*" {
			return reply(tag + " BAD Authentication cancelled")
		}
		response = line
	}
	ok, err := checkPlain(response)
	switch {
	case err != nil:
		return reply(tag + " BAD Cannot decode the response")
	case !ok:
		return reply(tag + " NO [AUTHENTICATIONFAILED] Invalid credentials")
	}
	s.state = imapAuthenticated
	return reply(tag + " OK [CAPABILITY " + strings.Join(imapCapabilities().List(), " ") + "] AUTHENTICATE completed")
}

// matchMailbox reports whether name matches an IMAP LIST pattern: "*"
// matches anything, "%" anything but the "/" delimiter (RFC 9051, Section
// 6.3.9). INBOX matches case-insensitively. It runs in
// O(len(pattern)*len(name)), whatever the wildcards.
func matchMailbox(pattern, name string) bool {
	// match[j]: pattern[:i] matches name[:j].
	match := make([]bool, len(name)+1)
	match[0] = true
	for i := 0; i < len(pattern); i++ {
		next := make([]bool, len(name)+1)
		switch pc := pattern[i]; pc {
		case '*', '%':
			for j := 0; j <= len(name); j++ {
				next[j] = match[j] || (j > 0 && next[j-1] && (pc == '*' || name[j-1] != '/'))
			}
		default:
			for j := 1; j <= len(name); j++ {
				next[j] = match[j-1] && starttls.EqualFold(pattern[i:i+1], name[j-1:j])
			}
		}
		match = next
	}
	return match[len(name)]
}
