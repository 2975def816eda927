package dane

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/net/idna"

	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// typeTLSA is the TLSA record type (RFC 6698, Section 7.1).
const typeTLSA dnsmessage.Type = 52

// ErrDefer: a lookup could not be completed (SERVFAIL, a timeout, a
// malformed or mismatched answer). For an MTA this means "try again later",
// never "carry on without DANE" (RFC 7672, Section 2.1.1): an attacker who
// can make a lookup fail must not thereby turn DANE off.
var ErrDefer = errors.New("dane: dns lookup failed, defer delivery")

// LookupError is a failed lookup. It matches ErrDefer.
type LookupError struct {
	// Name and Type are the question ("_25._tcp.mx.example.org.", "TLSA").
	Name, Type string
	// Reason is a short stable word: "servfail", "refused", "timeout",
	// "malformed", "rcode" (another error code) or "network".
	Reason string
	// Err is the cause, when there is one.
	Err error
}

// Error returns "dane: lookup NAME TYPE: REASON" and the cause.
func (e *LookupError) Error() string {
	s := fmt.Sprintf("dane: lookup %s %s: %s", starttls.Escape(e.Name), e.Type, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns ErrDefer and the cause.
func (e *LookupError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrDefer}
	}
	return []error{ErrDefer, e.Err}
}

// Resolver sends queries to one recursive resolver and trusts its AD bit.
// The zero value uses the first nameserver of /etc/resolv.conf.
//
// Trust assumption (the Postfix smtp_dns_support_level = dnssec model): the
// resolver validates DNSSEC, and the path to it cannot be tampered with (a
// resolver on the same host or on a trusted network). An answer counts as
// secure only when the resolver set AD; nothing is validated here. A
// resolver that does not validate never sets AD, and DANE then never
// applies.
type Resolver struct {
	// Addr is the resolver's "host:port". Zero: the first nameserver in
	// /etc/resolv.conf, port 53.
	Addr string
	// Timeout bounds each attempt of a query (UDP twice, then TCP when
	// the answer is truncated). Zero: 5 seconds. The context bounds the
	// whole lookup.
	Timeout time.Duration
}

// maxAnswer bounds one DNS answer (the TCP length prefix allows 64 KiB).
const maxAnswer = 65535

func (r *Resolver) addr() (string, error) {
	if r.Addr != "" {
		return r.Addr, nil
	}
	f, err := os.Open("/etc/resolv.conf")
	if err != nil {
		return "", fmt.Errorf("dane: no resolver given and %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 1<<16))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			if ip, err := netip.ParseAddr(fields[1]); err == nil {
				return net.JoinHostPort(ip.WithZone("").String(), "53"), nil
			}
		}
	}
	return "", errors.New("dane: no nameserver in /etc/resolv.conf")
}

func (r *Resolver) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return 5 * time.Second
}

// answer is a parsed reply: its records of the asked type (after CNAMEs)
// and whether the resolver vouched for it.
type answer struct {
	secure  bool
	rcode   dnsmessage.RCode
	records []dnsmessage.Resource
	// target is the name the answer's CNAME chain ends at, lower case
	// with the final dot; the question's name without CNAMEs.
	target string
}

// query asks one question and returns the answer, or a *LookupError for a
// failure that must defer. NXDOMAIN and NODATA are answers, not errors.
func (r *Resolver) query(ctx context.Context, name string, typ dnsmessage.Type) (*answer, error) {
	typeName := strings.TrimPrefix(typ.String(), "Type")
	if typ == typeTLSA {
		typeName = "TLSA"
	}
	fail := func(reason string, err error) error {
		return &LookupError{Name: name, Type: typeName, Reason: reason, Err: err}
	}
	qname, err := dnsmessage.NewName(name)
	if err != nil {
		return nil, fail("malformed", err)
	}
	addr, err := r.addr()
	if err != nil {
		return nil, fail("network", err)
	}
	q := dnsmessage.Question{Name: qname, Type: typ, Class: dnsmessage.ClassINET}
	var reply []byte
	truncated := false
	for attempt := 0; attempt < 2 && reply == nil; attempt++ {
		reply, truncated, err = r.exchange(ctx, "udp", addr, q)
		if err != nil && ctx.Err() != nil {
			break
		}
	}
	if err == nil && truncated {
		reply, _, err = r.exchange(ctx, "tcp", addr, q)
	}
	if err != nil {
		if isTimeout(err) {
			if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) && !errors.Is(err, context.DeadlineExceeded) {
				// The conn's deadline fired a moment before ctx's timer.
				err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
			}
			return nil, fail("timeout", err)
		}
		var le *LookupError
		if errors.As(err, &le) {
			le.Name, le.Type = name, typeName
			return nil, le
		}
		return nil, fail("network", err)
	}
	a, err := parseAnswer(reply, q)
	if err != nil {
		return nil, fail("malformed", err)
	}
	switch a.rcode {
	case dnsmessage.RCodeSuccess, dnsmessage.RCodeNameError:
		return a, nil
	case dnsmessage.RCodeServerFailure:
		// A validating resolver answers SERVFAIL for bogus data too.
		return nil, fail("servfail", nil)
	case dnsmessage.RCodeRefused:
		return nil, fail("refused", nil)
	}
	return nil, fail("rcode", fmt.Errorf("%v", a.rcode))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// exchange sends q once over network and returns the reply that answers
// it (same ID and question), and whether it was truncated.
func (r *Resolver) exchange(ctx context.Context, network, addr string, q dnsmessage.Question) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	var idb [2]byte
	rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	msg, err := buildQuery(id, q)
	if err != nil {
		return nil, false, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, false, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if deadline, ok := ctx.Deadline(); ok {
		c.SetDeadline(deadline)
	}
	if network == "tcp" {
		if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)); err != nil {
			return nil, false, ctxErr(ctx, err)
		}
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return nil, false, ctxErr(ctx, err)
		}
		reply := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, reply); err != nil {
			return nil, false, ctxErr(ctx, err)
		}
		if !answers(reply, id, q) {
			return nil, false, &LookupError{Reason: "malformed", Err: errors.New("reply does not match the question")}
		}
		return reply, false, nil
	}
	if _, err := c.Write(msg); err != nil {
		return nil, false, ctxErr(ctx, err)
	}
	buf := make([]byte, maxAnswer)
	// Replies that do not answer this question (stale, spoofed) are
	// skipped until the deadline.
	for range 16 {
		n, err := c.Read(buf)
		if err != nil {
			return nil, false, ctxErr(ctx, err)
		}
		if answers(buf[:n], id, q) {
			var p dnsmessage.Parser
			h, _ := p.Start(buf[:n])
			return buf[:n:n], h.Truncated, nil
		}
	}
	return nil, false, &LookupError{Reason: "malformed", Err: errors.New("too many replies not matching the question")}
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// buildQuery makes a recursive query with the AD bit set (RFC 6840,
// Section 5.7: ask for AD without DO) and an EDNS0 OPT record with DO set
// and a 1232-byte payload.
func buildQuery(id uint16, q dnsmessage.Question) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{ID: id, RecursionDesired: true, AuthenticData: true})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAdditionals(); err != nil {
		return nil, err
	}
	var rh dnsmessage.ResourceHeader
	if err := rh.SetEDNS0(1232, dnsmessage.RCodeSuccess, true); err != nil {
		return nil, err
	}
	if err := b.OPTResource(rh, dnsmessage.OPTResource{}); err != nil {
		return nil, err
	}
	return b.Finish()
}

// answers reports whether msg is a reply to the query id with question q.
func answers(msg []byte, id uint16, q dnsmessage.Question) bool {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || !h.Response || h.ID != id {
		return false
	}
	got, err := p.Question()
	return err == nil && got.Type == q.Type && got.Class == q.Class && strings.EqualFold(got.Name.String(), q.Name.String())
}

// parseAnswer reads a reply to q: its rcode, its AD bit, and the answer
// records of q's type owned by q's name or by a name a CNAME in the answer
// leads to.
func parseAnswer(msg []byte, q dnsmessage.Question) (*answer, error) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil, err
	}
	if err := p.SkipAllQuestions(); err != nil {
		return nil, err
	}
	a := &answer{secure: h.AuthenticData, rcode: h.RCode}
	owners := []string{strings.ToLower(q.Name.String())}
	var all []dnsmessage.Resource
	for {
		rh, err := p.AnswerHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			break
		}
		if err != nil {
			return nil, err
		}
		var r dnsmessage.Resource
		r.Header = rh
		switch rh.Type {
		case dnsmessage.TypeCNAME:
			body, err := p.CNAMEResource()
			if err != nil {
				return nil, err
			}
			r.Body = &body
		case dnsmessage.TypeA:
			body, err := p.AResource()
			if err != nil {
				return nil, err
			}
			r.Body = &body
		case dnsmessage.TypeAAAA:
			body, err := p.AAAAResource()
			if err != nil {
				return nil, err
			}
			r.Body = &body
		case dnsmessage.TypeMX:
			body, err := p.MXResource()
			if err != nil {
				return nil, err
			}
			r.Body = &body
		case dnsmessage.TypeTXT:
			body, err := p.TXTResource()
			if err != nil {
				return nil, err
			}
			r.Body = &body
		default:
			body, err := p.UnknownResource()
			if err != nil {
				return nil, err
			}
			r.Body = &body
		}
		all = append(all, r)
	}
	// Follow CNAMEs within the answer, a bounded number of times.
	for range 8 {
		grew := false
		for _, r := range all {
			if c, ok := r.Body.(*dnsmessage.CNAMEResource); ok && slices.Contains(owners, strings.ToLower(r.Header.Name.String())) {
				target := strings.ToLower(c.CNAME.String())
				if !slices.Contains(owners, target) {
					owners = append(owners, target)
					grew = true
				}
			}
		}
		if !grew {
			break
		}
	}
	a.target = owners[len(owners)-1]
	for _, r := range all {
		if r.Header.Type == q.Type && r.Header.Class == q.Class && slices.Contains(owners, strings.ToLower(r.Header.Name.String())) {
			a.records = append(a.records, r)
		}
	}
	return a, nil
}

// fqdn returns name in ASCII with a final dot: a Unicode name in its IDNA
// form; an ASCII name as is (owner names such as _mta-sts carry
// underscores, which IDNA refuses), but printable and without spaces.
func fqdn(name string) (string, error) {
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return "", errors.New("dane: empty name")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 0x80 {
			ascii, err := idna.Lookup.ToASCII(name)
			if err != nil {
				return "", fmt.Errorf("dane: name %q: %w", starttls.Escape(name), err)
			}
			return ascii + ".", nil
		} else if c <= ' ' || c == 0x7f {
			return "", fmt.Errorf("dane: name %q: bad character", starttls.Escape(name))
		}
	}
	return strings.ToLower(name) + ".", nil
}

// MX is one MX record.
type MX struct {
	// Host is the exchange host name, without the final dot; "" for a
	// null MX (RFC 7505: the domain accepts no mail).
	Host string
	// Pref is the preference; lower is tried first.
	Pref uint16
}

// LookupMX returns domain's MX records sorted by preference, and whether
// the answer was secure. No records (NXDOMAIN, NODATA) is an empty list and
// no error; the caller applies RFC 5321's implicit MX. A failed lookup is a
// *LookupError matching ErrDefer.
func (r *Resolver) LookupMX(ctx context.Context, domain string) ([]MX, bool, error) {
	name, err := fqdn(domain)
	if err != nil {
		return nil, false, err
	}
	a, err := r.query(ctx, name, dnsmessage.TypeMX)
	if err != nil {
		return nil, false, err
	}
	var mxs []MX
	for _, rec := range a.records {
		mx := rec.Body.(*dnsmessage.MXResource)
		mxs = append(mxs, MX{Host: strings.TrimSuffix(strings.ToLower(mx.MX.String()), "."), Pref: mx.Pref})
	}
	slices.SortStableFunc(mxs, func(x, y MX) int { return int(x.Pref) - int(y.Pref) })
	return mxs, a.secure, nil
}

// LookupIP returns host's IPv4 and IPv6 addresses, and whether both answers
// were secure. A failed lookup is a *LookupError matching ErrDefer.
func (r *Resolver) LookupIP(ctx context.Context, host string) ([]netip.Addr, bool, error) {
	addrs, secure, _, err := r.lookupIP(ctx, host)
	return addrs, secure, err
}

// lookupIP is LookupIP, and also returns the name host's CNAME chain ends
// at (without the final dot; host itself without CNAMEs).
func (r *Resolver) lookupIP(ctx context.Context, host string) ([]netip.Addr, bool, string, error) {
	name, err := fqdn(host)
	if err != nil {
		return nil, false, "", err
	}
	secure := true
	target := name
	var addrs []netip.Addr
	for _, typ := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA} {
		a, err := r.query(ctx, name, typ)
		if err != nil {
			return nil, false, "", err
		}
		secure = secure && a.secure
		if a.target != name {
			target = a.target
		}
		for _, rec := range a.records {
			switch body := rec.Body.(type) {
			case *dnsmessage.AResource:
				addrs = append(addrs, netip.AddrFrom4(body.A))
			case *dnsmessage.AAAAResource:
				addrs = append(addrs, netip.AddrFrom16(body.AAAA))
			}
		}
	}
	return addrs, secure, strings.TrimSuffix(target, "."), nil
}

// LookupTXT returns the TXT records of name, each one's strings joined, and
// whether the answer was secure.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, bool, error) {
	fq, err := fqdn(name)
	if err != nil {
		return nil, false, err
	}
	a, err := r.query(ctx, fq, dnsmessage.TypeTXT)
	if err != nil {
		return nil, false, err
	}
	var txts []string
	for _, rec := range a.records {
		txts = append(txts, strings.Join(rec.Body.(*dnsmessage.TXTResource).TXT, ""))
	}
	return txts, a.secure, nil
}

// LookupTLSA returns the TLSA records at _port._tcp.host, and whether the
// answer was secure. Records too short to parse are a *LookupError
// ("malformed"): a signed but garbled answer is not "no records".
func (r *Resolver) LookupTLSA(ctx context.Context, port int, host string) ([]tlsconf.TLSA, bool, error) {
	fq, err := fqdn(host)
	if err != nil {
		return nil, false, err
	}
	name := fmt.Sprintf("_%d._tcp.%s", port, fq)
	a, err := r.query(ctx, name, typeTLSA)
	if err != nil {
		return nil, false, err
	}
	var records []tlsconf.TLSA
	for _, rec := range a.records {
		t, err := ParseTLSA(rec.Body.(*dnsmessage.UnknownResource).Data)
		if err != nil {
			return nil, false, &LookupError{Name: name, Type: "TLSA", Reason: "malformed", Err: err}
		}
		records = append(records, t)
	}
	return records, a.secure, nil
}

// ParseTLSA parses the RDATA of a TLSA record (RFC 6698, Section 2.1):
// usage, selector and matching type, one byte each, then the data. The
// values are not checked (see tlsconf.TLSA.Usable); only a record shorter
// than four bytes is an error.
func ParseTLSA(rdata []byte) (tlsconf.TLSA, error) {
	if len(rdata) < 4 {
		return tlsconf.TLSA{}, fmt.Errorf("dane: tlsa record of %d bytes", len(rdata))
	}
	return tlsconf.TLSA{Usage: rdata[0], Selector: rdata[1], MatchingType: rdata[2], Data: slices.Clone(rdata[3:])}, nil
}
