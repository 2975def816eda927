// Package dnstest is an in-process DNS server for tests: UDP and TCP on one
// random port of 127.0.0.1, answering from a table the test fills, with or
// without the AD bit, with SERVFAIL, with silence (a timeout), or with a
// truncated UDP answer that sends the client to TCP. It stands for the
// validating recursive resolver whose AD bit DANE trusts.
package dnstest

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// TypeTLSA is the TLSA record type (RFC 6698), which dnsmessage does not
// name.
const TypeTLSA dnsmessage.Type = 52

// Answer is what the server says to one question.
type Answer struct {
	// Records are the answer section. Their names and classes are filled
	// in from the question when left empty.
	Records []dnsmessage.Resource
	// RCode is the response code; zero is NOERROR.
	RCode dnsmessage.RCode
	// Secure sets the AD bit (the resolver validated the answer).
	Secure bool
	// Silent drops the question: the client times out.
	Silent bool
	// Truncate answers UDP with TC set and no records, so the client asks
	// again over TCP, which gets the full answer.
	Truncate bool
	// ID, when set, replaces the reply's ID (a spoofed or confused reply).
	ID uint16
}

type key struct {
	name string
	typ  dnsmessage.Type
}

// Server is a running test DNS server. Unknown names get NXDOMAIN, secure
// unless Insecure is set with SetDefault.
type Server struct {
	// Addr is "127.0.0.1:port", for both UDP and TCP.
	Addr string

	udp *net.UDPConn
	tcp net.Listener

	mu       sync.Mutex
	answers  map[key]Answer
	fallback Answer
	queries  []Query
	wg       sync.WaitGroup
}

// Query is a question the server received.
type Query struct {
	// Name is the name asked, as sent (fully qualified, with the dot).
	Name string
	// Type is the record type asked.
	Type dnsmessage.Type
	// TCP is true when the question came over TCP, false over UDP.
	TCP     bool
	AD, DO  bool // the AD bit and the EDNS0 DO bit of the question
	Payload int  // the EDNS0 UDP payload size, 0 without EDNS0
}

// New starts a server, closed by t.Cleanup.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start starts a server; the caller closes it.
func Start() (*Server, error) {
	s := &Server{answers: map[key]Answer{}, fallback: Answer{RCode: dnsmessage.RCodeNameError, Secure: true}}
	var err error
	for range 20 {
		s.udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, fmt.Errorf("dnstest: %w", err)
		}
		s.tcp, err = net.Listen("tcp", s.udp.LocalAddr().String())
		if err == nil {
			break
		}
		s.udp.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dnstest: no port free for both udp and tcp: %w", err)
	}
	s.Addr = s.udp.LocalAddr().String()
	s.wg.Add(2)
	go s.serveUDP()
	go s.serveTCP()
	return s, nil
}

// Close stops the server and waits for its goroutines.
func (s *Server) Close() {
	s.udp.Close()
	s.tcp.Close()
	s.wg.Wait()
}

// Set makes a the answer to (name, typ). name is case-insensitive, with or
// without the final dot.
func (s *Server) Set(name string, typ dnsmessage.Type, a Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers[key{canonical(name), typ}] = a
}

// SetDefault sets the answer to every question not Set.
func (s *Server) SetDefault(a Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fallback = a
}

// Queries returns the questions received so far.
func (s *Server) Queries() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Query(nil), s.queries...)
}

func canonical(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, ".")) + "."
}

func (s *Server) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := s.udp.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if reply := s.answer(buf[:n], false); reply != nil {
			s.udp.WriteToUDP(reply, from)
		}
	}
}

func (s *Server) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			for {
				var l [2]byte
				if _, err := io.ReadFull(c, l[:]); err != nil {
					return
				}
				msg := make([]byte, binary.BigEndian.Uint16(l[:]))
				if _, err := io.ReadFull(c, msg); err != nil {
					return
				}
				reply := s.answer(msg, true)
				if reply == nil {
					continue
				}
				c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(reply))), reply...))
			}
		}()
	}
}

// answer builds the reply to msg, nil for none.
func (s *Server) answer(msg []byte, tcp bool) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	query := Query{Name: q.Name.String(), Type: q.Type, TCP: tcp, AD: h.AuthenticData}
	p.SkipAllQuestions()
	p.SkipAllAnswers()
	p.SkipAllAuthorities()
	for {
		rh, err := p.AdditionalHeader()
		if err != nil {
			break
		}
		if rh.Type == dnsmessage.TypeOPT {
			query.DO = rh.DNSSECAllowed()
			query.Payload = int(rh.Class)
		}
		p.SkipAdditional()
	}
	s.mu.Lock()
	s.queries = append(s.queries, query)
	a, ok := s.answers[key{canonical(q.Name.String()), q.Type}]
	if !ok {
		a = s.fallback
	}
	s.mu.Unlock()
	if a.Silent {
		return nil
	}
	id := h.ID
	if a.ID != 0 {
		id = a.ID
	}
	rh := dnsmessage.Header{
		ID: id, Response: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true,
		RCode: a.RCode, AuthenticData: a.Secure,
	}
	truncate := a.Truncate && !tcp
	rh.Truncated = truncate
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	if !truncate {
		for _, r := range a.Records {
			if r.Header.Name.Length == 0 {
				r.Header.Name = q.Name
			}
			if r.Header.Class == 0 {
				r.Header.Class = dnsmessage.ClassINET
			}
			if r.Header.TTL == 0 {
				r.Header.TTL = 300
			}
			if err := addResource(&b, r); err != nil {
				panic("dnstest: " + err.Error())
			}
		}
	}
	out, err := b.Finish()
	if err != nil {
		panic("dnstest: " + err.Error())
	}
	return out
}

func addResource(b *dnsmessage.Builder, r dnsmessage.Resource) error {
	switch body := r.Body.(type) {
	case *dnsmessage.AResource:
		return b.AResource(r.Header, *body)
	case *dnsmessage.AAAAResource:
		return b.AAAAResource(r.Header, *body)
	case *dnsmessage.MXResource:
		return b.MXResource(r.Header, *body)
	case *dnsmessage.TXTResource:
		return b.TXTResource(r.Header, *body)
	case *dnsmessage.CNAMEResource:
		return b.CNAMEResource(r.Header, *body)
	case *dnsmessage.UnknownResource:
		r.Header.Type = body.Type
		return b.UnknownResource(r.Header, *body)
	}
	panic("dnstest: unsupported record body")
}

// Name returns the dnsmessage name of s (a final dot is added).
func Name(s string) dnsmessage.Name {
	return dnsmessage.MustNewName(canonical(s))
}

// A returns address records (A or AAAA by the address's family).
func A(addrs ...string) []dnsmessage.Resource {
	var rs []dnsmessage.Resource
	for _, a := range addrs {
		ip := netip.MustParseAddr(a)
		if ip.Is4() {
			rs = append(rs, dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Type: dnsmessage.TypeA},
				Body: &dnsmessage.AResource{A: ip.As4()}})
		} else {
			rs = append(rs, dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Type: dnsmessage.TypeAAAA},
				Body: &dnsmessage.AAAAResource{AAAA: ip.As16()}})
		}
	}
	return rs
}

// MX returns one MX record.
func MX(pref uint16, host string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Type: dnsmessage.TypeMX},
		Body: &dnsmessage.MXResource{Pref: pref, MX: Name(host)}}
}

// TXT returns one TXT record made of the strings given.
func TXT(parts ...string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Type: dnsmessage.TypeTXT},
		Body: &dnsmessage.TXTResource{TXT: parts}}
}

// CNAME returns one CNAME record owned by name.
func CNAME(name, target string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: Name(name), Type: dnsmessage.TypeCNAME},
		Body: &dnsmessage.CNAMEResource{CNAME: Name(target)}}
}

// TLSA returns one TLSA record with its raw RDATA fields.
func TLSA(usage, selector, matchingType uint8, data []byte) dnsmessage.Resource {
	rdata := append([]byte{usage, selector, matchingType}, data...)
	return dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Type: TypeTLSA},
		Body: &dnsmessage.UnknownResource{Type: TypeTLSA, Data: rdata}}
}
