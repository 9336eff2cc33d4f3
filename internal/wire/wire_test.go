package wire

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	h := Header{Name: "verify", Created: 1700000000000, Attempts: 3, Timeout: 500,
		Backoff: &Backoff{Type: "fixed", Base: 100}, KeepDead: &Retention{Count: 1}}
	payload := []byte("binary\n\x00payload with a newline")
	b, err := Encode(&h, payload)
	require.NoError(t, err)
	got, p, err := Decode(string(b))
	require.NoError(t, err)
	require.Equal(t, h, got)
	require.Equal(t, payload, p)
}

func TestDefaultsOmitted(t *testing.T) {
	t.Parallel()
	b, err := Encode(&Header{Name: "n", Created: 1}, []byte("{}"))
	require.NoError(t, err)
	require.Equal(t, "{\"name\":\"n\",\"ts\":1}\n{}", string(b))
}

func TestMalformed(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"", "no newline", "{bad json}\n", "{\"ts\":1}\npayload"} {
		_, _, err := Decode(body)
		require.ErrorIs(t, err, ErrMalformed, "%q", body)
	}
}

// The direct encoding of a plain header writes exactly what encoding/json
// writes, for names it takes and names it leaves to json.Marshal.
func TestPlainHeaderMatchesJSON(t *testing.T) {
	t.Parallel()
	names := []string{"n", "send-email", "a.b:c/d_e", " spaced ", "quote\"d", "back\\slash", "<html>&",
		"tab\there", "nul\x00", "ünïcode", "emoji 🎉", "\x7f", "~!@#$%^*()"}
	for _, name := range names {
		for _, ts := range []int64{0, 1, -5, 1700000000123} {
			h := Header{Name: name, Created: ts}
			got, err := Encode(&h, []byte("p"))
			require.NoError(t, err)
			want, err := json.Marshal(h)
			require.NoError(t, err)
			require.Equal(t, string(want)+"\np", string(got), "name %q", name)
		}
	}
	require.True(t, plain(&Header{Name: "send-email", Created: 1}))
	require.False(t, plain(&Header{Name: "x", Attempts: 2}), "any other field takes the JSON path")
	require.False(t, plain(&Header{Name: "x", Meta: map[string]string{"k": "v"}}))
}
