package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/starttls"
)

// pop3State is the post-TLS POP3 session: it starts in the AUTHORIZATION
// state with nothing of the plaintext session kept (RFC 2595, Section 4).
type pop3State struct {
	c           *starttls.Conn
	user        string
	transaction bool
}

// pop3Capabilities is the CAPA list inside TLS: USER and SASL PLAIN.
func pop3Capabilities() *starttls.Capabilities {
	return pop3.Capabilities(&pop3.CapabilityOptions{TLS: true, UserPass: true, Mechanisms: []string{"PLAIN"}})
}

// pop3Session is the example's minimal POP3 loop after TLS, on an empty
// maildrop: CAPA, USER/PASS, AUTH PLAIN, STAT, LIST, UIDL, RETR, DELE,
// NOOP, RSET, QUIT. STLS gets -ERR.
func pop3Session(ctx context.Context, c *starttls.Conn) error {
	s := &pop3State{c: c}
	bad := 0
	for {
		line, err := readLine(c)
		if err != nil {
			if errors.Is(err, starttls.ErrTooLarge) {
				c.WriteLine(pop3.ReplyLineTooLong)
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
		var ok, quit bool
		cmd, perr := pop3.ParseCommand(line)
		if perr != nil {
			err = c.WriteLine("-ERR Malformed command")
		} else {
			ok, quit, err = s.command(cmd)
		}
		if err != nil || quit {
			return err
		}
		if !ok {
			bad++
			if bad > maxBadCommands {
				c.WriteLine("-ERR Too many invalid commands, closing connection")
				return fmt.Errorf("more than %d refused commands", maxBadCommands)
			}
		}
	}
}

// command answers one command; ok is false for a refusal.
func (s *pop3State) command(cmd *pop3.Command) (ok, quit bool, err error) {
	reply := func(l string) (bool, bool, error) {
		return l[0] == '+', false, s.c.WriteLine(l)
	}
	switch cmd.Name {
	case "CAPA":
		return true, false, pop3.WriteMultiline(s.c, "+OK Capability list follows", pop3Capabilities().List())
	case "NOOP":
		if !s.transaction {
			return reply("-ERR Log in first")
		}
		return reply("+OK")
	case "QUIT":
		// RFC 1939, Section 6: the UPDATE state has nothing to delete.
		return true, true, s.c.WriteLine("+OK " + hostname + " signing off")
	case "STLS":
		// RFC 2595, Section 4: STLS once TLS is on is refused.
		return reply(pop3.RefuseSTLS(true))
	}
	if !s.transaction {
		switch cmd.Name {
		case "USER":
			if cmd.Rest == "" {
				return reply("-ERR USER takes a name")
			}
			s.user = cmd.Rest
			return reply("+OK Send PASS")
		case "PASS":
			user := s.user
			s.user = ""
			switch {
			case user == "":
				return reply("-ERR Send USER first")
			case user != demoUser || cmd.Rest != demoPassword:
				return reply("-ERR [AUTH] Invalid credentials")
			}
			s.transaction = true
			return reply("+OK Logged in, maildrop has 0 messages")
		case "AUTH":
			return s.auth(cmd)
		}
		return reply("-ERR Command not valid in the AUTHORIZATION state")
	}
	switch cmd.Name {
	case "STAT":
		return reply("+OK 0 0")
	case "LIST", "UIDL":
		if len(cmd.Args) > 0 {
			return reply("-ERR No such message")
		}
		return true, false, pop3.WriteMultiline(s.c, "+OK 0 messages", nil)
	case "RETR", "DELE", "TOP":
		return reply("-ERR No such message")
	case "RSET":
		return reply("+OK")
	case "USER", "PASS", "AUTH", "APOP":
		return reply("-ERR Already logged in")
	}
	return reply("-ERR Command unrecognized")
}

// auth is AUTH PLAIN (RFC 5034), with an initial response or after an empty
// continuation.
func (s *pop3State) auth(cmd *pop3.Command) (bool, bool, error) {
	reply := func(l string) (bool, bool, error) {
		return l[0] == '+', false, s.c.WriteLine(l)
	}
	if len(cmd.Args) == 0 || len(cmd.Args) > 2 || !starttls.EqualFold(cmd.Args[0], "PLAIN") {
		return reply("-ERR Unsupported authentication mechanism")
	}
	response := ""
	if len(cmd.Args) == 2 {
		response = cmd.Args[1]
	} else {
		if err := s.c.WriteLine("+ "); err != nil {
			return false, false, err
		}
		line, err := readLine(s.c)
		if err != nil {
			return false, false, err
		}
		if line == "*" {
			return reply("-ERR Authentication cancelled")
		}
		response = line
	}
	ok, err := checkPlain(response)
	switch {
	case err != nil:
		return reply("-ERR Cannot decode the response")
	case !ok:
		return reply("-ERR [AUTH] Invalid credentials")
	}
	s.transaction = true
	return reply("+OK Logged in, maildrop has 0 messages")
}
