package dane

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

// FuzzParseAnswer feeds arbitrary replies to the answer parser: it never
// panics, and keeps only records of the type asked for.
func FuzzParseAnswer(f *testing.F) {
	q := dnsmessage.Question{Name: dnsmessage.MustNewName("_25._tcp.mx.example.test."), Type: typeTLSA, Class: dnsmessage.ClassINET}
	msg, err := buildQuery(7, q)
	require.NoError(f, err)
	f.Add(msg)
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7, Response: true, AuthenticData: true})
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	b.CNAMEResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET}, dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("t.example.net.")})
	b.UnknownResource(dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("t.example.net."), Type: typeTLSA, Class: dnsmessage.ClassINET},
		dnsmessage.UnknownResource{Type: typeTLSA, Data: []byte{3, 1, 1, 0xaa}})
	reply, err := b.Finish()
	require.NoError(f, err)
	f.Add(reply)
	f.Fuzz(func(t *testing.T, msg []byte) {
		a, err := parseAnswer(msg, q)
		if err != nil {
			return
		}
		assert.LessOrEqual(t, len(a.records), len(msg)/11, "each record takes at least 11 bytes")
		for _, r := range a.records {
			require.Equal(t, typeTLSA, r.Header.Type)
			_, _ = ParseTLSA(r.Body.(*dnsmessage.UnknownResource).Data)
		}
	})
}

func TestBuildQuery(t *testing.T) {
	q := dnsmessage.Question{Name: dnsmessage.MustNewName("example.test."), Type: dnsmessage.TypeMX, Class: dnsmessage.ClassINET}
	msg, err := buildQuery(42, q)
	require.NoError(t, err)
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	require.NoError(t, err)
	assert.True(t, h.RecursionDesired)
	assert.True(t, h.AuthenticData, "RFC 6840, Section 5.7: AD in the query")
	require.NoError(t, p.SkipAllQuestions())
	require.NoError(t, p.SkipAllAnswers())
	require.NoError(t, p.SkipAllAuthorities())
	rh, err := p.AdditionalHeader()
	require.NoError(t, err)
	assert.Equal(t, dnsmessage.TypeOPT, rh.Type)
	assert.True(t, rh.DNSSECAllowed(), "DO bit")
	assert.False(t, answers(msg, 42, q), "a query is not an answer")
}
