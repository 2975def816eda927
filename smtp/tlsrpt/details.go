package tlsrpt

import (
	"net/netip"
	"strings"

	"github.com/tlsup/tlsup/smtp/mtasts"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// FailureDetails is one "failure-details" entry of a report (RFC 8460,
// Section 4.4). Fields that are not known are left out of the JSON.
type FailureDetails struct {
	// ResultType is what failed ("result-type").
	ResultType ResultType `json:"result-type"`
	// SendingMTAIP is the sender's local address ("sending-mta-ip").
	SendingMTAIP string `json:"sending-mta-ip,omitempty"`
	// ReceivingMXHostname is the MX host name dialled
	// ("receiving-mx-hostname").
	ReceivingMXHostname string `json:"receiving-mx-hostname,omitempty"`
	// ReceivingMXHelo is the host name the MX gave in its greeting
	// ("receiving-mx-helo"), escaped; it came before TLS.
	ReceivingMXHelo string `json:"receiving-mx-helo,omitempty"`
	// ReceivingIP is the MX's address ("receiving-ip").
	ReceivingIP string `json:"receiving-ip,omitempty"`
	// FailedSessionCount is the number of sessions that failed this way
	// ("failed-session-count"); Details sets 1; a caller aggregating sessions adds them up.
	FailedSessionCount int `json:"failed-session-count"`
	// AdditionalInformation is free text, the error escaped
	// ("additional-information").
	AdditionalInformation string `json:"additional-information,omitempty"`
	// FailureReasonCode is a short code saying more than ResultType
	// ("failure-reason-code"), such as "starttls-reply-454"; see Classify.
	FailureReasonCode string `json:"failure-reason-code,omitempty"`
}

// Policy is the "policy" object of a report (RFC 8460, Section 4.4): which
// policy the sessions were held to.
type Policy struct {
	// Type is the kind of policy ("policy-type").
	Type PolicyType `json:"policy-type"`
	// String is the policy: the TLSA records in presentation form, or the
	// MTA-STS policy's lines.
	String []string `json:"policy-string,omitempty"`
	// Domain is the recipient domain the policy belongs to
	// ("policy-domain").
	Domain string `json:"policy-domain"`
	// MXHost lists the MX hosts the policy covers ("mx-host"): the
	// MTA-STS mx patterns, or the one MX host of a DANE policy.
	MXHost []string `json:"mx-host,omitempty"`
}

// Session is what is known about one delivery attempt.
type Session struct {
	// MXHost is the MX host name dialled.
	MXHost string
	// LocalIP and RemoteIP are the connection's addresses; zero when not
	// connected.
	LocalIP, RemoteIP netip.Addr
	// Result is what smtp.Upgrade or smtp.Dial returned; it may be nil.
	Result *starttls.Result
	// Err is the error smtp.Upgrade or smtp.Dial returned, or a policy
	// step's error; nil for a session that succeeded.
	Err error
}

// Details returns the failure-details entry for s, with a session count of
// one, or nil when there is nothing to report. The MX's HELO name is the
// first word of its greeting, escaped; the error text, escaped, is the
// additional information.
func Details(s Session) *FailureDetails {
	rt, reason := Classify(s.Result, s.Err)
	if rt == "" {
		return nil
	}
	d := &FailureDetails{
		ResultType:          rt,
		ReceivingMXHostname: s.MXHost,
		FailedSessionCount:  1,
		FailureReasonCode:   reason,
	}
	if s.LocalIP.IsValid() {
		d.SendingMTAIP = s.LocalIP.Unmap().String()
	}
	if s.RemoteIP.IsValid() {
		d.ReceivingIP = s.RemoteIP.Unmap().String()
	}
	if s.Result != nil && s.Result.Greeting != "" {
		helo, _, _ := strings.Cut(s.Result.Greeting, " ")
		d.ReceivingMXHelo = starttls.Escape(helo)
	}
	if s.Err != nil {
		d.AdditionalInformation = starttls.Escape(s.Err.Error())
	}
	return d
}

// STSPolicy returns the policy object for an MTA-STS policy (RFC 8460,
// Section 4.4): its text line by line, and its mx patterns.
func STSPolicy(domain string, p *mtasts.Policy) Policy {
	text := strings.TrimRight(strings.ReplaceAll(p.Text, "\r\n", "\n"), "\n")
	var lines []string
	if text != "" {
		lines = strings.Split(text, "\n")
	}
	return Policy{Type: PolicySTS, String: lines, Domain: domain, MXHost: append([]string(nil), p.MX...)}
}

// TLSAPolicy returns the policy object for the DANE policy of one MX host:
// its TLSA records in presentation form ("3 1 1 ab12...").
func TLSAPolicy(domain, mxHost string, records []tlsconf.TLSA) Policy {
	lines := make([]string, len(records))
	for i, r := range records {
		lines[i] = r.String()
	}
	return Policy{Type: PolicyTLSA, String: lines, Domain: domain, MXHost: []string{mxHost}}
}

// NoPolicy returns the policy object of a domain that publishes none.
func NoPolicy(domain string) Policy {
	return Policy{Type: PolicyNotFound, Domain: domain}
}
