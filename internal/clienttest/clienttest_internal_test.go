package clienttest

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tlsup/tlsup/starttls"
)

// TestSteps: each step's script ends with the client's last command, and
// the number of client lines before the wait is what the script holds.
func TestSteps(t *testing.T) {
	p := Protocol{
		Greeting: "S: 200 ready",
		Ask:      "C: CAPS",
		Offer:    "S: * STARTTLS\nS: OK",
		StartTLS: "C: GO",
		GoAhead:  "S: OK go",
	}
	want := map[starttls.Step]string{
		starttls.StepGreeting:   "",
		starttls.StepDiscover:   "C: CAPS",
		starttls.StepStartTLS:   "C: GO",
		starttls.StepHandshake:  "S: OK go",
		starttls.StepRediscover: "C: CAPS",
	}
	steps := p.steps()
	assert.Len(t, steps, len(want))
	for _, st := range steps {
		last := ""
		if script := strings.TrimSpace(st.script); script != "" {
			all := strings.Split(script, "\n")
			last = strings.TrimSpace(all[len(all)-1])
		}
		assert.Equal(t, want[st.step], last, "%s ends with", st.name)
		assert.Equal(t, st.clientLines, strings.Count(st.script, "\nC: "), "%s: client lines in %q", st.name, st.script)
		assert.Equal(t, st.step == starttls.StepRediscover, st.tls, st.name)
	}
	assert.Equal(t, "200 ready", p.greetingText())
	assert.Equal(t, `S: "a\r\n"`, raw("a\r\n"))
}

// TestStepsUnasked: with Unasked the client sends no Ask around
// STARTTLS, there is no discovery wait, and the rediscovery wait comes
// right after the handshake.
func TestStepsUnasked(t *testing.T) {
	p := Protocol{
		Greeting: "S: \"\\\"STARTTLS\\\"\\r\\n\"\nS: OK",
		Ask:      "C: CAPS",
		Unasked:  true,
		StartTLS: "C: GO",
		GoAhead:  "S: OK go",
		After:    "S: OK",
	}
	want := map[starttls.Step]string{
		starttls.StepGreeting:   "",
		starttls.StepStartTLS:   "C: GO",
		starttls.StepHandshake:  "S: OK go",
		starttls.StepRediscover: "!tls",
	}
	steps := p.steps()
	assert.Len(t, steps, len(want))
	for _, st := range steps {
		last := ""
		if script := strings.TrimSpace(st.script); script != "" {
			all := strings.Split(script, "\n")
			last = strings.TrimSpace(all[len(all)-1])
		}
		assert.Equal(t, want[st.step], last, "%s ends with", st.name)
		assert.Equal(t, st.clientLines, strings.Count(st.script, "\nC: "), "%s: client lines in %q", st.name, st.script)
		assert.Equal(t, st.step == starttls.StepRediscover, st.afterHandshake, st.name)
		assert.NotContains(t, st.script, "C: CAPS", st.name)
	}
	assert.NotContains(t, p.full(), "C: CAPS")
	assert.Equal(t, `"STARTTLS"`, p.greetingText(), "a quoted script line, unquoted")
	assert.Equal(t, "S: \"\\\"STARTTLS\\\"\\r\\n\"\nS+ OK\n", oneWrite(p.Greeting))
}

// TestCancelAfter: the transcript trigger fires once, at the n-th client
// line or, for n 0, at the TLS mark.
func TestCancelAfter(t *testing.T) {
	for _, tc := range []struct {
		n     int
		lines []string
		fired []bool // after each line
	}{
		{2, []string{"S: 200\n", "C: A\n", "S: OK\n", "C: B\n", "C: C\n"}, []bool{false, false, false, true, true}},
		{0, []string{"C: A\n", "-- TLS --\n", "C: B\n"}, []bool{false, true, true}},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		w := &cancelAfter{n: tc.n, cancel: cancel}
		for i, l := range tc.lines {
			w.Write([]byte(l))
			assert.Equal(t, tc.fired[i], w.didFire(), "n %d after %q", tc.n, l)
			assert.Equal(t, tc.fired[i], ctx.Err() != nil)
		}
		cancel()
	}
}
