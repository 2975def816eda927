package starttls_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/starttls"
)

func TestPolicyNames(t *testing.T) {
	var zero starttls.Policy
	assert.Equal(t, starttls.Required, zero, "the zero Policy is Required")
	for _, p := range []starttls.Policy{starttls.Required, starttls.Always, starttls.Opportunistic} {
		got, err := starttls.ParsePolicy(p.String())
		require.NoError(t, err)
		assert.Equal(t, p, got)
	}
	assert.Equal(t, "policy(7)", starttls.Policy(7).String())
	for _, bad := range []string{"", "Required", "may", "policy(7)"} {
		_, err := starttls.ParsePolicy(bad)
		require.Error(t, err, "ParsePolicy(%q)", bad)
		assert.Contains(t, err.Error(), "starttls: unknown policy")
	}
}

func TestModeNames(t *testing.T) {
	var zero starttls.Mode
	assert.Equal(t, starttls.Auto, zero, "the zero Mode is Auto")
	for _, m := range []starttls.Mode{starttls.Auto, starttls.StartTLS, starttls.Implicit} {
		got, err := starttls.ParseMode(m.String())
		require.NoError(t, err)
		assert.Equal(t, m, got)
	}
	assert.Equal(t, "mode(9)", starttls.Mode(9).String())
	_, err := starttls.ParseMode("tls")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "starttls: unknown mode")
}
